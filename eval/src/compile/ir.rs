//! The compiled form of an expression that the machine evaluates.
//!
//! It is the AST with every name resolved: local variables are
//! `(depth, index)` addresses into the environment chain (see
//! [`crate::env`]), names bound only by an enclosing `with` become
//! [`Expr::Dynamic`] lookups listing those `with` scopes innermost first,
//! and names of the global scope (`builtins`, `map`, `true`, …) are
//! constants. Sub-expressions that may be suspended in a thunk (function
//! arguments, list elements, attribute values, bindings) are `Rc<Expr>` so a
//! thunk can point at them without copying.

use std::rc::Rc;

use crate::span::Span;
use crate::symbol::Symbol;
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    NotEq,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    Update,
    Concat,
}

#[derive(Debug)]
pub enum Expr {
    Const(Value),
    /// A variable bound by a lexical scope. The span costs no size (other
    /// variants are larger) and lets an infinite recursion through plain
    /// variables (`let x = y; y = x; in x`) say where it is.
    Local {
        depth: u32,
        index: u32,
        span: Span,
    },
    /// A variable only a `with` can provide; `withs` are the depths of the
    /// enclosing `with` frames, innermost first.
    Dynamic {
        name: Symbol,
        withs: Box<[u32]>,
        span: Span,
    },
    /// String interpolation (also `''…''` strings with `${}`).
    Interpolate {
        parts: Box<[StrPart]>,
        span: Span,
    },
    /// A path with interpolation: the parts are concatenated and the
    /// result made absolute against `base`.
    PathInterpolate {
        parts: Box<[StrPart]>,
        base: Rc<std::path::PathBuf>,
        span: Span,
    },
    List(Box<[Rc<Expr>]>),
    Attrs(Rc<AttrsCode>),
    Let(Rc<LetCode>),
    With {
        scope: Rc<Expr>,
        body: Box<Expr>,
    },
    Lambda(Rc<LambdaCode>),
    Call {
        func: Box<Expr>,
        args: Box<[Rc<Expr>]>,
        span: Span,
    },
    Select {
        target: Box<Expr>,
        path: Box<[AttrKey]>,
        default: Option<Box<Expr>>,
        span: Span,
    },
    HasAttr {
        target: Box<Expr>,
        path: Box<[AttrKey]>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
        span: Span,
    },
    Assert {
        cond: Box<Expr>,
        body: Box<Expr>,
        /// The source text of the condition, for the message.
        text: String,
        span: Span,
    },
    Not(Box<Expr>, Span),
    Negate(Box<Expr>, Span),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
    And(Box<Expr>, Box<Expr>, Span),
    Or(Box<Expr>, Box<Expr>, Span),
    Implies(Box<Expr>, Box<Expr>, Span),
    /// `__curPos`.
    CurPos(Span),
    /// An expression compiled once and used in several places (the source
    /// of `inherit (e) a b;`).
    Shared(Rc<Expr>),
}

#[derive(Debug)]
pub enum StrPart {
    Literal(Box<str>),
    Interp(Expr, Span),
}

#[derive(Debug)]
pub enum AttrKey {
    Static(Symbol),
    Dynamic(Expr, Span),
}

/// An attribute set literal.
#[derive(Debug)]
pub struct AttrsCode {
    /// `rec { … }`: the values are evaluated in a new scope whose slots are
    /// `statics` in order.
    pub recursive: bool,
    /// A `rec` set with a static `__overrides` attribute.
    pub has_overrides: bool,
    pub statics: Vec<StaticAttr>,
    /// `"${k}" = v;` entries, evaluated after the static ones (a `null`
    /// name drops the entry).
    pub dynamics: Vec<DynamicAttr>,
    /// How to build the set straight from `statics` when there are no
    /// dynamic attributes (the usual case); worked out when the literal is
    /// first evaluated, so literals never evaluated cost nothing.
    pub layout: std::cell::OnceCell<Option<StaticLayout>>,
    pub span: Span,
}

impl AttrsCode {
    /// The static layout, if the set can be built from it.
    pub fn layout(&self) -> Option<&StaticLayout> {
        self.layout
            .get_or_init(|| {
                if self.dynamics.is_empty() {
                    StaticLayout::new(&self.statics)
                } else {
                    None
                }
            })
            .as_ref()
    }
}

/// A literal's static attributes in symbol order, worked out once at
/// compile time: each evaluation then fills one vector in that order (no
/// sorting) and shares one positions table with every other set the
/// literal makes.
#[derive(Debug)]
pub struct StaticLayout {
    /// Indices into `statics`, in symbol order.
    pub order: Box<[u32]>,
    /// The positions of the attributes, in symbol order.
    pub positions: Rc<[Option<Span>]>,
}

impl StaticLayout {
    /// `None` when names repeat (the general path then reports or
    /// resolves that).
    pub fn new(statics: &[StaticAttr]) -> Option<StaticLayout> {
        let mut order: Vec<u32> = (0..statics.len()).map(|i| i as u32).collect();
        order.sort_by_key(|&i| statics[i as usize].name);
        let unique = order
            .windows(2)
            .all(|w| statics[w[0] as usize].name != statics[w[1] as usize].name);
        if !unique {
            return None;
        }
        let positions = order
            .iter()
            .map(|&i| Some(statics[i as usize].span))
            .collect();
        Some(StaticLayout {
            order: order.into_boxed_slice(),
            positions,
        })
    }
}

#[derive(Debug)]
pub struct StaticAttr {
    pub name: Symbol,
    pub value: Rc<Expr>,
    pub span: Span,
}

#[derive(Debug)]
pub struct DynamicAttr {
    pub name: Expr,
    pub value: Rc<Expr>,
    pub span: Span,
}

/// `let … in body`: one new scope whose slots are `bindings` in order.
#[derive(Debug)]
pub struct LetCode {
    pub bindings: Vec<Rc<Expr>>,
    pub body: Expr,
}

#[derive(Debug)]
pub struct LambdaCode {
    pub param: Param,
    pub body: Expr,
    /// The name the lambda was bound to, for traces.
    pub name: Option<Symbol>,
    pub span: Span,
}

#[derive(Debug)]
pub enum Param {
    /// `x: …`; slot 0.
    Ident(Symbol),
    /// `{ a, b ? 1, ... }@args: …`; slots are the formals in order, then
    /// the `@` name if any.
    Formals {
        formals: Vec<Formal>,
        ellipsis: bool,
        at: Option<Symbol>,
    },
}

#[derive(Debug)]
pub struct Formal {
    pub name: Symbol,
    pub default: Option<Rc<Expr>>,
    pub span: Span,
}

impl Expr {
    /// Where this expression is, when it records it.
    pub fn span(&self) -> Option<Span> {
        match self {
            Expr::Dynamic { span, .. }
            | Expr::Interpolate { span, .. }
            | Expr::PathInterpolate { span, .. }
            | Expr::Call { span, .. }
            | Expr::Select { span, .. }
            | Expr::If { span, .. }
            | Expr::Assert { span, .. }
            | Expr::Not(_, span)
            | Expr::Negate(_, span)
            | Expr::Binary { span, .. }
            | Expr::And(_, _, span)
            | Expr::Or(_, _, span)
            | Expr::Implies(_, _, span)
            | Expr::CurPos(span)
            | Expr::Local { span, .. } => Some(*span),
            Expr::Attrs(code) => Some(code.span),
            Expr::Lambda(code) => Some(code.span),
            Expr::Let(code) => code.body.span(),
            Expr::With { body, .. } => body.span(),
            Expr::HasAttr { target, .. } => target.span(),
            Expr::Shared(inner) => inner.span(),
            Expr::Const(_) | Expr::List(_) => None,
        }
    }
}
