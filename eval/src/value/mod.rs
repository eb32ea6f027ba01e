//! Values of the language, one file per type.
//!
//! [`Value`] is 16 bytes: scalars inline, everything else behind one `Rc`
//! so cloning a value never copies its contents. A value may be a
//! [`Thunk`]; code that needs the actual value calls
//! [`Machine::force`](crate::machine::Machine::force) first, which never
//! returns a thunk.

pub mod attrs;
pub mod function;
pub mod list;
pub mod string;
pub mod thunk;

use std::path::{Path, PathBuf};
use std::rc::Rc;

pub use attrs::Attrs;
pub use function::{Closure, PrimOpApp};
pub use list::List;
pub use string::{Context, ContextElem, NixString, StringBuilder};
pub use thunk::{Thunk, ThunkState};

/// The tag is a whole machine word on purpose: with a one-byte tag, values
/// returned through `Result` are copied in odd-sized pieces, which costs
/// store-forwarding stalls on every return of the evaluator's hot path.
#[derive(Clone, Debug)]
#[repr(u64)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(NixString),
    /// An absolute, normalised path.
    Path(Rc<PathBuf>),
    Attrs(Attrs),
    List(List),
    Lambda(Rc<Closure>),
    PrimOp(Rc<PrimOpApp>),
    Thunk(Thunk),
}

impl Value {
    pub fn string(text: impl Into<string::Text>) -> Value {
        Value::String(NixString::new(text))
    }

    pub fn path(path: impl Into<PathBuf>) -> Value {
        Value::Path(Rc::new(path.into()))
    }

    pub fn attrs(attrs: Attrs) -> Value {
        Value::Attrs(attrs)
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(List::new(items))
    }

    /// Nix's description of the type for error messages
    /// ("value is a string while a set was expected").
    pub fn type_description(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Path(_) => "a path",
            Value::Attrs(_) => "a set",
            Value::List(_) => "a list",
            Value::Lambda(_) => "a function",
            Value::PrimOp(app) if app.args.is_empty() => "a built-in function",
            Value::PrimOp(_) => "a partially applied built-in function",
            Value::Thunk(_) => "a thunk",
        }
    }

    /// The result of `builtins.typeOf`.
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Lambda(_) | Value::PrimOp(_) => "lambda",
            Value::Thunk(_) => "thunk",
        }
    }

    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::PrimOp(_))
    }

    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Value::Path(p) => Some(p),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<NixString> for Value {
    fn from(s: NixString) -> Value {
        Value::String(s)
    }
}

impl From<Attrs> for Value {
    fn from(a: Attrs) -> Value {
        Value::Attrs(a)
    }
}

impl From<List> for Value {
    fn from(l: List) -> Value {
        Value::List(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_small() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert!(std::mem::size_of::<crate::error::EvalResult<Value>>() <= 24);
    }
}
