//! Turning values into strings, with Nix's three levels of willingness.
//!
//! - [`Coercion::Interpolate`]: `"${v}"` and `+` onto a string. Strings,
//!   paths (copied to the store; the string gets the store path and its
//!   context) and sets with `__toString` or `outPath`.
//! - [`Coercion::PathPart`]: pieces of a path (`./a/${v}`): the same, but a
//!   path stays a path and is not copied.
//! - [`Coercion::ToString`]: `builtins.toString`: also numbers (floats as
//!   `%f`), `true` as `"1"`, `false` and `null` as `""`, and lists joined
//!   by spaces.

use std::path::Path;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::value::{ContextElem, NixString, StringBuilder, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coercion {
    Interpolate,
    PathPart,
    ToString,
}

impl Machine {
    /// Coerce a value (forced or not) to a string.
    pub fn coerce_to_string(&mut self, v: &Value, mode: Coercion) -> EvalResult<NixString> {
        self.check_stack()?;
        let v = self.force(v)?;
        match &v {
            Value::String(s) => Ok(s.clone()),
            Value::Path(p) => {
                if mode == Coercion::Interpolate {
                    let store_path = self.copy_path_to_store(p)?;
                    let mut b = StringBuilder::new();
                    b.push_str(&store_path);
                    b.add_context(ContextElem::Path(store_path));
                    Ok(b.finish())
                } else {
                    Ok(NixString::new(p.display().to_string()))
                }
            }
            Value::Attrs(attrs) => {
                if let Some(f) = attrs.get(self.sym.to_string) {
                    let f = f.clone();
                    let result = self.call_with(&f, std::slice::from_ref(&v))?;
                    return self.coerce_to_string(&result, mode);
                }
                if let Some(out) = attrs.get(self.sym.out_path) {
                    let out = out.clone();
                    return self.coerce_to_string(&out, mode);
                }
                Err(not_coercible(&v))
            }
            Value::Int(i) if mode == Coercion::ToString => Ok(NixString::new(i.to_string())),
            Value::Float(f) if mode == Coercion::ToString => Ok(NixString::new(format!("{f:.6}"))),
            Value::Bool(b) if mode == Coercion::ToString => {
                Ok(NixString::new(if *b { "1" } else { "" }))
            }
            Value::Null if mode == Coercion::ToString => Ok(NixString::new("")),
            Value::List(items) if mode == Coercion::ToString => {
                let mut out = StringBuilder::new();
                for (i, item) in items.iter().enumerate() {
                    let s = self.coerce_to_string(item, mode)?;
                    out.push(&s);
                    // Nix adds no separator after an element that is an
                    // empty list.
                    if i + 1 < items.len() && !is_empty_list(self, item) {
                        out.push_str(" ");
                    }
                }
                Ok(out.finish())
            }
            other => Err(not_coercible(other)),
        }
    }

    /// Copy a source path into the store once per evaluation and return
    /// its store path.
    pub fn copy_path_to_store(&mut self, path: &Path) -> EvalResult<String> {
        if let Some(done) = self.copied_sources.get(path) {
            return Ok(done.clone());
        }
        if self.io.kind(path).is_err() {
            return Err(EvalError::new(
                ErrorKind::Io(format!("path '{}' does not exist", path.display())),
                None,
            ));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "source".to_owned());
        self.io.adding(path);
        let store_path = self.store.add_source(&name, path)?;
        self.copied_sources
            .insert(path.to_path_buf(), store_path.clone());
        Ok(store_path)
    }
}

fn is_empty_list(m: &mut Machine, v: &Value) -> bool {
    matches!(m.force(v), Ok(Value::List(l)) if l.is_empty())
}

fn not_coercible(v: &Value) -> EvalError {
    EvalError::new(ErrorKind::NotCoercibleToString(v.type_description()), None)
}
