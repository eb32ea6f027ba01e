//! The abstract syntax tree of the Nix language.
//!
//! # Shape
//!
//! Every node is an [`Expr`]: a [`Span`] plus an [`ExprKind`]. The tree is
//! plain data (`Box`/`Vec`, no `Rc`, no interior mutability) so the
//! evaluator can walk it once and compile it to its own representation.
//!
//! # Decisions an evaluator relies on
//!
//! - **Names are [`Symbol`]s** (`u32`), interned in the [`Interner`](crate::symbol::Interner) passed
//!   to the parser. Variables, formals, static attribute names and `inherit`
//!   names are all symbols.
//! - **Attribute sets arrive merged**, as Nix's parser does it: `a.b = 1;
//!   a.c = 2;` becomes one static attribute `a` whose value is a synthesized
//!   (non-`rec`) set `{ b = 1; c = 2; }`; `a = { x = 1; }; a.y = 2;` adds `y`
//!   to that set literal. So in [`Bindings`] every static name is unique, and
//!   duplicates were already reported as parse errors. Only dynamic names
//!   (`${e} = …;`, `"a${b}" = …;`) can't be merged; they are kept in
//!   [`Bindings::dynamic`], and a dynamic name in the middle of a path
//!   (`a.${x}.b = 1;`) gets a synthesized nested set as its value.
//! - **Strings are already cooked**: escapes decoded, `''` indentation
//!   stripped, adjacent literal pieces joined, empty literals dropped. A
//!   string without interpolation has zero or one [`StrPart::Literal`].
//! - **Variables are checked**: the parser rejects a variable that is bound
//!   by no enclosing `let`, `rec`, lambda or `with` and is not a global, like
//!   Nix does at parse time. `__curPos` is an ordinary [`ExprKind::Var`] the
//!   evaluator turns into the position of its span.
//! - **Operators are not desugared**: `-x` is [`UnOp::Neg`], `a > b` is
//!   [`BinOp::Gt`], `a -> b` is [`BinOp::Impl`]. Nix's semantics: `-x` is
//!   `0 - x`; `>`/`<=`/`>=` are built from `<` by swapping and negating;
//!   `->` is `!a || b`.
//! - **Deep trees are safe to drop**: [`Expr`] drops its children with an
//!   explicit stack, so a 100,000-long `a + b + …` chain can be freed on a
//!   small stack. The cost is that an `Expr` can't be destructured by value;
//!   walk it by reference (or `std::mem::take` the kind: `ExprKind`
//!   implements `Default`).

use crate::span::Span;
use crate::symbol::Symbol;

/// An expression and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub span: Span,
    pub kind: ExprKind,
}

/// What an expression is. Large variants are boxed to keep `Expr` small.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `123`. Nix integers are 64-bit; a literal too big is a parse error.
    Int(i64),
    /// `1.5`, `1.`, `.5`, `1.5e3`, `.5E-2` (Nix 2.8 has no `1e3` float:
    /// that is the integer `1` applied to the variable `e3`).
    Float(f64),
    /// `"…"` or `''…''`, already unescaped and indentation-stripped.
    /// With interpolations the value is the concatenation of the parts, each
    /// coerced to a string.
    Str(Vec<StrPart>),
    /// A path literal: `./a`, `a/b`, `/a`, `~/a`, `<name>`, possibly with
    /// interpolations (`./a/${b}`).
    Path(Box<PathLit>),
    /// An unquoted URI such as `https://example.org/x` (Nix lexes
    /// `scheme:rest`, so `x:x` is a URI, not a lambda). Evaluates to a string.
    Uri(Box<str>),
    /// A variable reference.
    Var(Symbol),
    /// `[ a b c ]`; elements are in order.
    List(Vec<Expr>),
    /// `{ … }` or `rec { … }`.
    Attrs(Box<AttrSet>),
    /// `let bindings in body`. Bindings are mutually recursive and never
    /// dynamic.
    Let(Box<Let>),
    /// Legacy `let { …; body = e; }`: means `(rec { … }).body`.
    LegacyLet(Box<Bindings>),
    /// `with env; body`.
    With(Box<With>),
    /// `if cond then then_branch else else_branch`.
    If(Box<If>),
    /// `assert cond; body`.
    Assert(Box<Assert>),
    /// A function: `x: body` or `{ a, b ? 1, ... }@args: body`.
    Lambda(Box<Lambda>),
    /// Function application `func arg` (left-associative: `f a b` is
    /// `Apply(Apply(f, a), b)`).
    Apply(Box<Apply>),
    /// `-e` or `!e`.
    Unary(Box<Unary>),
    /// `lhs op rhs`.
    Binary(Box<Binary>),
    /// `e.a.b` or `e.a.b or default`.
    Select(Box<Select>),
    /// `e ? a.b`.
    HasAttr(Box<HasAttr>),
}

impl Default for ExprKind {
    /// A leaf that owns nothing (used when taking a kind out of an `Expr`).
    fn default() -> ExprKind {
        ExprKind::Int(0)
    }
}

/// A piece of a string, path or interpolated attribute name.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Literal text, escapes already decoded. Never empty.
    Literal(Box<str>),
    /// `${expr}`.
    Interp(Expr),
}

/// How a path literal is anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// `./a`, `../a`, `a/b`: relative to the directory of the file the
    /// literal is in (see `SourceFile::path`; for `-E`/stdin, the current
    /// directory).
    Relative,
    /// `/a/b`.
    Absolute,
    /// `~/a`: relative to `$HOME`.
    Home,
    /// `<name/sub>`: looked up in the search path.
    Search,
}

/// A path literal.
///
/// `parts` is the text as written, so the first literal keeps its `./`,
/// `../`, `/` or `~/` prefix (`~/a` is `[Literal("~/a")]`). For
/// [`PathKind::Search`] it is the text between the angle brackets
/// (`<nixpkgs/lib>` is `[Literal("nixpkgs/lib")]`), never interpolated.
/// A path never ends in `/` (that is a parse error, as in Nix).
#[derive(Clone, Debug, PartialEq)]
pub struct PathLit {
    pub kind: PathKind,
    pub parts: Vec<StrPart>,
}

/// A name with the span where it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: Symbol,
    pub span: Span,
}

/// One element of an attribute path in `e.a.b`, `e ? a.b` (and in the
/// `inherit`-free parts of bindings before merging).
#[derive(Clone, Debug, PartialEq)]
pub struct AttrName {
    pub span: Span,
    pub kind: AttrNameKind,
}

/// A static or computed attribute name.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrNameKind {
    /// `a`, `or`, `"a"`, `${"a"}`: a name known at parse time (a string
    /// literal without interpolation counts as static, as in Nix).
    Static(Symbol),
    /// `${e}` or `"a${b}"` (then the expression is an [`ExprKind::Str`]):
    /// computed at run time; it must evaluate to a string. In a binding,
    /// `null` means "no attribute".
    Dynamic(Box<Expr>),
}

/// An attribute path: `a.b.${c}`. Never empty.
pub type AttrPath = Vec<AttrName>;

/// The bindings of a set literal, a `let`, or a legacy `let { }`, after
/// merging nested paths (see the module docs).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Bindings {
    /// Static attributes with unique names, in order of first definition.
    pub attrs: Vec<Attr>,
    /// Attributes with computed names, in source order. Always empty in
    /// `let`. Their keys are evaluated outside a `rec` set's own scope in
    /// Nix, but their values inside it.
    pub dynamic: Vec<DynamicAttr>,
    /// The `e` of each `inherit (e) …;`, once per clause; referenced by
    /// [`AttrValue::InheritFrom`] so the evaluator can evaluate `e` once.
    pub inherit_from: Vec<Expr>,
    /// The position Nix 2.8 gives each inherited attribute
    /// (`unsafeGetAttrPos`): where the `inherit` keyword, or its `(e)`,
    /// ends, not where the name is written.
    pub inherit_positions: Vec<(Symbol, Span)>,
}

/// One static attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attr {
    /// The name and where it is (first) written.
    pub name: Ident,
    pub value: AttrValue,
}

/// Where a static attribute's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `name = expr;` (or the merged set of nested definitions). In `rec`
    /// sets and `let`, evaluated in the scope of the bindings themselves.
    Expr(Expr),
    /// `inherit name;`: the variable `name` looked up in the scope
    /// *enclosing* the set or `let`, even when it is `rec`.
    Inherit,
    /// `inherit (from) name;`: `from.name`, where `from` is
    /// `inherit_from[index]`, evaluated in the bindings' own scope for `rec`
    /// and `let` (as in Nix). The span of the select is the attribute's name.
    InheritFrom(u32),
}

/// `${key} = value;` or `"a${b}" = value;`.
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicAttr {
    /// The name expression (the inside of `${ }`, or an [`ExprKind::Str`]).
    pub key: Expr,
    pub value: Expr,
    /// The key as written (where Nix reports errors about the binding).
    pub span: Span,
}

/// `{ … }` / `rec { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrSet {
    /// `rec { }`: attribute values see the set's own attributes.
    pub rec: bool,
    pub bindings: Bindings,
}

/// `let … in body`.
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    /// Never has dynamic attributes (a parse error, as in Nix).
    pub bindings: Bindings,
    pub body: Expr,
}

/// `with env; body`: `body` sees the attributes of `env` as variables,
/// below every lexical binding.
#[derive(Clone, Debug, PartialEq)]
pub struct With {
    pub env: Expr,
    pub body: Expr,
}

/// `if cond then then_branch else else_branch`.
#[derive(Clone, Debug, PartialEq)]
pub struct If {
    pub cond: Expr,
    pub then_branch: Expr,
    pub else_branch: Expr,
}

/// `assert cond; body`.
#[derive(Clone, Debug, PartialEq)]
pub struct Assert {
    pub cond: Expr,
    pub body: Expr,
}

/// A function.
#[derive(Clone, Debug, PartialEq)]
pub struct Lambda {
    pub param: Param,
    pub body: Expr,
}

/// A function's parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// `x: body`.
    Ident(Ident),
    /// `{ a, b ? 1, ... }: body`, optionally with `@name`.
    Formals(Formals),
}

/// A set pattern: `{ a, b ? default, ... }` with an optional `@` binding.
/// Formal names are unique and differ from the `@` name (else a parse
/// error, as in Nix).
#[derive(Clone, Debug, PartialEq)]
pub struct Formals {
    /// In source order.
    pub entries: Vec<Formal>,
    /// `...`: extra attributes are allowed.
    pub ellipsis: bool,
    /// `args@{ … }` or `{ … }@args`: the whole argument.
    pub at: Option<AtBinding>,
}

/// One formal: `name` or `name ? default`. Defaults see all formals and the
/// `@` name (they are evaluated in the function's scope).
#[derive(Clone, Debug, PartialEq)]
pub struct Formal {
    pub name: Ident,
    pub default: Option<Expr>,
}

/// The `@` name of a set pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtBinding {
    pub name: Ident,
    pub position: AtPosition,
}

/// Which side of the pattern the `@` name is on (no semantic difference).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtPosition {
    /// `args@{ … }`.
    Before,
    /// `{ … }@args`.
    After,
}

/// `func arg`.
#[derive(Clone, Debug, PartialEq)]
pub struct Apply {
    pub func: Expr,
    pub arg: Expr,
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-e`: `0 - e` (int or float).
    Neg,
    /// `!e`: boolean not.
    Not,
}

/// `op operand`.
#[derive(Clone, Debug, PartialEq)]
pub struct Unary {
    pub op: UnOp,
    pub operand: Expr,
}

/// Infix operators, from tightest to loosest binding:
/// `++` (right); `*` `/` (left); `+` `-` (left); `//` (right);
/// `<` `<=` `>` `>=` (non-assoc); `==` `!=` (non-assoc); `&&` (left);
/// `||` (left); `->` (right). (`?` is [`ExprKind::HasAttr`]; prefix `!`
/// binds looser than `+`, so `!a + b` is `!(a + b)`; prefix `-` binds
/// tighter than every infix operator.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `++` list concatenation.
    Concat,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `+`: numbers, strings, paths.
    Add,
    /// `-`.
    Sub,
    /// `//` attribute set update.
    Update,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `&&`.
    And,
    /// `||`.
    Or,
    /// `->` logical implication.
    Impl,
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Concat => "++",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Update => "//",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Impl => "->",
        }
    }
}

/// `lhs op rhs`. The node's span covers both operands; `op_span` is the
/// operator itself (where Nix reports operator errors).
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub op: BinOp,
    pub op_span: Span,
    pub lhs: Expr,
    pub rhs: Expr,
}

/// `expr.path` or `expr.path or default`.
#[derive(Clone, Debug, PartialEq)]
pub struct Select {
    pub expr: Expr,
    pub path: AttrPath,
    /// `or default`: used when any step of the path is missing.
    pub default: Option<Expr>,
}

/// `expr ? path`: true when every step of the path exists (false, not an
/// error, when an intermediate value is not a set).
#[derive(Clone, Debug, PartialEq)]
pub struct HasAttr {
    pub expr: Expr,
    pub path: AttrPath,
}

impl Expr {
    pub fn new(span: Span, kind: ExprKind) -> Expr {
        Expr { span, kind }
    }

    /// True for nodes that own no child expressions (no work for `Drop`).
    fn is_leaf(&self) -> bool {
        match &self.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Uri(_) | ExprKind::Var(_) => true,
            ExprKind::Str(parts) => parts.iter().all(|p| matches!(p, StrPart::Literal(_))),
            ExprKind::List(items) => items.is_empty(),
            _ => false,
        }
    }

    /// Moves every direct child expression of `self` onto `out`, leaving
    /// leaves in their place.
    fn take_children(&mut self, out: &mut Vec<Expr>) {
        fn take(e: &mut Expr, out: &mut Vec<Expr>) {
            if !e.is_leaf() {
                out.push(std::mem::replace(
                    e,
                    Expr {
                        span: e.span,
                        kind: ExprKind::default(),
                    },
                ));
            }
        }
        fn take_parts(parts: &mut [StrPart], out: &mut Vec<Expr>) {
            for p in parts {
                if let StrPart::Interp(e) = p {
                    take(e, out);
                }
            }
        }
        fn take_bindings(b: &mut Bindings, out: &mut Vec<Expr>) {
            for a in &mut b.attrs {
                if let AttrValue::Expr(e) = &mut a.value {
                    take(e, out);
                }
            }
            for d in &mut b.dynamic {
                take(&mut d.key, out);
                take(&mut d.value, out);
            }
            out.append(&mut b.inherit_from);
        }
        fn take_path(path: &mut AttrPath, out: &mut Vec<Expr>) {
            for n in path {
                if let AttrNameKind::Dynamic(e) = &mut n.kind {
                    take(e, out);
                }
            }
        }
        match &mut self.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Uri(_) | ExprKind::Var(_) => {}
            ExprKind::Str(parts) => take_parts(parts, out),
            ExprKind::Path(p) => take_parts(&mut p.parts, out),
            ExprKind::List(items) => out.append(items),
            ExprKind::Attrs(a) => take_bindings(&mut a.bindings, out),
            ExprKind::Let(l) => {
                take_bindings(&mut l.bindings, out);
                take(&mut l.body, out);
            }
            ExprKind::LegacyLet(b) => take_bindings(b, out),
            ExprKind::With(w) => {
                take(&mut w.env, out);
                take(&mut w.body, out);
            }
            ExprKind::If(i) => {
                take(&mut i.cond, out);
                take(&mut i.then_branch, out);
                take(&mut i.else_branch, out);
            }
            ExprKind::Assert(a) => {
                take(&mut a.cond, out);
                take(&mut a.body, out);
            }
            ExprKind::Lambda(l) => {
                if let Param::Formals(f) = &mut l.param {
                    for formal in &mut f.entries {
                        if let Some(d) = &mut formal.default {
                            take(d, out);
                        }
                    }
                }
                take(&mut l.body, out);
            }
            ExprKind::Apply(a) => {
                take(&mut a.func, out);
                take(&mut a.arg, out);
            }
            ExprKind::Unary(u) => take(&mut u.operand, out),
            ExprKind::Binary(b) => {
                take(&mut b.lhs, out);
                take(&mut b.rhs, out);
            }
            ExprKind::Select(s) => {
                take(&mut s.expr, out);
                take_path(&mut s.path, out);
                if let Some(d) = &mut s.default {
                    take(d, out);
                }
            }
            ExprKind::HasAttr(h) => {
                take(&mut h.expr, out);
                take_path(&mut h.path, out);
            }
        }
    }
}

impl Drop for Expr {
    /// Frees the tree with an explicit stack instead of recursion, so that
    /// very deep trees (long operator chains) never overflow the stack.
    fn drop(&mut self) {
        if self.is_leaf() {
            return;
        }
        let mut stack = Vec::new();
        self.take_children(&mut stack);
        while let Some(mut e) = stack.pop() {
            e.take_children(&mut stack);
            // `e` now owns no children; dropping it recurses no further.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::FileId;

    fn sp() -> Span {
        Span::new(FileId(0), 0, 0)
    }

    #[test]
    fn expr_stays_small() {
        // Spans plus one boxed or vector payload; keep the tree compact.
        assert!(std::mem::size_of::<Expr>() <= 48);
    }

    #[test]
    fn dropping_a_very_deep_chain_does_not_overflow() {
        let mut e = Expr::new(sp(), ExprKind::Int(1));
        for _ in 0..1_000_000 {
            e = Expr::new(
                sp(),
                ExprKind::Binary(Box::new(Binary {
                    op: BinOp::Add,
                    op_span: sp(),
                    lhs: e,
                    rhs: Expr::new(sp(), ExprKind::Int(1)),
                })),
            );
        }
        drop(e);
    }
}
