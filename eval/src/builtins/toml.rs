//! `fromTOML`: a TOML document as an attribute set.
//!
//! Tables become sets, arrays lists, integers and floats numbers, strings
//! strings, booleans booleans. Dates and times are rejected, as in Nix 2.8.

use super::Builtin;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::symbol::Symbol;
use crate::value::{Attrs, List, Value};

pub const BUILTINS: &[Builtin] = &[Builtin {
    name: "fromTOML",
    arity: 1,
    func: from_toml,
}];

fn invalid(msg: String) -> EvalError {
    EvalError::new(ErrorKind::InvalidValue(msg), None)
}

fn from_toml(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let text = m.force_string(&args[0])?;
    // The document as written (integers still text), so that an integer
    // beyond 64 bits clamps as Nix 2.8's parser (`strtoll`) clamps it
    // rather than failing.
    let table = toml::de::DeTable::parse(text.as_str())
        .map_err(|e| invalid(format!("while parsing a TOML string: {e}")))?;
    table_to_value(table.get_ref())
}

fn table_to_value(table: &toml::de::DeTable) -> EvalResult<Value> {
    let mut entries = Vec::with_capacity(table.len());
    for (k, v) in table {
        entries.push((Symbol::intern(k.get_ref()), toml_to_value(v.get_ref())?));
    }
    Ok(Value::Attrs(Attrs::from_entries(entries)))
}

/// An integer as `strtoll` reads it: beyond 64 bits, the nearest limit.
fn clamped_integer(i: &toml::de::DeInteger) -> i64 {
    let digits = i.as_str();
    match i64::from_str_radix(digits, i.radix()) {
        Ok(n) => n,
        Err(_) if digits.starts_with('-') => i64::MIN,
        Err(_) => i64::MAX,
    }
}

fn toml_to_value(v: &toml::de::DeValue) -> EvalResult<Value> {
    use toml::de::DeValue;
    Ok(match v {
        DeValue::String(s) => Value::string(s.as_ref()),
        DeValue::Integer(i) => Value::Int(clamped_integer(i)),
        DeValue::Float(f) => {
            let text = f.as_str();
            let parsed: f64 = text
                .parse()
                .map_err(|_| invalid(format!("while parsing a TOML string: bad float {text}")))?;
            Value::Float(parsed)
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Array(items) => Value::List(List::new(
            items
                .iter()
                .map(|item| toml_to_value(item.get_ref()))
                .collect::<EvalResult<_>>()?,
        )),
        DeValue::Table(t) => table_to_value(t)?,
        DeValue::Datetime(d) => {
            return Err(invalid(format!(
                "while parsing a TOML string: dates and times are not supported ({d})"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn tables_and_numbers() {
        assert_eq!(
            eval_str("builtins.fromTOML ''\n a = 0x10\n [t]\n b = [1, 2.5]\n''").unwrap(),
            "{ a = 16; t = { b = [ 1 2.5 ]; }; }"
        );
        assert!(eval_str("builtins.fromTOML \"a = 1979-05-27\"").is_err());
    }
}
