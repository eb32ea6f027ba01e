//! From syntax tree to [`ir::Expr`]: names resolved, constants folded.
//!
//! One pass over the AST with a stack of [`scope::Scopes`]. The lang
//! crate's interned names are re-interned as the evaluator's
//! [`Symbol`]s (the evaluator's interner also holds
//! names made at run time). Path literals are resolved against the
//! directory of the file they are in; `<p>` becomes `__findFile __nixPath
//! "p"` so a program can shadow either, as in Nix.
//!
//! The parser has already rejected unbound variables, duplicate
//! attributes and bad formals, so the errors here are the rare cases that
//! remain (a name that is unbound in a `scopedImport` file).

pub mod ir;
pub mod scope;
pub mod show;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use kiln_lang::ast;
use kiln_lang::source::SourceMap;
use kiln_lang::symbol::Interner;
use rustc_hash::FxHashMap;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::symbol::Symbol;
use crate::value::Value;
use ir::{
    AttrKey, AttrsCode, BinOp, DynamicAttr, Expr, Formal, LambdaCode, LetCode, Param, StaticAttr,
    StrPart,
};
use scope::{Resolution, Scope, Scopes};

/// What the compiler needs to know about the world.
pub struct CompileContext<'a> {
    pub interner: &'a Interner,
    pub sources: &'a SourceMap,
    /// Directory relative path literals are resolved against.
    pub base_dir: &'a Path,
    /// The global scope: `builtins`, `map`, `true`, `__nixPath`, ….
    pub globals: &'a FxHashMap<Symbol, Value>,
    /// Names bound in the file's outermost frame (`scopedImport`).
    pub outer_names: Vec<Symbol>,
}

struct Compiler<'a> {
    ctx: &'a CompileContext<'a>,
    scopes: Scopes,
    symbols: FxHashMap<u32, Symbol>,
    cur_pos: Symbol,
    find_file: Symbol,
    nix_path: Symbol,
}

/// Compile `expr`. The runtime frame for the file's outermost scope holds
/// the values of `ctx.outer_names` in order.
pub fn compile(expr: &mut ast::Expr, ctx: &CompileContext<'_>) -> EvalResult<Expr> {
    let mut compiler = Compiler {
        ctx,
        scopes: Scopes::default(),
        symbols: FxHashMap::default(),
        cur_pos: Symbol::intern("__curPos"),
        find_file: Symbol::intern("__findFile"),
        nix_path: Symbol::intern("__nixPath"),
    };
    compiler
        .scopes
        .push(Scope::Lexical(ctx.outer_names.clone()));
    compiler.expr(expr, None)
}

impl Compiler<'_> {
    fn sym(&mut self, s: kiln_lang::Symbol) -> Symbol {
        if let Some(found) = self.symbols.get(&s.0) {
            return *found;
        }
        let ours = Symbol::intern(self.ctx.interner.resolve(s));
        self.symbols.insert(s.0, ours);
        ours
    }

    fn rc(&mut self, e: &mut ast::Expr, name: Option<Symbol>) -> EvalResult<Rc<Expr>> {
        Ok(Rc::new(self.expr(e, name)?))
    }

    fn variable(&mut self, name: Symbol, span: kiln_lang::Span, skip: usize) -> EvalResult<Expr> {
        match self.scopes.resolve(name, skip) {
            Resolution::Local { depth, index } => Ok(Expr::Local { depth, index, span }),
            other => {
                if let Some(v) = self.ctx.globals.get(&name) {
                    return Ok(Expr::Const(v.clone()));
                }
                if name == self.cur_pos {
                    return Ok(Expr::CurPos(span));
                }
                match other {
                    Resolution::Dynamic(withs) => Ok(Expr::Dynamic {
                        name,
                        withs: withs.into_boxed_slice(),
                        span,
                    }),
                    _ => Err(EvalError::new(
                        ErrorKind::UndefinedVariable(name.as_str().to_owned()),
                        Some(span),
                    )),
                }
            }
        }
    }

    /// `name` is the binding this expression is the value of, to name
    /// lambdas in traces.
    ///
    /// The AST node is consumed: once compiled, its contents are dropped,
    /// so the syntax tree shrinks while the compiled form grows and the
    /// two never both exist whole (that halves peak memory on big files).
    fn expr(&mut self, e: &mut ast::Expr, name: Option<Symbol>) -> EvalResult<Expr> {
        let compiled = self.expr_inner(e, name);
        e.kind = ast::ExprKind::default();
        compiled
    }

    fn expr_inner(&mut self, e: &mut ast::Expr, name: Option<Symbol>) -> EvalResult<Expr> {
        use ast::ExprKind as K;
        let span = e.span;
        Ok(match &mut e.kind {
            K::Int(i) => Expr::Const(Value::Int(*i)),
            K::Float(f) => Expr::Const(Value::Float(*f)),
            K::Uri(u) => Expr::Const(Value::string(&**u)),
            K::Str(parts) => self.string(parts, span)?,
            K::Path(p) => self.path(p, span)?,
            K::Var(v) => {
                let name = self.sym(*v);
                self.variable(name, span, 0)?
            }
            K::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter_mut() {
                    out.push(self.rc(item, None)?);
                }
                Expr::List(out.into_boxed_slice())
            }
            K::Attrs(set) => {
                let rec = set.rec;
                self.attrs(&mut set.bindings, rec, span)?
            }
            K::LegacyLet(bindings) => {
                let set = self.attrs(bindings, true, span)?;
                Expr::Select {
                    target: Box::new(set),
                    path: Box::new([AttrKey::Static(Symbol::intern("body"))]),
                    default: None,
                    span,
                }
            }
            K::Let(l) => self.let_in(l)?,
            K::With(w) => {
                let scope = self.rc(&mut w.env, None)?;
                self.scopes.push(Scope::With);
                let body = self.expr(&mut w.body, None);
                self.scopes.pop();
                Expr::With {
                    scope,
                    body: Box::new(body?),
                }
            }
            K::If(i) => Expr::If {
                cond: Box::new(self.expr(&mut i.cond, None)?),
                then: Box::new(self.expr(&mut i.then_branch, None)?),
                otherwise: Box::new(self.expr(&mut i.else_branch, None)?),
                span,
            },
            K::Assert(a) => {
                // As Nix 2.8 prints it: re-parenthesised, not as written.
                let text = show::show(&a.cond, self.ctx.interner, self.ctx.base_dir);
                Expr::Assert {
                    cond: Box::new(self.expr(&mut a.cond, None)?),
                    body: Box::new(self.expr(&mut a.body, None)?),
                    text,
                    span,
                }
            }
            K::Lambda(l) => Expr::Lambda(self.lambda(l, name, span)?),
            K::Apply(app) => {
                // `f a b c` becomes one call with three arguments.
                let func = self.expr(&mut app.func, None)?;
                let arg = self.rc(&mut app.arg, None)?;
                match func {
                    Expr::Call { func, args, .. } => {
                        let mut args = args.into_vec();
                        args.push(arg);
                        Expr::Call {
                            func,
                            args: args.into_boxed_slice(),
                            span,
                        }
                    }
                    other => Expr::Call {
                        func: Box::new(other),
                        args: Box::new([arg]),
                        span,
                    },
                }
            }
            K::Unary(u) => {
                let operand = Box::new(self.expr(&mut u.operand, None)?);
                match u.op {
                    ast::UnOp::Neg => match *operand {
                        Expr::Const(Value::Int(i)) if i != i64::MIN => Expr::Const(Value::Int(-i)),
                        Expr::Const(Value::Float(f)) => Expr::Const(Value::Float(0.0 - f)),
                        other => Expr::Negate(Box::new(other), span),
                    },
                    ast::UnOp::Not => Expr::Not(operand, span),
                }
            }
            K::Binary(b) => {
                let lhs = Box::new(self.expr(&mut b.lhs, None)?);
                let rhs = Box::new(self.expr(&mut b.rhs, None)?);
                use ast::BinOp as A;
                let op = match b.op {
                    A::And => BinOp::Concat,
                    A::Or => BinOp::Concat,
                    A::Impl => BinOp::Concat,
                    A::Concat => BinOp::Concat,
                    A::Mul => BinOp::Mul,
                    A::Div => BinOp::Div,
                    A::Add => BinOp::Add,
                    A::Sub => BinOp::Sub,
                    A::Update => BinOp::Update,
                    A::Lt => BinOp::Less,
                    A::Le => BinOp::LessEq,
                    A::Gt => BinOp::Greater,
                    A::Ge => BinOp::GreaterEq,
                    A::Eq => BinOp::Eq,
                    A::Ne => BinOp::NotEq,
                };
                match b.op {
                    A::And => Expr::And(lhs, rhs, span),
                    A::Or => Expr::Or(lhs, rhs, span),
                    A::Impl => Expr::Implies(lhs, rhs, span),
                    _ => Expr::Binary { op, lhs, rhs, span },
                }
            }
            K::Select(s) => Expr::Select {
                target: Box::new(self.expr(&mut s.expr, None)?),
                path: self.attr_path(&mut s.path)?,
                default: match &mut s.default {
                    Some(d) => Some(Box::new(self.expr(d, None)?)),
                    None => None,
                },
                span,
            },
            K::HasAttr(h) => Expr::HasAttr {
                target: Box::new(self.expr(&mut h.expr, None)?),
                path: self.attr_path(&mut h.path)?,
            },
        })
    }

    fn attr_path(&mut self, path: &mut ast::AttrPath) -> EvalResult<Box<[AttrKey]>> {
        let mut out = Vec::with_capacity(path.len());
        for part in path.iter_mut() {
            out.push(match &mut part.kind {
                ast::AttrNameKind::Static(s) => AttrKey::Static(self.sym(*s)),
                ast::AttrNameKind::Dynamic(e) => AttrKey::Dynamic(self.expr(e, None)?, part.span),
            });
        }
        Ok(out.into_boxed_slice())
    }

    fn parts(&mut self, parts: &mut [ast::StrPart]) -> EvalResult<Vec<StrPart>> {
        let mut out = Vec::with_capacity(parts.len());
        for part in parts.iter_mut() {
            out.push(match part {
                ast::StrPart::Literal(t) => StrPart::Literal(t.clone()),
                ast::StrPart::Interp(e) => StrPart::Interp(self.expr(e, None)?, e.span),
            });
        }
        Ok(out)
    }

    fn string(&mut self, parts: &mut [ast::StrPart], span: kiln_lang::Span) -> EvalResult<Expr> {
        match parts {
            [] => Ok(Expr::Const(Value::string(""))),
            [ast::StrPart::Literal(t)] => Ok(Expr::Const(Value::string(&**t))),
            _ => Ok(Expr::Interpolate {
                parts: self.parts(parts)?.into_boxed_slice(),
                span,
            }),
        }
    }

    fn path(&mut self, p: &mut ast::PathLit, span: kiln_lang::Span) -> EvalResult<Expr> {
        let literal = |parts: &[ast::StrPart]| match parts {
            [ast::StrPart::Literal(t)] => Some(t.to_string()),
            _ => None,
        };
        match p.kind {
            ast::PathKind::Search => {
                let wanted = literal(&p.parts).unwrap_or_default();
                let find = self.variable(self.find_file, span, 0)?;
                let nix_path = self.variable(self.nix_path, span, 0)?;
                Ok(Expr::Call {
                    func: Box::new(find),
                    args: Box::new([
                        Rc::new(nix_path),
                        Rc::new(Expr::Const(Value::string(wanted))),
                    ]),
                    span,
                })
            }
            kind => {
                let base: PathBuf = match kind {
                    ast::PathKind::Home => match std::env::var("HOME") {
                        Ok(home) => PathBuf::from(home),
                        Err(_) => {
                            return Err(EvalError::new(
                                ErrorKind::InvalidValue(
                                    "HOME is not set; cannot resolve a '~/' path".into(),
                                ),
                                Some(span),
                            ));
                        }
                    },
                    ast::PathKind::Absolute => PathBuf::from("/"),
                    _ => self.ctx.base_dir.to_path_buf(),
                };
                let mut parts = self.parts(&mut p.parts)?;
                if kind == ast::PathKind::Home {
                    // `~/a` is written with its `~`; the base is $HOME.
                    if let Some(StrPart::Literal(first)) = parts.first_mut() {
                        *first = first.trim_start_matches('~').trim_start_matches('/').into();
                    }
                }
                if let [StrPart::Literal(text)] = parts.as_slice() {
                    return Ok(Expr::Const(Value::path(crate::path::resolve(&base, text))));
                }
                Ok(Expr::PathInterpolate {
                    parts: parts.into_boxed_slice(),
                    base: Rc::new(base),
                    span,
                })
            }
        }
    }

    /// The value expression of a static binding. `own_scope` tells whether
    /// the bindings' scope is pushed (rec/let), so `inherit x;` must skip it.
    /// `from` are the compiled `inherit (e)` sources.
    fn binding_value(
        &mut self,
        attr: &mut ast::Attr,
        from: &[Rc<Expr>],
        own_scope: bool,
    ) -> EvalResult<Rc<Expr>> {
        let name = self.sym(attr.name.name);
        Ok(Rc::new(match &mut attr.value {
            ast::AttrValue::Expr(e) => self.expr(e, Some(name))?,
            ast::AttrValue::Inherit => {
                self.variable(name, attr.name.span, usize::from(own_scope))?
            }
            ast::AttrValue::InheritFrom(index) => {
                let Some(source) = from.get(*index as usize) else {
                    return Err(EvalError::new(
                        ErrorKind::InvalidValue("malformed inherit".into()),
                        Some(attr.name.span),
                    ));
                };
                Expr::Select {
                    target: Box::new(Expr::Shared(source.clone())),
                    path: Box::new([AttrKey::Static(name)]),
                    default: None,
                    span: attr.name.span,
                }
            }
        }))
    }

    /// Compile each `inherit (e)` source once.
    fn inherit_sources(&mut self, bindings: &mut ast::Bindings) -> EvalResult<Vec<Rc<Expr>>> {
        let mut out = Vec::with_capacity(bindings.inherit_from.len());
        for e in &mut bindings.inherit_from {
            out.push(self.rc(e, None)?);
        }
        Ok(out)
    }

    fn attrs(
        &mut self,
        bindings: &mut ast::Bindings,
        recursive: bool,
        span: kiln_lang::Span,
    ) -> EvalResult<Expr> {
        let names: Vec<Symbol> = bindings
            .attrs
            .iter()
            .map(|a| self.sym(a.name.name))
            .collect();
        if recursive {
            self.scopes.push(Scope::Lexical(names.clone()));
        }
        let result = self.attrs_inner(bindings, recursive, &names, span);
        if recursive {
            self.scopes.pop();
        }
        result
    }

    fn attrs_inner(
        &mut self,
        bindings: &mut ast::Bindings,
        recursive: bool,
        names: &[Symbol],
        span: kiln_lang::Span,
    ) -> EvalResult<Expr> {
        let from = self.inherit_sources(bindings)?;
        let mut statics = Vec::with_capacity(bindings.attrs.len());
        for (attr, name) in bindings.attrs.iter_mut().zip(names) {
            // An inherited attribute is where Nix 2.8 says it is.
            let inherited = matches!(
                attr.value,
                ast::AttrValue::Inherit | ast::AttrValue::InheritFrom(_)
            );
            let span = bindings
                .inherit_positions
                .iter()
                .find(|(n, _)| inherited && *n == attr.name.name)
                .map_or(attr.name.span, |(_, at)| *at);
            statics.push(StaticAttr {
                name: *name,
                value: self.binding_value(attr, &from, recursive)?,
                span,
            });
        }
        let mut dynamics = Vec::with_capacity(bindings.dynamic.len());
        for d in &mut bindings.dynamic {
            dynamics.push(DynamicAttr {
                name: self.expr(&mut d.key, None)?,
                value: self.rc(&mut d.value, None)?,
                span: d.span,
            });
        }
        let overrides = Symbol::intern("__overrides");
        let has_overrides = recursive && statics.iter().any(|a| a.name == overrides);
        Ok(Expr::Attrs(Rc::new(AttrsCode {
            recursive,
            has_overrides,
            statics,
            dynamics,
            layout: std::cell::OnceCell::new(),
            span,
        })))
    }

    fn let_in(&mut self, l: &mut ast::Let) -> EvalResult<Expr> {
        let names: Vec<Symbol> = l
            .bindings
            .attrs
            .iter()
            .map(|a| self.sym(a.name.name))
            .collect();
        self.scopes.push(Scope::Lexical(names));
        let result = (|| {
            let from = self.inherit_sources(&mut l.bindings)?;
            let mut values = Vec::with_capacity(l.bindings.attrs.len());
            for attr in &mut l.bindings.attrs {
                values.push(self.binding_value(attr, &from, true)?);
            }
            let body = self.expr(&mut l.body, None)?;
            Ok(Expr::Let(Rc::new(LetCode {
                bindings: values,
                body,
            })))
        })();
        self.scopes.pop();
        result
    }

    fn lambda(
        &mut self,
        l: &mut ast::Lambda,
        name: Option<Symbol>,
        span: kiln_lang::Span,
    ) -> EvalResult<Rc<LambdaCode>> {
        match &mut l.param {
            ast::Param::Ident(ident) => {
                let arg = self.sym(ident.name);
                self.scopes.push(Scope::Lexical(vec![arg]));
                let body = self.expr(&mut l.body, None);
                self.scopes.pop();
                Ok(Rc::new(LambdaCode {
                    param: Param::Ident(arg),
                    body: body?,
                    name,
                    span,
                }))
            }
            ast::Param::Formals(f) => {
                let mut names: Vec<Symbol> =
                    f.entries.iter().map(|e| self.sym(e.name.name)).collect();
                let at = f.at.map(|a| self.sym(a.name.name));
                if let Some(at) = at {
                    names.push(at);
                }
                self.scopes.push(Scope::Lexical(names.clone()));
                let result = (|| {
                    let mut formals = Vec::with_capacity(f.entries.len());
                    for (entry, name) in f.entries.iter_mut().zip(&names) {
                        formals.push(Formal {
                            name: *name,
                            default: match &mut entry.default {
                                Some(d) => Some(self.rc(d, None)?),
                                None => None,
                            },
                            span: entry.name.span,
                        });
                    }
                    let body = self.expr(&mut l.body, None)?;
                    Ok(Rc::new(LambdaCode {
                        param: Param::Formals {
                            formals,
                            ellipsis: f.ellipsis,
                            at,
                        },
                        body,
                        name,
                        span,
                    }))
                })();
                self.scopes.pop();
                result
            }
        }
    }
}
