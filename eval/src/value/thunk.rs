//! Thunks: suspended computations updated in place.
//!
//! A thunk starts `Suspended` (code + environment) or as a lazy function
//! application. Forcing it marks it `Blackhole` first so that a thunk that
//! needs its own value is caught as infinite recursion (with the span of
//! the expression being forced), then stores the value. If evaluation fails
//! the thunk is put back as it was, so forcing it again repeats the error
//! (`tryEval` relies on this) instead of reporting a false recursion.
//! Forcing itself lives in [`crate::machine::Machine::force`].

use std::cell::RefCell;
use std::rc::Rc;

use crate::span::Span;

use super::Value;
use crate::compile::ir::Expr;
use crate::env::Env;

#[derive(Debug)]
pub enum ThunkState {
    /// Not built yet: a recursive scope creates its thunks first and fills
    /// them once the environment that refers to them exists.
    Uninit,
    Suspended {
        code: Rc<Expr>,
        env: Rc<Env>,
    },
    /// `func arg`, applied when forced (used by `map`, `genList`, …).
    Apply {
        func: Value,
        arg: Value,
    },
    /// Stands for another value (`__overrides` replacing a binding).
    Alias(Value),
    /// Being forced right now; `Some` is where.
    Blackhole(Option<Span>),
    Done(Value),
}

#[derive(Clone, Debug)]
pub struct Thunk(pub(crate) Rc<RefCell<ThunkState>>);

impl Thunk {
    pub fn suspended(code: Rc<Expr>, env: Rc<Env>) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Suspended { code, env })))
    }

    pub fn uninit() -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Uninit)))
    }

    /// A lazy application `func arg`.
    pub fn apply(func: Value, arg: Value) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Apply { func, arg })))
    }

    /// Fill an `Uninit` thunk.
    pub fn init(&self, code: Rc<Expr>, env: Rc<Env>) {
        *self.0.borrow_mut() = ThunkState::Suspended { code, env };
    }

    /// The value, if already computed.
    pub fn value(&self) -> Option<Value> {
        match &*self.0.borrow() {
            ThunkState::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    pub fn is_evaluated(&self) -> bool {
        matches!(&*self.0.borrow(), ThunkState::Done(_))
    }

    pub fn ptr_eq(&self, other: &Thunk) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}
