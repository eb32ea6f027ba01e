//! Control: `throw`, `abort`, `assert`-like failures, `seq`, `deepSeq`,
//! `tryEval`, `trace`, `import`, `scopedImport`, and `__findFile` (what
//! `<name>` desugars to).

use super::Builtin;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::search_path::SearchPathEntry;
use crate::symbol::Symbol;
use crate::value::{Attrs, Value};
use std::io::Write;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "throw",
        arity: 1,
        func: throw,
    },
    Builtin {
        name: "abort",
        arity: 1,
        func: abort,
    },
    Builtin {
        name: "seq",
        arity: 2,
        func: seq,
    },
    Builtin {
        name: "deepSeq",
        arity: 2,
        func: deep_seq,
    },
    Builtin {
        name: "tryEval",
        arity: 1,
        func: try_eval,
    },
    Builtin {
        name: "trace",
        arity: 2,
        func: trace,
    },
    Builtin {
        name: "import",
        arity: 1,
        func: import,
    },
    Builtin {
        name: "scopedImport",
        arity: 2,
        func: scoped_import,
    },
    Builtin {
        name: "findFile",
        arity: 2,
        func: find_file,
    },
    Builtin {
        name: "addErrorContext",
        arity: 2,
        func: add_error_context,
    },
];

fn message(m: &mut Machine, v: &Value) -> EvalResult<String> {
    Ok(m.coerce_to_string(v, Coercion::ToString)?
        .as_str()
        .to_owned())
}

fn throw(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let msg = message(m, &args[0])?;
    Err(EvalError::new(ErrorKind::Throw(msg), None))
}

fn abort(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let msg = message(m, &args[0])?;
    Err(EvalError::new(ErrorKind::Abort(msg), None))
}

fn seq(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    m.force(&args[0])?;
    m.force(&args[1])
}

fn deep_seq(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    m.deep_force(&args[0])?;
    m.force(&args[1])
}

fn try_eval(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let (success, value) = match m.force(&args[0]) {
        Ok(v) => (true, v),
        Err(e) if e.is_catchable() => (false, Value::Bool(false)),
        Err(e) => return Err(e),
    };
    Ok(Value::Attrs(Attrs::from_entries(vec![
        (Symbol::intern("success"), Value::Bool(success)),
        (Symbol::intern("value"), value),
    ])))
}

fn trace(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let v = m.force(&args[0])?;
    let shown = match &v {
        Value::String(s) => s.as_str().to_owned(),
        other => crate::print::print_value(m, other, false)?,
    };
    // A closed stderr must not end the evaluation with a panic.
    let _ = writeln!(std::io::stderr(), "trace: {shown}");
    m.force(&args[1])
}

/// The path an `import`-like builtin was given: a path, or a string that
/// is an absolute path (such as a store path).
pub(crate) fn path_argument(m: &mut Machine, v: &Value) -> EvalResult<std::path::PathBuf> {
    let v = m.force(v)?;
    match &v {
        Value::Path(p) => Ok((**p).clone()),
        _ => {
            let s = m.coerce_to_string(&v, Coercion::PathPart)?;
            if !s.as_str().starts_with('/') {
                return Err(EvalError::new(
                    ErrorKind::InvalidValue(format!(
                        "string '{}' doesn't represent an absolute path",
                        s.as_str()
                    )),
                    None,
                ));
            }
            Ok(crate::path::normalise(s.as_str()))
        }
    }
}

fn import(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let path = path_argument(m, &args[0])?;
    m.import_path(&path)
}

fn scoped_import(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let scope = m.force_attrs(&args[0])?;
    let path = path_argument(m, &args[1])?;
    m.import_scoped(&path, scope)
}

/// `__findFile nixPath name`: the first entry of `nixPath` (a list of
/// `{ prefix; path; }`) under which `name` exists.
fn find_file(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[0])?;
    let wanted = m.force_string(&args[1])?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list.iter() {
        let attrs = m.force_attrs(item)?;
        let prefix = match attrs.get_str("prefix") {
            Some(p) => m.force_string(&p.clone())?.as_str().to_owned(),
            None => String::new(),
        };
        let path = match attrs.get_str("path") {
            Some(p) => {
                let p = p.clone();
                m.coerce_to_string(&p, Coercion::PathPart)?
                    .as_str()
                    .to_owned()
            }
            None => {
                return Err(EvalError::new(
                    ErrorKind::MissingAttribute {
                        name: "path".into(),
                        suggestions: vec![],
                    },
                    None,
                ));
            }
        };
        entries.push(SearchPathEntry { prefix, path });
    }
    crate::search_path::find_file(&*m.io, &entries, wanted.as_str()).map(Value::path)
}

/// `addErrorContext msg e`: `e`, with `msg` added to the trace of any
/// error it raises.
fn add_error_context(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    match m.force(&args[1]) {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = message(m, &args[0]).unwrap_or_default();
            Err(e.context(msg, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn try_eval_catches_throw_and_assert_only() {
        assert_eq!(
            eval_str("[ (builtins.tryEval (throw \"x\")).success (builtins.tryEval (assert false; 1)).success (builtins.tryEval 3).value ]").unwrap(),
            "[ false false 3 ]"
        );
        assert!(
            eval_str("builtins.tryEval (abort \"no\")")
                .unwrap_err()
                .contains("aborted")
        );
    }

    #[test]
    fn add_error_context_passes_values_through() {
        assert_eq!(eval_str("builtins.addErrorContext \"ctx\" 5").unwrap(), "5");
    }

    #[test]
    fn seq_forces_its_first_argument() {
        assert!(
            eval_str("builtins.seq (throw \"boom\") 1")
                .unwrap_err()
                .contains("boom")
        );
        assert_eq!(
            eval_str("builtins.seq [ (throw \"lazy\") ] 1").unwrap(),
            "1"
        );
        assert!(
            eval_str("builtins.deepSeq [ (throw \"deep\") ] 1")
                .unwrap_err()
                .contains("deep")
        );
    }
}
