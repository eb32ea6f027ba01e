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
    let table: toml::Table = text
        .as_str()
        .parse()
        .map_err(|e| invalid(format!("while parsing a TOML string: {e}")))?;
    table_to_value(&table)
}

fn table_to_value(table: &toml::Table) -> EvalResult<Value> {
    let mut entries = Vec::with_capacity(table.len());
    for (k, v) in table {
        entries.push((Symbol::intern(k), toml_to_value(v)?));
    }
    Ok(Value::Attrs(Attrs::from_entries(entries)))
}

fn toml_to_value(v: &toml::Value) -> EvalResult<Value> {
    Ok(match v {
        toml::Value::String(s) => Value::string(s.as_str()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(items) => Value::List(List::new(
            items.iter().map(toml_to_value).collect::<EvalResult<_>>()?,
        )),
        toml::Value::Table(t) => table_to_value(t)?,
        toml::Value::Datetime(d) => {
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
