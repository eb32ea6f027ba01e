//! The parse-time variable check: every variable must be bound by an
//! enclosing lambda, `let`, `rec` set (or legacy `let { }`), be under a
//! `with`, or be a global. Nix reports violations as parse errors
//! ("undefined variable 'x'"), so `lang` does too.
//!
//! Scoping rules (Nix 2.8): formals' defaults see all formals and the `@`
//! name; in `let` and `rec` sets, values, `inherit (e)` sources and dynamic
//! names see the bindings; `inherit x;` looks `x` up *outside* the set or
//! `let`; `with e; body` makes every name in `body` acceptable (it may come
//! from `e` at run time), but not in `e` itself.
//!
//! The walk uses an explicit task stack, so arbitrarily deep trees (long
//! operator chains) are fine.

use rustc_hash::FxHashMap;

use crate::ast::*;
use crate::error::ParseError;
use crate::symbol::{Interner, Symbol};

/// Names that exist in Nix 2.8's global scope without the `__` prefix.
pub const PLAIN_GLOBALS: &[&str] = &[
    "abort",
    "baseNameOf",
    "builtins",
    "derivation",
    "derivationStrict",
    "dirOf",
    "false",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "null",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
    "true",
];

/// Builtins that Nix 2.8 puts in the global scope only as `__name`.
pub const UNDERSCORE_GLOBALS: &[&str] = &[
    "add",
    "addErrorContext",
    "all",
    "any",
    "appendContext",
    "attrNames",
    "attrValues",
    "bitAnd",
    "bitOr",
    "bitXor",
    "catAttrs",
    "ceil",
    "compareVersions",
    "concatLists",
    "concatMap",
    "concatStringsSep",
    "currentSystem",
    "currentTime",
    "curPos",
    "deepSeq",
    "div",
    "elem",
    "elemAt",
    "fetchurl",
    "filter",
    "filterSource",
    "findFile",
    "floor",
    "foldl'",
    "fromJSON",
    "functionArgs",
    "genList",
    "genericClosure",
    "getAttr",
    "getContext",
    "getEnv",
    "groupBy",
    "hasAttr",
    "hasContext",
    "hashFile",
    "hashString",
    "head",
    "intersectAttrs",
    "isAttrs",
    "isBool",
    "isFloat",
    "isFunction",
    "isInt",
    "isList",
    "isPath",
    "isString",
    "langVersion",
    "length",
    "lessThan",
    "listToAttrs",
    "mapAttrs",
    "match",
    "mul",
    "nixPath",
    "nixVersion",
    "parseDrvName",
    "partition",
    "path",
    "pathExists",
    "readDir",
    "readFile",
    "replaceStrings",
    "seq",
    "sort",
    "split",
    "splitVersion",
    "storeDir",
    "storePath",
    "stringLength",
    "sub",
    "substring",
    "tail",
    "toFile",
    "toJSON",
    "toPath",
    "toXML",
    "trace",
    "tryEval",
    "typeOf",
    "unsafeDiscardOutputDependency",
    "unsafeDiscardStringContext",
    "unsafeGetAttrPos",
    "zipAttrsWith",
];

/// Is `name` in Nix 2.8's global scope?
pub fn is_nix_global(name: &str) -> bool {
    match name.strip_prefix("__") {
        Some(rest) => UNDERSCORE_GLOBALS.contains(&rest),
        None => PLAIN_GLOBALS.contains(&name),
    }
}

enum Task<'a> {
    Visit(&'a Expr),
    /// Forget the last `n` names bound.
    Unbind(usize),
    EnterWith,
    LeaveWith,
}

struct Checker<'a, 'g> {
    interner: &'a Interner,
    is_global: &'g dyn Fn(&str) -> bool,
    global_cache: FxHashMap<Symbol, bool>,
    bound: FxHashMap<Symbol, u32>,
    bound_stack: Vec<Symbol>,
    with_depth: u32,
    tasks: Vec<Task<'a>>,
}

/// Checks that every variable in `expr` is defined; `is_global` says which
/// free names exist.
pub fn check_variables(
    expr: &Expr,
    interner: &Interner,
    is_global: &dyn Fn(&str) -> bool,
) -> Result<(), ParseError> {
    let mut c = Checker {
        interner,
        is_global,
        global_cache: FxHashMap::default(),
        bound: FxHashMap::default(),
        bound_stack: Vec::new(),
        with_depth: 0,
        tasks: vec![Task::Visit(expr)],
    };
    c.run()
}

impl<'a> Checker<'a, '_> {
    fn run(&mut self) -> Result<(), ParseError> {
        while let Some(task) = self.tasks.pop() {
            match task {
                Task::Visit(e) => self.visit(e)?,
                Task::Unbind(n) => {
                    for _ in 0..n {
                        if let Some(sym) = self.bound_stack.pop()
                            && let Some(count) = self.bound.get_mut(&sym)
                        {
                            *count -= 1;
                        }
                    }
                }
                Task::EnterWith => self.with_depth += 1,
                Task::LeaveWith => self.with_depth -= 1,
            }
        }
        Ok(())
    }

    fn bind(&mut self, sym: Symbol) {
        *self.bound.entry(sym).or_insert(0) += 1;
        self.bound_stack.push(sym);
    }

    fn check(&mut self, sym: Symbol, span: crate::Span) -> Result<(), ParseError> {
        if self.with_depth > 0 || self.bound.get(&sym).is_some_and(|&n| n > 0) {
            return Ok(());
        }
        let interner = self.interner;
        let is_global = self.is_global;
        let known = *self
            .global_cache
            .entry(sym)
            .or_insert_with(|| is_global(interner.resolve(sym)));
        if known {
            Ok(())
        } else {
            Err(ParseError::new(
                span,
                format!("undefined variable '{}'", interner.resolve(sym)),
            ))
        }
    }

    fn push(&mut self, e: &'a Expr) {
        self.tasks.push(Task::Visit(e));
    }

    fn push_parts(&mut self, parts: &'a [StrPart]) {
        for p in parts {
            if let StrPart::Interp(e) = p {
                self.push(e);
            }
        }
    }

    fn push_path(&mut self, path: &'a [AttrName]) {
        for n in path {
            if let AttrNameKind::Dynamic(e) = &n.kind {
                self.push(e);
            }
        }
    }

    /// Bindings of a `let` or `rec` set: plain `inherit`s are checked in
    /// the enclosing scope, then the names are bound for everything else.
    fn recursive_bindings(
        &mut self,
        b: &'a Bindings,
        body: Option<&'a Expr>,
    ) -> Result<(), ParseError> {
        for a in &b.attrs {
            if let AttrValue::Inherit = a.value {
                self.check(a.name.name, a.name.span)?;
            }
        }
        for a in &b.attrs {
            self.bind(a.name.name);
        }
        self.tasks.push(Task::Unbind(b.attrs.len()));
        self.push_bindings_children(b);
        if let Some(body) = body {
            self.push(body);
        }
        Ok(())
    }

    fn push_bindings_children(&mut self, b: &'a Bindings) {
        for a in &b.attrs {
            if let AttrValue::Expr(e) = &a.value {
                self.push(e);
            }
        }
        for d in &b.dynamic {
            self.push(&d.key);
            self.push(&d.value);
        }
        for e in &b.inherit_from {
            self.push(e);
        }
    }

    fn visit(&mut self, e: &'a Expr) -> Result<(), ParseError> {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Uri(_) => {}
            ExprKind::Var(sym) => self.check(*sym, e.span)?,
            ExprKind::Str(parts) => self.push_parts(parts),
            ExprKind::Path(p) => self.push_parts(&p.parts),
            ExprKind::List(items) => {
                for i in items {
                    self.push(i);
                }
            }
            ExprKind::Attrs(set) => {
                if set.rec {
                    self.recursive_bindings(&set.bindings, None)?;
                } else {
                    for a in &set.bindings.attrs {
                        if let AttrValue::Inherit = a.value {
                            self.check(a.name.name, a.name.span)?;
                        }
                    }
                    self.push_bindings_children(&set.bindings);
                }
            }
            ExprKind::Let(l) => self.recursive_bindings(&l.bindings, Some(&l.body))?,
            ExprKind::LegacyLet(b) => self.recursive_bindings(b, None)?,
            ExprKind::With(w) => {
                self.tasks.push(Task::LeaveWith);
                self.push(&w.body);
                self.tasks.push(Task::EnterWith);
                self.push(&w.env);
            }
            ExprKind::If(i) => {
                self.push(&i.cond);
                self.push(&i.then_branch);
                self.push(&i.else_branch);
            }
            ExprKind::Assert(a) => {
                self.push(&a.cond);
                self.push(&a.body);
            }
            ExprKind::Lambda(l) => {
                let mut n = 0;
                match &l.param {
                    Param::Ident(id) => {
                        self.bind(id.name);
                        n += 1;
                    }
                    Param::Formals(f) => {
                        for formal in &f.entries {
                            self.bind(formal.name.name);
                            n += 1;
                        }
                        if let Some(at) = &f.at {
                            self.bind(at.name.name);
                            n += 1;
                        }
                    }
                }
                self.tasks.push(Task::Unbind(n));
                self.push(&l.body);
                if let Param::Formals(f) = &l.param {
                    for formal in &f.entries {
                        if let Some(d) = &formal.default {
                            self.push(d);
                        }
                    }
                }
            }
            ExprKind::Apply(a) => {
                self.push(&a.arg);
                self.push(&a.func);
            }
            ExprKind::Unary(u) => self.push(&u.operand),
            ExprKind::Binary(b) => {
                self.push(&b.rhs);
                self.push(&b.lhs);
            }
            ExprKind::Select(s) => {
                if let Some(d) = &s.default {
                    self.push(d);
                }
                self.push_path(&s.path);
                self.push(&s.expr);
            }
            ExprKind::HasAttr(h) => {
                self.push_path(&h.path);
                self.push(&h.expr);
            }
        }
        Ok(())
    }
}
