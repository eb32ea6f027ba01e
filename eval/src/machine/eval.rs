//! Evaluation proper: forcing, delaying, and the walk over expressions.

use std::rc::Rc;

use crate::compile::ir::{Expr, StrPart};
use crate::env::Env;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::span::Span;
use crate::symbol::Symbol;
use crate::value::{Closure, List, StringBuilder, Thunk, ThunkState, Value};

use super::{Machine, type_error};

impl Machine {
    /// The value of `value`, forcing it if it is a thunk. Never returns a
    /// thunk.
    #[inline]
    pub fn force(&mut self, value: &Value) -> EvalResult<Value> {
        match value {
            Value::Thunk(thunk) => self.force_thunk(thunk),
            other => Ok(other.clone()),
        }
    }

    pub fn force_thunk(&mut self, thunk: &Thunk) -> EvalResult<Value> {
        if let ThunkState::Done(v) = &*thunk.0.borrow() {
            return Ok(v.clone());
        }
        let state = {
            let mut cell = thunk.0.borrow_mut();
            match &*cell {
                ThunkState::Done(v) => return Ok(v.clone()),
                ThunkState::Blackhole(span) => {
                    return Err(EvalError::new(ErrorKind::InfiniteRecursion, *span));
                }
                ThunkState::Suspended { code, .. } => {
                    let span = code.span();
                    std::mem::replace(&mut *cell, ThunkState::Blackhole(span))
                }
                _ => std::mem::replace(&mut *cell, ThunkState::Blackhole(None)),
            }
        };
        self.enter()?;
        let result = match &state {
            ThunkState::Suspended { code, env } => self.eval(code, env),
            ThunkState::Apply { func, arg } => self
                .force(func)
                .and_then(|f| self.call(f, arg.clone(), None)),
            ThunkState::Alias(value) => self.force(value),
            ThunkState::Uninit => Err(EvalError::new(ErrorKind::InfiniteRecursion, None)),
            ThunkState::Done(_) | ThunkState::Blackhole(_) => {
                Err(EvalError::new(ErrorKind::InfiniteRecursion, None))
            }
        };
        self.leave();
        match result {
            Ok(value) => {
                *thunk.0.borrow_mut() = ThunkState::Done(value.clone());
                Ok(value)
            }
            Err(err) => {
                // Put the computation back so forcing again repeats the
                // error (tryEval) rather than claiming a recursion.
                *thunk.0.borrow_mut() = state;
                Err(err)
            }
        }
    }

    /// A lazy reference to `code` in `env`: constants and variables need
    /// no thunk of their own.
    #[inline]
    pub(crate) fn delay(&self, code: &Rc<Expr>, env: &Rc<Env>) -> Value {
        match &**code {
            Expr::Const(v) => v.clone(),
            Expr::Local { depth, index, .. } => env.lookup(*depth, *index).clone(),
            Expr::Lambda(lambda) => Value::Lambda(Rc::new(Closure {
                code: lambda.clone(),
                env: env.clone(),
            })),
            Expr::Binary { op, lhs, rhs, .. } => match speculate(*op, lhs, rhs, env) {
                Some(v) => v,
                None => Value::Thunk(Thunk::suspended(code.clone(), env.clone())),
            },
            _ => Value::Thunk(Thunk::suspended(code.clone(), env.clone())),
        }
    }

    // ----- evaluation ----------------------------------------------------

    /// Evaluate `expr` in `env` to a forced value.
    pub fn eval(&mut self, expr: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        // The hot cases live here; the rest is in `eval_cold`, which keeps
        // this function's stack frame small for deep recursion.
        match expr {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Local { depth, index, .. } => {
                let v = env.lookup(*depth, *index);
                match v {
                    Value::Thunk(t) => {
                        let t = t.clone();
                        self.force_thunk(&t)
                    }
                    other => Ok(other.clone()),
                }
            }
            Expr::Call { func, args, span } => {
                let mut f = self.eval(func, env)?;
                for arg in args.iter() {
                    let a = self.delay(arg, env);
                    f = self.call(f, a, Some(*span))?;
                }
                Ok(f)
            }
            Expr::If {
                cond,
                then,
                otherwise,
                span,
            } => {
                let c = self.eval(cond, env)?;
                match c {
                    Value::Bool(true) => self.eval(then, env),
                    Value::Bool(false) => self.eval(otherwise, env),
                    other => Err(type_error("a Boolean", &other)
                        .at(cond.span().unwrap_or(*span))
                        .context("while evaluating a branch condition", Some(*span))),
                }
            }
            Expr::Binary { op, lhs, rhs, span } => {
                let l = self.eval(lhs, env)?;
                let r = self.eval(rhs, env)?;
                // Integers are the common case; skip the general dispatch.
                if let (Value::Int(a), Value::Int(b)) = (&l, &r) {
                    use crate::compile::ir::BinOp as B;
                    let (a, b) = (*a, *b);
                    let fast = match op {
                        B::Add => a.checked_add(b).map(Value::Int),
                        B::Sub => a.checked_sub(b).map(Value::Int),
                        B::Mul => a.checked_mul(b).map(Value::Int),
                        B::Less => Some(Value::Bool(a < b)),
                        B::LessEq => Some(Value::Bool(a <= b)),
                        B::Greater => Some(Value::Bool(a > b)),
                        B::GreaterEq => Some(Value::Bool(a >= b)),
                        B::Eq => Some(Value::Bool(a == b)),
                        B::NotEq => Some(Value::Bool(a != b)),
                        _ => None,
                    };
                    if let Some(v) = fast {
                        return Ok(v);
                    }
                }
                self.binary_slow(*op, l, r, *span)
            }
            other => self.eval_cold(other, env),
        }
    }

    #[inline(never)]
    fn binary_slow(
        &mut self,
        op: crate::compile::ir::BinOp,
        l: Value,
        r: Value,
        span: Span,
    ) -> EvalResult<Value> {
        crate::ops::binary(self, op, l, r).map_err(|e| e.at(span))
    }

    #[inline(never)]
    fn eval_cold(&mut self, expr: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        match expr {
            Expr::Dynamic { name, withs, span } => self.eval_dynamic(*name, withs, env, *span),
            Expr::Interpolate { parts, span } => {
                let mut out = StringBuilder::new();
                for part in parts.iter() {
                    match part {
                        StrPart::Literal(text) => out.push_str(text),
                        StrPart::Interp(e, part_span) => {
                            let v = self.eval(e, env)?;
                            let s = self
                                .coerce_to_string(&v, crate::coerce::Coercion::Interpolate)
                                .map_err(|e| e.at(*part_span))?;
                            out.push(&s);
                        }
                    }
                }
                let _ = span;
                Ok(Value::String(out.finish()))
            }
            Expr::PathInterpolate { parts, base, span } => {
                let mut text = String::new();
                for part in parts.iter() {
                    match part {
                        StrPart::Literal(t) => text.push_str(t),
                        StrPart::Interp(e, part_span) => {
                            let v = self.eval(e, env)?;
                            let s = self
                                .coerce_to_string(&v, crate::coerce::Coercion::PathPart)
                                .map_err(|e| e.at(*part_span))?;
                            if s.has_context() {
                                return Err(EvalError::new(
                                    ErrorKind::InvalidValue(format!(
                                        "a string that refers to a store path cannot be appended to a path: '{}'",
                                        s.as_str()
                                    )),
                                    Some(*span),
                                ));
                            }
                            text.push_str(s.as_str());
                        }
                    }
                }
                Ok(Value::path(crate::path::resolve(base, &text)))
            }
            Expr::List(items) => {
                let values = items.iter().map(|e| self.delay(e, env)).collect();
                Ok(Value::List(List::new(values)))
            }
            Expr::Attrs(code) => self.eval_attrs(code, env),
            Expr::Let(code) => self.eval_let(code, env),
            Expr::With { scope, body } => {
                let scope_value = self.delay(scope, env);
                let frame = Env::new(smallvec::smallvec![scope_value], Some(env.clone()));
                self.eval(body, &frame)
            }
            Expr::Lambda(code) => Ok(Value::Lambda(Rc::new(Closure {
                code: code.clone(),
                env: env.clone(),
            }))),
            Expr::Select {
                target,
                path,
                default,
                span,
            } => self.eval_select(target, path, default.as_deref(), *span, env),
            Expr::HasAttr { target, path } => {
                // Only the sets on the way are forced: `x ? a` asks whether
                // `a` exists, never what it is (Nix's `fix (x: { a = x ? a; })`).
                let mut v = self.eval(target, env)?;
                let last = path.len().saturating_sub(1);
                for (i, key) in path.iter().enumerate() {
                    let Value::Attrs(attrs) = v else {
                        return Ok(Value::Bool(false));
                    };
                    let Some(name) = self.attr_key(key, env)? else {
                        return Ok(Value::Bool(false));
                    };
                    match attrs.get(name) {
                        Some(_) if i == last => return Ok(Value::Bool(true)),
                        Some(found) => v = self.force(found)?,
                        None => return Ok(Value::Bool(false)),
                    }
                }
                Ok(Value::Bool(true))
            }
            Expr::Assert {
                cond,
                body,
                text,
                span,
            } => {
                let c = self.eval(cond, env)?;
                let c = self.expect_bool(&c).map_err(|e| e.at(*span))?;
                if c {
                    self.eval(body, env)
                } else {
                    Err(EvalError::new(
                        ErrorKind::AssertionFailed(text.clone()),
                        Some(*span),
                    ))
                }
            }
            Expr::Not(e, span) => {
                let v = self.eval(e, env)?;
                Ok(Value::Bool(!self.expect_bool(&v).map_err(|e| e.at(*span))?))
            }
            Expr::Negate(e, span) => {
                let v = self.eval(e, env)?;
                crate::ops::arith(self, crate::compile::ir::BinOp::Sub, Value::Int(0), v)
                    .map_err(|e| e.at(*span))
            }
            Expr::And(l, r, span) => {
                let lv = self.eval(l, env)?;
                if !self.expect_bool(&lv).map_err(|e| e.at(*span))? {
                    return Ok(Value::Bool(false));
                }
                let rv = self.eval(r, env)?;
                Ok(Value::Bool(self.expect_bool(&rv).map_err(|e| e.at(*span))?))
            }
            Expr::Or(l, r, span) => {
                let lv = self.eval(l, env)?;
                if self.expect_bool(&lv).map_err(|e| e.at(*span))? {
                    return Ok(Value::Bool(true));
                }
                let rv = self.eval(r, env)?;
                Ok(Value::Bool(self.expect_bool(&rv).map_err(|e| e.at(*span))?))
            }
            Expr::Implies(l, r, span) => {
                let lv = self.eval(l, env)?;
                if !self.expect_bool(&lv).map_err(|e| e.at(*span))? {
                    return Ok(Value::Bool(true));
                }
                let rv = self.eval(r, env)?;
                Ok(Value::Bool(self.expect_bool(&rv).map_err(|e| e.at(*span))?))
            }
            Expr::CurPos(span) => Ok(self.position_value(*span)),
            Expr::Shared(inner) => self.eval(inner, env),
            // The hot kinds are handled by `eval` before it gets here.
            Expr::Const(_)
            | Expr::Local { .. }
            | Expr::Call { .. }
            | Expr::If { .. }
            | Expr::Binary { .. } => self.eval(expr, env),
        }
    }

    fn eval_dynamic(
        &mut self,
        name: Symbol,
        withs: &[u32],
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<Value> {
        for depth in withs {
            let scope = env.lookup(*depth, 0).clone();
            let scope = self.force(&scope).map_err(|e| e.at(span))?;
            let attrs = self.expect_attrs(&scope).map_err(|e| e.at(span))?;
            if let Some(v) = attrs.get(name) {
                let v = v.clone();
                return self.force(&v);
            }
        }
        Err(EvalError::new(
            ErrorKind::UndefinedVariable(name.as_str().to_owned()),
            Some(span),
        ))
    }
}

/// The value of an operand if it is already known without evaluating
/// anything: a constant, or a variable whose value is computed.
#[inline]
fn known_int(e: &Expr, env: &Rc<Env>) -> Option<i64> {
    match e {
        Expr::Const(Value::Int(i)) => Some(*i),
        Expr::Local { depth, index, .. } => match env.lookup(*depth, *index) {
            Value::Int(i) => Some(*i),
            Value::Thunk(t) => match &*t.0.borrow() {
                ThunkState::Done(Value::Int(i)) => Some(*i),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// Integer arithmetic on operands that are already known, done now
/// instead of in a thunk. Only cases that cannot fail or diverge are
/// done (no overflow, no division), so laziness is unobservable; anything
/// else returns `None` and gets a thunk.
#[inline]
fn speculate(
    op: crate::compile::ir::BinOp,
    lhs: &Expr,
    rhs: &Expr,
    env: &Rc<Env>,
) -> Option<Value> {
    use crate::compile::ir::BinOp as B;
    if !matches!(op, B::Add | B::Sub | B::Mul | B::Less | B::Eq) {
        return None;
    }
    let a = known_int(lhs, env)?;
    let b = known_int(rhs, env)?;
    match op {
        B::Add => a.checked_add(b).map(Value::Int),
        B::Sub => a.checked_sub(b).map(Value::Int),
        B::Mul => a.checked_mul(b).map(Value::Int),
        B::Less => Some(Value::Bool(a < b)),
        _ => Some(Value::Bool(a == b)),
    }
}
