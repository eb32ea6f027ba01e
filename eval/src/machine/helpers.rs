//! Helpers for builtins and operators: expecting and forcing values of a
//! type, deep forcing, positions.

use std::path::Path;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::span::Span;
use crate::value::{Attrs, List, NixString, Value};

use super::Machine;

impl Machine {
    pub fn expect_bool(&self, v: &Value) -> EvalResult<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => Err(type_error("a Boolean", other)),
        }
    }

    pub fn expect_attrs(&self, v: &Value) -> EvalResult<Attrs> {
        match v {
            Value::Attrs(a) => Ok(a.clone()),
            other => Err(type_error("a set", other)),
        }
    }

    pub fn expect_list(&self, v: &Value) -> EvalResult<List> {
        match v {
            Value::List(l) => Ok(l.clone()),
            other => Err(type_error("a list", other)),
        }
    }

    pub fn expect_int(&self, v: &Value) -> EvalResult<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(type_error("an integer", other)),
        }
    }

    pub fn expect_string(&self, v: &Value) -> EvalResult<NixString> {
        match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(type_error("a string", other)),
        }
    }

    pub fn expect_function(&self, v: &Value) -> EvalResult<()> {
        match v {
            Value::Lambda(_) | Value::PrimOp(_) => Ok(()),
            Value::Attrs(a) if a.contains(self.sym.functor) => Ok(()),
            other => Err(type_error("a function", other)),
        }
    }

    /// Force and check in one step.
    pub fn force_bool(&mut self, v: &Value) -> EvalResult<bool> {
        let v = self.force(v)?;
        self.expect_bool(&v)
    }

    pub fn force_int(&mut self, v: &Value) -> EvalResult<i64> {
        let v = self.force(v)?;
        self.expect_int(&v)
    }

    pub fn force_attrs(&mut self, v: &Value) -> EvalResult<Attrs> {
        let v = self.force(v)?;
        self.expect_attrs(&v)
    }

    pub fn force_list(&mut self, v: &Value) -> EvalResult<List> {
        let v = self.force(v)?;
        self.expect_list(&v)
    }

    /// Force to a string (no coercion; a path or set is a type error).
    pub fn force_string(&mut self, v: &Value) -> EvalResult<NixString> {
        let v = self.force(v)?;
        self.expect_string(&v)
    }

    /// Force to a function value (lambda, builtin, or set with `__functor`).
    pub fn force_function(&mut self, v: &Value) -> EvalResult<Value> {
        let v = self.force(v)?;
        self.expect_function(&v)?;
        Ok(v)
    }

    /// Force `v` and everything inside it (`deepSeq`, `--strict`).
    pub fn deep_force(&mut self, v: &Value) -> EvalResult<Value> {
        let mut seen = rustc_hash::FxHashSet::default();
        let forced = self.force(v)?;
        self.deep_force_inner(&forced, &mut seen)?;
        Ok(forced)
    }

    fn deep_force_inner(
        &mut self,
        v: &Value,
        seen: &mut rustc_hash::FxHashSet<usize>,
    ) -> EvalResult<()> {
        self.check_stack()?;
        match v {
            Value::Attrs(attrs) => {
                if !seen.insert(attrs.addr()) {
                    return Ok(());
                }
                for (name, item) in attrs.iter() {
                    let forced = self.force(item).map_err(|e| {
                        e.context(format!("while evaluating the attribute '{name}'"), None)
                    })?;
                    self.deep_force_inner(&forced, seen)?;
                }
            }
            Value::List(list) => {
                if !seen.insert(list.addr()) {
                    return Ok(());
                }
                for item in list.iter() {
                    let forced = self.force(item)?;
                    self.deep_force_inner(&forced, seen)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `{ file, line, column }` for a span (`__curPos`, `unsafeGetAttrPos`).
    pub fn position_value(&self, span: Span) -> Value {
        let (file, line, column) = self.sources.line_column(span);
        Value::Attrs(Attrs::from_entries(vec![
            (self.sym.file, Value::string(file)),
            (self.sym.line, Value::Int(line as i64)),
            (self.sym.column, Value::Int(column as i64)),
        ]))
    }

    /// The file a span belongs to, for resolving relative things.
    pub fn file_of(&self, span: Span) -> Option<&Path> {
        self.sources.path_of(span)
    }
}

pub(crate) fn type_error(expected: &'static str, got: &Value) -> EvalError {
    EvalError::new(
        ErrorKind::TypeError {
            expected,
            got: got.type_description(),
        },
        None,
    )
}
