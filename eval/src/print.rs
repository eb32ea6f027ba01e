//! Printing values exactly as `nix-instantiate --eval` does.
//!
//! `{ a = 1; b = [ 2 3 ]; }`: attributes sorted by name, names bare when
//! they look like identifiers and quoted otherwise; strings in double
//! quotes with `"`, `\`, `\n`, `\r`, `\t` and `${` escaped; floats like
//! C++'s default stream output (`%g`, six significant digits); `<LAMBDA>`,
//! `<PRIMOP>`, `<PRIMOP-APP>`; `<CODE>` for a value not yet evaluated
//! (without `--strict`); and `«repeated»` for a non-empty list or set that
//! was already printed (which also stops cycles).

use std::fmt::Write;

use rustc_hash::FxHashSet;

use crate::error::EvalResult;
use crate::machine::Machine;
use crate::value::Value;

/// Print `v`. With `strict`, thunks are forced as they are reached;
/// without, an unevaluated thunk prints as `<CODE>`.
pub fn print_value(m: &mut Machine, v: &Value, strict: bool) -> EvalResult<String> {
    let mut out = String::new();
    let mut seen = FxHashSet::default();
    print_into(m, v, strict, &mut out, &mut seen)?;
    Ok(out)
}

fn print_into(
    m: &mut Machine,
    v: &Value,
    strict: bool,
    out: &mut String,
    seen: &mut FxHashSet<usize>,
) -> EvalResult<()> {
    m.check_stack()?;
    let v = match v {
        Value::Thunk(t) => match t.value() {
            Some(done) => done,
            None if strict => m.force_thunk(t)?,
            None => {
                out.push_str("<CODE>");
                return Ok(());
            }
        },
        other => other.clone(),
    };
    match &v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::String(s) => escape_string(s.as_str(), out),
        Value::Path(p) => out.push_str(&p.display().to_string()),
        Value::Attrs(attrs) => {
            if !attrs.is_empty() && !seen.insert(attrs.addr()) {
                out.push_str("«repeated»");
                return Ok(());
            }
            out.push_str("{ ");
            for (name, value) in attrs.sorted() {
                print_attr_name(name.as_str(), out);
                out.push_str(" = ");
                let value = value.clone();
                print_into(m, &value, strict, out, seen).map_err(|e| {
                    e.context(format!("while evaluating the attribute '{name}'"), None)
                })?;
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(list) => {
            if !list.is_empty() && !seen.insert(list.addr()) {
                out.push_str("«repeated»");
                return Ok(());
            }
            out.push_str("[ ");
            for item in list.iter() {
                print_into(m, item, strict, out, seen)?;
                out.push(' ');
            }
            out.push(']');
        }
        Value::Lambda(_) => out.push_str("<LAMBDA>"),
        // Nix's `derivation` is a lambda.
        Value::PrimOp(app) if crate::builtins::derivation_wrapper::is_derivation(app) => {
            out.push_str("<LAMBDA>")
        }
        Value::PrimOp(app) if app.args.is_empty() => out.push_str("<PRIMOP>"),
        Value::PrimOp(_) => out.push_str("<PRIMOP-APP>"),
        Value::Thunk(_) => out.push_str("<CODE>"),
    }
    Ok(())
}

/// Whether Nix prints this attribute name without quotes.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
}

fn print_attr_name(name: &str, out: &mut String) {
    // Nix 2.8 quotes the keyword `if` (only that one) when printing.
    if is_plain_identifier(name) && name != "if" {
        out.push_str(name);
    } else {
        escape_string(name, out);
    }
}

/// A string literal as Nix prints it.
pub fn escape_string(s: &str, out: &mut String) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            other => out.push(other),
        }
    }
    out.push('"');
}

/// A float as C++ `ostream << double` prints it (`%g` with six
/// significant digits).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    const PRECISION: i32 = 6;
    // Round to six significant digits first; the exponent of the rounded
    // value decides between fixed and scientific notation.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, f);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (PRECISION - 1 - exponent).max(0) as usize;
        trim_fraction(&format!("{f:.decimals$}")).to_owned()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_cpp_streams() {
        let cases = [
            (1.5, "1.5"),
            (1.0, "1"),
            (1.0e20, "1e+20"),
            (0.1, "0.1"),
            (123456789.0, "1.23457e+08"),
            (-0.000001, "-1e-06"),
            (1.0e-7, "1e-07"),
            (1.0 / 3.0, "0.333333"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (999999.5, "1e+06"),
            (0.00001234, "1.234e-05"),
            (1.0e100, "1e+100"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(f), want, "{f}");
        }
    }

    #[test]
    fn strings_and_names_are_escaped() {
        let mut out = String::new();
        escape_string("a\"b\\c\n${x} $y", &mut out);
        assert_eq!(out, r#""a\"b\\c\n\${x} $y""#);
        assert!(is_plain_identifier("a-b'"));
        assert!(!is_plain_identifier("1a"));
        assert!(!is_plain_identifier("a.b"));
    }
}
