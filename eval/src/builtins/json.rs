//! JSON: `toJSON` (also the CLI's `--json`) and `fromJSON`.
//!
//! `toJSON` follows Nix 2.8: sets with `__toString` become that string,
//! sets with `outPath` become it, other sets become objects with sorted
//! keys; paths are copied to the store; floats are written like C++
//! streams (`%g`); strings escape `"`, `\`, and control characters.

use super::Builtin;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::print::format_float;
use crate::symbol::Symbol;
use crate::value::{Attrs, Context, ContextElem, List, NixString, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "toJSON",
        arity: 1,
        func: to_json_builtin,
    },
    Builtin {
        name: "fromJSON",
        arity: 1,
        func: from_json,
    },
];

fn to_json_builtin(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let mut context = Context::new();
    let text = to_json(m, &args[0], &mut context)?;
    Ok(Value::String(NixString::with_context(text, context)))
}

/// Serialise `v` (forcing it deeply); string contexts are collected.
/// Strings are written byte for byte, as Nix 2.8 does: bytes that are not
/// UTF-8 stay as they are (the result is then not valid JSON text, as
/// Nix's).
pub fn to_json(m: &mut Machine, v: &Value, context: &mut Context) -> EvalResult<Vec<u8>> {
    let mut out = Vec::new();
    write_json(m, v, context, &mut out)?;
    Ok(out)
}

fn write_json(
    m: &mut Machine,
    v: &Value,
    context: &mut Context,
    out: &mut Vec<u8>,
) -> EvalResult<()> {
    m.check_stack()?;
    let v = m.force(v)?;
    match &v {
        Value::Null => out.extend_from_slice("null".as_bytes()),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(format_float(*f).as_bytes()),
        Value::String(s) => {
            s.merge_context_into(context);
            escape_json(s.as_bytes(), out);
        }
        Value::Path(p) => {
            let store_path = m.copy_path_to_store(p)?;
            context.insert(ContextElem::Path(store_path.clone()));
            escape_json(store_path.as_bytes(), out);
        }
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(m, item, context, out)?;
            }
            out.push(b']');
        }
        Value::Attrs(attrs) => {
            if attrs.contains(m.sym.to_string) {
                let s = m.coerce_to_string(&v, Coercion::Interpolate)?;
                s.merge_context_into(context);
                escape_json(s.as_bytes(), out);
                return Ok(());
            }
            if let Some(out_path) = attrs.get(m.sym.out_path) {
                let out_path = out_path.clone();
                return write_json(m, &out_path, context, out);
            }
            out.push(b'{');
            for (i, (name, item)) in attrs.sorted().into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                escape_json(name.as_bytes(), out);
                out.push(b':');
                let item = item.clone();
                write_json(m, &item, context, out).map_err(|e| {
                    e.context(format!("while evaluating the attribute '{name}'"), None)
                })?;
            }
            out.push(b'}');
        }
        Value::Lambda(_) | Value::PrimOp(_) | Value::Thunk(_) => {
            return Err(EvalError::new(
                ErrorKind::InvalidValue(format!("cannot convert {} to JSON", v.type_description())),
                None,
            ));
        }
    }
    Ok(())
}

fn escape_json(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn from_json(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let text = m.force_string(&args[0])?;
    let parsed: serde_json::Value = serde_json::from_str(text.as_str()).map_err(|e| {
        // Nix's JSON library names its errors `json.exception.parse_error`;
        // scripts (nixpkgs' module tests) match that name.
        EvalError::new(
            ErrorKind::InvalidValue(format!("[json.exception.parse_error] invalid JSON: {e}")),
            None,
        )
    })?;
    Ok(json_to_value(&parsed))
}

/// A parsed JSON document as a value (used by `fromJSON` and friends).
pub fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::string(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::List(List::new(items.iter().map(json_to_value).collect()))
        }
        serde_json::Value::Object(map) => Value::Attrs(Attrs::from_entries(
            map.iter()
                .map(|(k, v)| (Symbol::intern(k), json_to_value(v)))
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn a_json_syntax_error_is_named_as_nix_names_it() {
        let err = eval_str(r#"builtins.fromJSON "[1,""#).unwrap_err();
        assert!(err.contains("json.exception.parse_error"), "{err}");
        assert!(err.contains("line 1 column 3"), "{err}");
    }

    #[test]
    fn to_json_sorts_keys_and_formats_numbers() {
        assert_eq!(
            eval_str(r#"builtins.toJSON { b = [ 1 2.5 null true ]; a = "x\n"; }"#).unwrap(),
            r#""{\"a\":\"x\\n\",\"b\":[1,2.5,null,true]}""#
        );
    }

    #[test]
    fn from_json_round_trips() {
        assert_eq!(
            eval_str(r#"builtins.fromJSON "{\"a\": [1, -2, 3.5, \"s\", null, false]}""#).unwrap(),
            r#"{ a = [ 1 -2 3.5 "s" null false ]; }"#
        );
    }
}
