//! Reading the outside world: `readFile`, `readDir`, `pathExists`,
//! `getEnv`, `toPath`.
//!
//! These are impure; they read the file system and the environment of
//! the evaluating process.

use super::Builtin;
use crate::builtins::control::path_argument;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::symbol::Symbol;
use crate::value::{Attrs, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "readFile",
        arity: 1,
        func: read_file,
    },
    Builtin {
        name: "readDir",
        arity: 1,
        func: read_dir,
    },
    Builtin {
        name: "pathExists",
        arity: 1,
        func: path_exists,
    },
    Builtin {
        name: "getEnv",
        arity: 1,
        func: get_env,
    },
    Builtin {
        name: "toPath",
        arity: 1,
        func: to_path,
    },
];

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> EvalError {
    EvalError::new(
        ErrorKind::Io(format!("{what} '{}': {e}", path.display())),
        None,
    )
}

fn read_file(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let path = path_argument(m, &args[0])?;
    let bytes =
        m.io.read_file(&path)
            .map_err(|e| io_error("reading", &path, e))?;
    // Every byte, UTF-8 or not, as Nix.
    Ok(Value::string(bytes))
}

fn read_dir(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let path = path_argument(m, &args[0])?;
    let entries =
        m.io.read_dir(&path)
            .map_err(|e| io_error("reading directory", &path, e))?;
    let mut out = Vec::new();
    for (name, kind) in entries {
        use std::os::unix::ffi::OsStrExt;
        out.push((
            Symbol::intern_bytes(name.as_bytes()),
            Value::string(kind.as_str()),
        ));
    }
    Ok(Value::Attrs(Attrs::from_entries(out)))
}

fn path_exists(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let v = m.force(&args[0])?;
    // Nix 2.8 stats a string as it is written: `"/f/"` and `"/f/."` exist
    // only when `f` is a directory (a path literal is normalised already).
    let needs_dir = match &v {
        Value::Path(_) => false,
        _ => {
            let s = m.coerce_to_string(&v, Coercion::PathPart)?;
            let s = s.as_str();
            s.len() > 1 && (s.ends_with('/') || s.ends_with("/."))
        }
    };
    let path = path_argument(m, &v)?;
    let exists = if needs_dir {
        m.io.kind(&path)
            .is_ok_and(|k| k == crate::eval_io::FileKind::Directory)
    } else {
        m.io.symlink_kind(&path).is_ok()
    };
    Ok(Value::Bool(exists))
}

fn get_env(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let name = m.force_string(&args[0])?;
    Ok(Value::string(
        std::env::var(name.as_str()).unwrap_or_default(),
    ))
}

/// `toPath s`: the string, which must be an absolute path, normalised
/// (still a string, as in Nix).
fn to_path(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.coerce_to_string(&args[0], Coercion::PathPart)?;
    if !s.as_str().starts_with('/') {
        return Err(EvalError::new(
            ErrorKind::InvalidValue(format!(
                "string '{}' doesn't represent an absolute path",
                s.as_str()
            )),
            None,
        ));
    }
    Ok(Value::string(
        crate::path::normalise(s.as_str()).display().to_string(),
    ))
}

/// `currentTime`: seconds since the epoch when the evaluation started.
pub fn current_time() -> Value {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Value::Int(secs)
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn path_exists_and_to_path() {
        assert_eq!(eval_str("builtins.pathExists /.").unwrap(), "true");
        assert_eq!(
            eval_str("builtins.pathExists /definitely/not/here").unwrap(),
            "false"
        );
        assert_eq!(
            eval_str(r#"builtins.toPath "/a/./b/../c""#).unwrap(),
            r#""/a/c""#
        );
        assert!(eval_str(r#"builtins.toPath "rel""#).is_err());
    }
}
