//! Calls: primops, functors, lambdas and their formals.

use std::rc::Rc;

use smallvec::SmallVec;

use crate::compile::ir::{Expr, LambdaCode, Param};
use crate::env::Env;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::span::Span;
use crate::value::{Attrs, Closure, PrimOpApp, Thunk, Value};

use super::Machine;

impl Machine {
    /// Apply `func` (forced) to `arg`.
    pub fn call(&mut self, func: Value, arg: Value, span: Option<Span>) -> EvalResult<Value> {
        match func {
            Value::Lambda(closure) => self.call_lambda(&closure, arg, span),
            Value::PrimOp(app) => self.call_primop(&app, arg, span),
            Value::Attrs(attrs) => self.call_functor(attrs, arg, span),
            Value::Thunk(t) => {
                let f = self.force_thunk(&t)?;
                self.call(f, arg, span)
            }
            other => Err(not_callable(&other, span)),
        }
    }

    #[inline(never)]
    fn call_primop(
        &mut self,
        app: &PrimOpApp,
        arg: Value,
        span: Option<Span>,
    ) -> EvalResult<Value> {
        {
            {
                let builtin = app.builtin;
                if app.args.len() + 1 < builtin.arity {
                    let mut args = app.args.clone();
                    args.push(arg);
                    return Ok(Value::PrimOp(Rc::new(PrimOpApp { builtin, args })));
                }
                let mut args: SmallVec<[Value; 4]> = app.args.iter().cloned().collect();
                args.push(arg);
                self.enter()?;
                let result = (builtin.func)(self, &args);
                self.leave();
                result.map_err(|e| {
                    let e = match span {
                        Some(s) => e.at(s),
                        None => e,
                    };
                    e.builtin_context(builtin.name, span)
                })
            }
        }
    }

    #[inline(never)]
    fn call_functor(&mut self, attrs: Attrs, arg: Value, span: Option<Span>) -> EvalResult<Value> {
        let Some(functor) = attrs.get(self.sym.functor) else {
            return Err(not_callable(&Value::Attrs(attrs), span));
        };
        let functor = self.force(&functor.clone())?;
        let partial = self.call(functor, Value::Attrs(attrs), span)?;
        self.call(partial, arg, span)
    }

    fn call_lambda(
        &mut self,
        closure: &Closure,
        arg: Value,
        span: Option<Span>,
    ) -> EvalResult<Value> {
        let code: &LambdaCode = &closure.code;
        let frame = match &code.param {
            Param::Ident(_) => Env::new(smallvec::smallvec![arg], Some(closure.env.clone())),
            Param::Formals {
                formals,
                ellipsis,
                at,
            } => self.bind_formals(closure, formals, *ellipsis, at.is_some(), arg, span)?,
        };
        self.enter()?;
        let result = self.eval(&code.body, &frame);
        self.leave();
        result.map_err(|e| {
            let what = match code.name {
                Some(name) => format!("while calling '{name}'"),
                None => "while calling an anonymous function".to_owned(),
            };
            e.context(what, span)
        })
    }

    fn bind_formals(
        &mut self,
        closure: &Closure,
        formals: &[crate::compile::ir::Formal],
        ellipsis: bool,
        has_at: bool,
        arg: Value,
        span: Option<Span>,
    ) -> EvalResult<Rc<Env>> {
        let code = &closure.code;
        // As Nix 2.8 names a function in these errors: `'f' at FILE:L:C`
        // or `anonymous function at FILE:L:C` (worked out on error only).
        let fname = |sources: &crate::source::Sources| {
            let (file, line, column) = sources.line_column(code.span);
            match code.name {
                Some(n) => format!("'{}' at {file}:{line}:{column}", n.as_str()),
                None => format!("anonymous function at {file}:{line}:{column}"),
            }
        };
        let forced = self.force(&arg)?;
        let attrs = self.expect_attrs(&forced).map_err(|e| match span {
            Some(s) => e.at(s),
            None => e,
        })?;
        if !ellipsis {
            for (name, _) in attrs.iter() {
                if !formals.iter().any(|f| f.name == name) {
                    return Err(EvalError::new(
                        ErrorKind::UnexpectedArgument {
                            function: fname(&self.sources),
                            name: name.as_str().to_owned(),
                        },
                        span.or(Some(code.span)),
                    ));
                }
            }
        }
        let mut slots: SmallVec<[Value; 2]> = SmallVec::with_capacity(formals.len() + 1);
        let mut pending = Vec::new();
        for (i, formal) in formals.iter().enumerate() {
            match (attrs.get(formal.name), &formal.default) {
                (Some(v), _) => slots.push(v.clone()),
                (None, Some(default)) => match &**default {
                    Expr::Const(v) => slots.push(v.clone()),
                    _ => {
                        slots.push(Value::Thunk(Thunk::uninit()));
                        pending.push(i);
                    }
                },
                (None, None) => {
                    return Err(EvalError::new(
                        ErrorKind::MissingArgument {
                            function: fname(&self.sources),
                            name: formal.name.as_str().to_owned(),
                        },
                        span.or(Some(code.span)),
                    ));
                }
            }
        }
        if has_at {
            slots.push(forced);
        }
        let frame = Env::new(slots, Some(closure.env.clone()));
        for i in pending {
            if let (Value::Thunk(t), Some(default)) = (&frame.slots[i], &formals[i].default) {
                t.init(default.clone(), frame.clone());
            }
        }
        Ok(frame)
    }

    /// Call `func` with each of `args` in turn.
    pub fn call_with(&mut self, func: &Value, args: &[Value]) -> EvalResult<Value> {
        let mut f = self.force(func)?;
        for a in args {
            f = self.call(f, a.clone(), None)?;
        }
        Ok(f)
    }
}

fn not_callable(v: &Value, span: Option<Span>) -> EvalError {
    EvalError::new(
        ErrorKind::InvalidValue(format!(
            "attempt to call something which is not a function but {}",
            v.type_description()
        )),
        span,
    )
}
