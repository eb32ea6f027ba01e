//! Printing values exactly as `nix-instantiate --eval` does.
//!
//! `{ a = 1; b = [ 2 3 ]; }`: attributes sorted by name, names bare when
//! they look like identifiers and quoted otherwise; strings in double
//! quotes with `"`, `\`, `\n`, `\r`, `\t` and `${` escaped; floats like
//! C++'s default stream output (`%g`, six significant digits); `<LAMBDA>`,
//! `<PRIMOP>`, `<PRIMOP-APP>`; `<CODE>` for a value not yet evaluated
//! (without `--strict`); and `«repeated»` for a non-empty list or set that
//! was already printed (which also stops cycles).

use std::io::Write;

use rustc_hash::FxHashSet;

use crate::error::EvalResult;
use crate::machine::Machine;
use crate::value::Value;

/// Print `v`. With `strict`, thunks are forced as they are reached;
/// without, an unevaluated thunk prints as `<CODE>`.
pub fn print_value_bytes(m: &mut Machine, v: &Value, strict: bool) -> EvalResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut seen = FxHashSet::default();
    print_into(m, v, strict, &mut out, &mut seen)?;
    Ok(out)
}

fn print_into(
    m: &mut Machine,
    v: &Value,
    strict: bool,
    out: &mut Vec<u8>,
    seen: &mut FxHashSet<usize>,
) -> EvalResult<()> {
    m.check_stack()?;
    let v = match v {
        Value::Thunk(t) => match t.value() {
            Some(done) => done,
            None if strict => m.force_thunk(t)?,
            None => {
                out.extend_from_slice("<CODE>".as_bytes());
                return Ok(());
            }
        },
        other => other.clone(),
    };
    match &v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.extend_from_slice(format_float(*f).as_bytes()),
        Value::String(s) => escape_bytes(s.as_bytes(), out),
        Value::Path(p) => {
            use std::os::unix::ffi::OsStrExt;
            out.extend_from_slice(p.as_os_str().as_bytes())
        }
        Value::Attrs(attrs) => {
            if !attrs.is_empty() && !seen.insert(attrs.addr()) {
                out.extend_from_slice("«repeated»".as_bytes());
                return Ok(());
            }
            out.extend_from_slice("{ ".as_bytes());
            for (name, value) in attrs.sorted() {
                print_attr_name(name.as_bytes(), out);
                out.extend_from_slice(" = ".as_bytes());
                let value = value.clone();
                print_into(m, &value, strict, out, seen).map_err(|e| {
                    e.context(format!("while evaluating the attribute '{name}'"), None)
                })?;
                out.extend_from_slice("; ".as_bytes());
            }
            out.push(b'}');
        }
        Value::List(list) => {
            if !list.is_empty() && !seen.insert(list.addr()) {
                out.extend_from_slice("«repeated»".as_bytes());
                return Ok(());
            }
            out.extend_from_slice("[ ".as_bytes());
            for item in list.iter() {
                print_into(m, item, strict, out, seen)?;
                out.push(b' ');
            }
            out.push(b']');
        }
        Value::Lambda(_) => out.extend_from_slice("<LAMBDA>".as_bytes()),
        // Nix's `derivation` is a lambda.
        Value::PrimOp(app) if crate::builtins::derivation_wrapper::is_derivation(app) => {
            out.extend_from_slice("<LAMBDA>".as_bytes())
        }
        Value::PrimOp(app) if app.args.is_empty() => out.extend_from_slice("<PRIMOP>".as_bytes()),
        Value::PrimOp(_) => out.extend_from_slice("<PRIMOP-APP>".as_bytes()),
        Value::Thunk(_) => out.extend_from_slice("<CODE>".as_bytes()),
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

fn print_attr_name(name: &[u8], out: &mut Vec<u8>) {
    // Nix 2.8 quotes the keyword `if` (only that one) when printing.
    match std::str::from_utf8(name) {
        Ok(name) if is_plain_identifier(name) && name != "if" => {
            out.extend_from_slice(name.as_bytes())
        }
        _ => escape_bytes(name, out),
    }
}

/// A string literal as Nix prints it (from UTF-8 text).
pub fn escape_string(s: &str, out: &mut String) {
    let mut bytes = Vec::with_capacity(s.len() + 2);
    escape_bytes(s.as_bytes(), &mut bytes);
    // Escaping adds only ASCII to UTF-8 text.
    out.push_str(&String::from_utf8_lossy(&bytes));
}

/// A string literal as Nix prints it: bytes that are not UTF-8 are
/// printed as they are, as Nix 2.8 does.
pub fn escape_bytes(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'$' if s.get(i + 1) == Some(&b'{') => out.extend_from_slice(b"\\$"),
            other => out.push(other),
        }
        i += 1;
    }
    out.push(b'"');
}

/// [`print_value_bytes`] as text (lossy where a string is not UTF-8), for
/// messages.
pub fn print_value(m: &mut Machine, v: &Value, strict: bool) -> EvalResult<String> {
    print_value_bytes(m, v, strict).map(|bytes| match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
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
