//! The machine: evaluates compiled expressions to values.
//!
//! Evaluation is a recursive walk over [`Expr`] with an environment.
//! `eval` always returns a forced value (never a thunk); sub-expressions
//! that must stay lazy become thunks through `Machine::delay`, which
//! skips the thunk for constants and variables (they are already values or
//! thunks). Recursion depth is counted, and the evaluation thread is given
//! a large stack (see [`crate::run_with_big_stack`]), so runaway recursion
//! ends as the error "stack overflow (possible infinite recursion)".

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::builtins;
use crate::compile::ir::{
    AttrKey, AttrsCode, Expr, LambdaCode, LetCode, Param, StaticLayout, StrPart,
};
use crate::env::Env;
use crate::error::{ErrorKind, EvalError, EvalResult, closest_names};
use crate::options::EvalOptions;
use crate::search_path::SearchPathEntry;
use crate::source::Sources;
use crate::span::Span;
use crate::store::EvalStore;
use crate::symbol::Symbol;
use crate::value::{
    Attrs, Closure, List, NixString, PrimOpApp, StringBuilder, Thunk, ThunkState, Value,
};

/// Interned names the machine itself uses.
pub(crate) struct KnownSymbols {
    pub functor: Symbol,
    pub to_string: Symbol,
    pub out_path: Symbol,
    pub overrides: Symbol,
    pub type_: Symbol,
    pub file: Symbol,
    pub line: Symbol,
    pub column: Symbol,
    pub name: Symbol,
    pub value: Symbol,
}

impl KnownSymbols {
    fn new() -> KnownSymbols {
        KnownSymbols {
            functor: Symbol::intern("__functor"),
            to_string: Symbol::intern("__toString"),
            out_path: Symbol::intern("outPath"),
            overrides: Symbol::intern("__overrides"),
            type_: Symbol::intern("type"),
            file: Symbol::intern("file"),
            line: Symbol::intern("line"),
            column: Symbol::intern("column"),
            name: Symbol::intern("name"),
            value: Symbol::intern("value"),
        }
    }
}

/// How far recursion may go on a thread whose stack size is unknown (not
/// started by [`crate::run_with_big_stack`]); sized for an 8 MiB stack.
pub const DEFAULT_MAX_DEPTH: usize = 4_000;

/// What is kept free at the end of the stack for the frames between two
/// checks and for rendering the error.
const STACK_MARGIN: usize = 4 << 20;

thread_local! {
    /// Lowest stack address the evaluator may use on this thread (0 when
    /// unknown). Set by [`crate::run_with_big_stack`].
    static STACK_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The current stack position (an address inside the current frame).
#[inline(always)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Record that this thread has `size` bytes of stack below the caller
/// (0: unknown, so recursion is bounded by [`DEFAULT_MAX_DEPTH`]).
pub(crate) fn set_stack_size_here(size: usize) {
    let limit = match size {
        0 => 0,
        _ => stack_pointer().saturating_sub(size.saturating_sub(STACK_MARGIN)),
    };
    STACK_LIMIT.with(|l| l.set(limit));
}

pub struct Machine {
    depth: usize,
    pub max_depth: usize,
    /// Lowest stack address allowed (0: rely on `max_depth` only).
    stack_limit: usize,
    pub(crate) sym: KnownSymbols,
    /// The `builtins` set.
    pub(crate) builtins: Attrs,
    pub(crate) sources: Sources,
    pub(crate) import_cache: FxHashMap<PathBuf, Value>,
    pub(crate) search_path: Vec<SearchPathEntry>,
    pub(crate) store: Rc<dyn EvalStore>,
    pub(crate) options: EvalOptions,
    /// Sources already copied to the store, by absolute path.
    pub(crate) copied_sources: FxHashMap<PathBuf, String>,
    /// The parser's names (the compiler re-interns them as [`Symbol`]s).
    pub(crate) interner: kiln_lang::symbol::Interner,
    /// The global scope the compiler resolves free names against.
    pub(crate) globals: FxHashMap<Symbol, Value>,
}

impl Machine {
    pub fn new(options: EvalOptions, store: Rc<dyn EvalStore>) -> Machine {
        let search_path = options.search_path.clone();
        let mut machine = Machine {
            depth: 0,
            max_depth: DEFAULT_MAX_DEPTH,
            stack_limit: STACK_LIMIT.with(|l| l.get()),
            sym: KnownSymbols::new(),
            builtins: Attrs::empty(),
            sources: Sources::default(),
            import_cache: FxHashMap::default(),
            search_path,
            store,
            options,
            copied_sources: FxHashMap::default(),
            interner: kiln_lang::symbol::Interner::new(),
            globals: FxHashMap::default(),
        };
        machine.builtins = builtins::builtins_set(&machine);
        machine.globals = builtins::global_scope(&machine).into_iter().collect();
        machine
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    pub fn store(&self) -> &Rc<dyn EvalStore> {
        &self.store
    }

    pub fn options(&self) -> &EvalOptions {
        &self.options
    }

    // ----- forcing -------------------------------------------------------

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

    #[inline]
    fn enter(&mut self) -> EvalResult<()> {
        self.depth += 1;
        let exhausted = if self.stack_limit != 0 {
            stack_pointer() < self.stack_limit
        } else {
            self.depth > self.max_depth
        };
        if exhausted {
            self.depth -= 1;
            return Err(EvalError::new(ErrorKind::StackOverflow, None));
        }
        Ok(())
    }

    /// Fail with a stack overflow error when the stack is nearly used up.
    /// For recursive walks outside `eval` (printing, equality, JSON, deep
    /// forcing) over values that can be nested arbitrarily deep.
    #[inline]
    pub fn check_stack(&self) -> EvalResult<()> {
        let exhausted = if self.stack_limit != 0 {
            stack_pointer() < self.stack_limit
        } else {
            self.depth > self.max_depth
        };
        if exhausted {
            return Err(EvalError::new(ErrorKind::StackOverflow, None));
        }
        Ok(())
    }

    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
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

    /// The name of an attribute key; `None` for a dynamic `null` key.
    fn attr_key(&mut self, key: &AttrKey, env: &Rc<Env>) -> EvalResult<Option<Symbol>> {
        match key {
            AttrKey::Static(s) => Ok(Some(*s)),
            AttrKey::Dynamic(e, span) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::Null => Ok(None),
                    other => {
                        let s = self.expect_string(&other).map_err(|e| e.at(*span))?;
                        Ok(Some(s.to_symbol()))
                    }
                }
            }
        }
    }

    fn eval_select(
        &mut self,
        target: &Expr,
        path: &[AttrKey],
        default: Option<&Expr>,
        span: Span,
        env: &Rc<Env>,
    ) -> EvalResult<Value> {
        let mut v = self.eval(target, env)?;
        for key in path {
            let name = self.attr_key(key, env)?;
            let attrs = match &v {
                Value::Attrs(a) => a.clone(),
                other => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let name = name.map(|n| n.as_str()).unwrap_or("null");
                    return Err(EvalError::new(
                        ErrorKind::TypeError {
                            expected: "a set",
                            got: other.type_description(),
                        },
                        Some(span),
                    )
                    .context(
                        format!("while selecting the attribute '{name}'"),
                        Some(span),
                    ));
                }
            };
            let found = name.and_then(|n| attrs.get(n));
            match found {
                Some(found) => {
                    let found = found.clone();
                    let name = name.unwrap_or(self.sym.name);
                    v = self.force(&found).map_err(|e| {
                        e.context(
                            format!("while evaluating the attribute '{name}'"),
                            Some(span),
                        )
                    })?;
                }
                None => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let wanted = name.map(|n| n.as_str()).unwrap_or("null");
                    return Err(self.missing_attribute(wanted, &attrs, span));
                }
            }
        }
        Ok(v)
    }

    pub(crate) fn missing_attribute(&self, wanted: &str, attrs: &Attrs, span: Span) -> EvalError {
        let suggestions = closest_names(wanted, attrs.iter().map(|(n, _)| n.as_str()));
        EvalError::new(
            ErrorKind::MissingAttribute {
                name: wanted.to_owned(),
                suggestions,
            },
            Some(span),
        )
    }

    fn eval_attrs(&mut self, code: &AttrsCode, env: &Rc<Env>) -> EvalResult<Value> {
        if !code.has_overrides
            && let Some(layout) = code.layout()
        {
            return Ok(Value::Attrs(self.eval_static_attrs(code, layout, env)));
        }
        let (scope, mut entries) = if code.recursive {
            // Slots first, then the frame that refers to them, then fill.
            let slots: SmallVec<[Value; 2]> = code
                .statics
                .iter()
                .map(|a| match &*a.value {
                    // With `__overrides` every slot must be replaceable.
                    Expr::Const(v) if !code.has_overrides => v.clone(),
                    _ => Value::Thunk(Thunk::uninit()),
                })
                .collect();
            let frame = Env::new(slots, Some(env.clone()));
            for (slot, attr) in frame.slots.iter().zip(&code.statics) {
                if let Value::Thunk(t) = slot {
                    t.init(attr.value.clone(), frame.clone());
                }
            }
            let entries: Vec<(Symbol, Value, Option<Span>)> = frame
                .slots
                .iter()
                .zip(&code.statics)
                .map(|(v, a)| (a.name, v.clone(), Some(a.span)))
                .collect();
            (frame, entries)
        } else {
            let entries = code
                .statics
                .iter()
                .map(|a| (a.name, self.delay(&a.value, env), Some(a.span)))
                .collect();
            (env.clone(), entries)
        };
        for dynamic in &code.dynamics {
            let name = self.eval(&dynamic.name, &scope)?;
            let name = match name {
                Value::Null => continue,
                other => self.expect_string(&other).map_err(|e| e.at(dynamic.span))?,
            };
            let sym = name.to_symbol();
            if entries.iter().any(|(n, _, _)| *n == sym) {
                return Err(EvalError::new(
                    ErrorKind::InvalidValue(format!(
                        "dynamic attribute '{}' already defined",
                        name.as_str()
                    )),
                    Some(dynamic.span),
                ));
            }
            entries.push((sym, self.delay(&dynamic.value, &scope), Some(dynamic.span)));
        }
        let attrs = Attrs::from_entries_with_positions(entries);
        if code.has_overrides
            && let Some(overrides) = attrs.get(self.sym.overrides)
        {
            return self.apply_overrides(&attrs, overrides.clone(), &scope, code);
        }
        Ok(Value::Attrs(attrs))
    }

    /// A literal without dynamic attributes: one vector filled in the
    /// order worked out at compile time.
    fn eval_static_attrs(
        &mut self,
        code: &AttrsCode,
        layout: &StaticLayout,
        env: &Rc<Env>,
    ) -> Attrs {
        let mut entries = Vec::with_capacity(code.statics.len());
        if code.recursive {
            // Slots first, then the frame that refers to them, then fill.
            let slots: SmallVec<[Value; 2]> = code
                .statics
                .iter()
                .map(|a| match &*a.value {
                    Expr::Const(v) => v.clone(),
                    _ => Value::Thunk(Thunk::uninit()),
                })
                .collect();
            let frame = Env::new(slots, Some(env.clone()));
            for (slot, attr) in frame.slots.iter().zip(&code.statics) {
                if let Value::Thunk(t) = slot {
                    t.init(attr.value.clone(), frame.clone());
                }
            }
            for &i in &layout.order {
                let i = i as usize;
                entries.push((code.statics[i].name, frame.slots[i].clone()));
            }
        } else {
            for &i in &layout.order {
                let attr = &code.statics[i as usize];
                entries.push((attr.name, self.delay(&attr.value, env)));
            }
        }
        Attrs::from_sorted_with_positions(entries, layout.positions.clone())
    }

    /// `rec { __overrides = { … }; … }`: the attributes of `__overrides`
    /// replace those of the set, also where the set refers to itself.
    fn apply_overrides(
        &mut self,
        attrs: &Attrs,
        overrides: Value,
        scope: &Rc<Env>,
        code: &AttrsCode,
    ) -> EvalResult<Value> {
        let overrides = self.force(&overrides)?;
        let overrides = self.expect_attrs(&overrides)?;
        for (name, value) in overrides.iter() {
            if let Some(i) = code.statics.iter().position(|a| a.name == name)
                && let Value::Thunk(t) = &scope.slots[i]
            {
                *t.0.borrow_mut() = ThunkState::Alias(value.clone());
            }
        }
        Ok(Value::Attrs(attrs.update(&overrides)))
    }

    fn eval_let(&mut self, code: &LetCode, env: &Rc<Env>) -> EvalResult<Value> {
        let slots: SmallVec<[Value; 2]> = code
            .bindings
            .iter()
            .map(|b| match &**b {
                Expr::Const(v) => v.clone(),
                _ => Value::Thunk(Thunk::uninit()),
            })
            .collect();
        let frame = Env::new(slots, Some(env.clone()));
        for (slot, binding) in frame.slots.iter().zip(&code.bindings) {
            if let Value::Thunk(t) = slot {
                t.init(binding.clone(), frame.clone());
            }
        }
        self.eval(&code.body, &frame)
    }

    // ----- calls ---------------------------------------------------------

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
        let fname = || {
            code.name
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|| "anonymous lambda".to_owned())
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
                            function: fname(),
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
                            function: fname(),
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

    // ----- helpers for builtins and operators ----------------------------

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

    /// Call `func` with each of `args` in turn.
    pub fn call_with(&mut self, func: &Value, args: &[Value]) -> EvalResult<Value> {
        let mut f = self.force(func)?;
        for a in args {
            f = self.call(f, a.clone(), None)?;
        }
        Ok(f)
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

pub(crate) fn type_error(expected: &'static str, got: &Value) -> EvalError {
    EvalError::new(
        ErrorKind::TypeError {
            expected,
            got: got.type_description(),
        },
        None,
    )
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

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn deep_recursion_works_and_runaway_recursion_is_an_error() {
        assert_eq!(
            eval_str("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 100000").unwrap(),
            "100000"
        );
        let err = eval_str("let f = n: 1 + f (n + 1); in f 0").unwrap_err();
        assert!(err.contains("stack overflow"), "{err}");
    }

    #[test]
    fn has_attr_does_not_force_the_attribute_it_asks_about() {
        // Expected values from Nix 2.8 (`nix-instantiate --eval --strict`).
        assert_eq!(
            eval_str(
                "let fix = f: let x = f x; in x; in [ (fix (x: { a = if x ? a then \"a\" else \"b\"; })) ({ a = throw \"no\"; } ? a) ({ a = { b = 1; }; } ? a.b) ({ a = 1; } ? a.b) ]"
            )
            .unwrap(),
            "[ { a = \"a\"; } true true false ]"
        );
    }

    #[test]
    fn a_thunk_that_needs_itself_is_infinite_recursion() {
        let err = eval_str("let x = x + 1; in x").unwrap_err();
        assert!(err.contains("infinite recursion"), "{err}");
        // A failed thunk is not left blackholed: forcing it again repeats
        // the original error.
        assert_eq!(
            eval_str("let x = throw \"t\"; in [ (builtins.tryEval x).success (builtins.tryEval x).success ]").unwrap(),
            "[ false false ]"
        );
    }

    #[test]
    fn attribute_set_literals_keep_order_positions_and_recursion() {
        // Names interned in an order unlike their alphabetical one, built
        // by the compile-time layout (no dynamic attributes).
        assert_eq!(
            eval_str("builtins.attrNames { zz = 1; b = 2; aa = 3; }").unwrap(),
            "[ \"aa\" \"b\" \"zz\" ]"
        );
        assert_eq!(
            eval_str("let s = rec { y = x + 1; x = 1; z = y * 2; }; in [ s.x s.y s.z ]").unwrap(),
            "[ 1 2 4 ]"
        );
        // Each attribute keeps its own position, whatever the sort did.
        assert_eq!(
            eval_str(
                "let s = {\n  zz = 1;\n  b = 2;\n}; in map (n: (builtins.unsafeGetAttrPos n s).line) [ \"b\" \"zz\" ]"
            )
            .unwrap(),
            "[ 3 2 ]"
        );
        // With a dynamic attribute the general path is taken.
        assert_eq!(
            eval_str("let k = \"a\"; in builtins.attrNames { ${k} = 1; zz = 2; b = 3; }").unwrap(),
            "[ \"a\" \"b\" \"zz\" ]"
        );
    }

    #[test]
    fn scoping_rules() {
        // `let` beats `with`; globals beat `with`; inner `with` beats outer.
        assert_eq!(
            eval_str("let a = 1; in with { a = 2; b = 3; }; [ a b (with { b = 4; }; b) ]").unwrap(),
            "[ 1 3 4 ]"
        );
        assert_eq!(
            eval_str("with { map = 1; }; builtins.isFunction map").unwrap(),
            "true"
        );
        assert_eq!(
            eval_str("rec { a = b; b = 2; c = { inherit a; }; }.c.a").unwrap(),
            "2"
        );
        assert_eq!(
            eval_str("({ a, b ? a + 1, ... }@args: [ b args.c ]) { a = 1; c = 5; }").unwrap(),
            "[ 2 5 ]"
        );
    }

    #[test]
    fn calling_errors_name_the_argument() {
        let missing = eval_str("({ a, b }: a) { a = 1; }").unwrap_err();
        assert!(
            missing.contains("without required argument 'b'"),
            "{missing}"
        );
        let extra = eval_str("({ a }: a) { a = 1; z = 2; }").unwrap_err();
        assert!(extra.contains("unexpected argument 'z'"), "{extra}");
        let not_fn = eval_str("1 2").unwrap_err();
        assert!(not_fn.contains("not a function but an integer"), "{not_fn}");
    }

    #[test]
    fn equality_and_ordering_follow_nix() {
        assert_eq!(
            eval_str("let f = x: x; in [ (1 == 1.0) ([ 1 2 ] == [ 1 2 ]) ({ a = 1; } == { a = 1; }) (f == f) ([ f ] == [ f ]) ([ 1 2 ] < [ 1 3 ]) (\"a\" < \"b\") ]").unwrap(),
            "[ true true true false true true true ]"
        );
        assert!(eval_str("1 < \"a\"").is_err());
    }

    #[test]
    fn type_errors_name_both_types() {
        let err = eval_str("{ } + 1").unwrap_err();
        assert_eq!(err, "cannot coerce a set to a string");
        let err = eval_str("if 1 then 2 else 3").unwrap_err();
        assert_eq!(err, "value is an integer while a Boolean was expected");
        let err = eval_str("\"a\".b").unwrap_err();
        assert_eq!(err, "value is a string while a set was expected");
    }
}
