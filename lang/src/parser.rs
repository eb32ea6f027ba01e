//! The parser: recursive descent over the tokens of [`crate::lexer`], with
//! an explicit operator stack for infix expressions.
//!
//! # Grammar (Nix 2.8, loosest first)
//!
//! ```text
//! expr      = ID ':' expr | '{' formals '}' ('@' ID)? ':' expr
//!           | ID '@' '{' formals '}' ':' expr
//!           | 'assert' expr ';' expr | 'with' expr ';' expr
//!           | 'let' binds 'in' expr | 'if' expr 'then' expr 'else' expr | op
//! op        = infix/prefix operators over app (see `ast::BinOp`), '?' attrpath
//! app       = select select*
//! select    = simple ('.' attrpath ('or' select)?)? | simple 'or'
//! simple    = ID | INT | FLOAT | string | indstring | path | SPATH | URI
//!           | '(' expr ')' | 'let' '{' binds '}' | 'rec'? '{' binds '}'
//!           | '[' select* ']'
//! binds     = (attrpath '=' expr ';' | 'inherit' ('(' expr ')')? attr* ';')*
//! attrpath  = attr ('.' attr)*      attr = ID | 'or' | string | '${' expr '}'
//! formals   = (formal ',')* (formal | '...')?     formal = ID ('?' expr)?
//! ```
//!
//! `simple 'or'` is Nix's backwards-compatibility rule: `f or` applies `f`
//! to the variable `or`.
//!
//! # Robustness
//!
//! Nesting (parentheses, lists, sets, lambda bodies, `let`, …) is limited to
//! [`MAX_DEPTH`] levels and reported as an error beyond that, so no input
//! can overflow the stack. Chains of operators and applications are built
//! with loops and an explicit stack, so `1 + 1 + …` 100,000 times is fine.

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{self, LexError, Tok, Token};
use crate::span::{FileId, Span};
use crate::symbol::{Interner, Symbol};

/// How deeply expressions may nest (parentheses, lists, sets, lambda
/// bodies, `let`, `with`, interpolations, `or` defaults: one level each).
/// Nix 2.8's own parser gives up a little under 5,000 parentheses.
pub const MAX_DEPTH: u32 = 2000;

/// Nesting handled on the caller's stack. Deeper input is parsed again on
/// a helper thread with [`DEEP_STACK`] bytes of stack, so the common case
/// costs no thread and the deep case cannot overflow whatever stack the
/// caller has (2 MiB for test threads; frames are large in debug builds).
const SHALLOW_DEPTH: u32 = 40;

/// Stack for deep parses: about 10 KiB per level in debug builds, 1 KiB in
/// release builds, with room to spare. Only touched pages are committed.
const DEEP_STACK: usize = 64 * 1024 * 1024;

/// The least stack a deep parse takes when the address space is short; the
/// nesting limit then shrinks in proportion (to 125 levels here).
const LEAST_DEEP_STACK: usize = 4 * 1024 * 1024;

/// The nesting limit on a stack of `size` bytes: [`MAX_DEPTH`] on
/// [`DEEP_STACK`], proportionally less on a smaller one.
fn depth_for_stack(size: usize) -> u32 {
    let per_level = DEEP_STACK / MAX_DEPTH as usize;
    (size / per_level).min(MAX_DEPTH as usize) as u32
}

/// Parses one file's text into an expression (no scope check).
pub(crate) fn parse_expr_text(
    file: FileId,
    src: &str,
    interner: &mut Interner,
) -> Result<Expr, ParseError> {
    if src.len() > u32::MAX as usize - 1 {
        return Err(ParseError::new(
            Span::new(file, 0, 0),
            "file too large (over 4 GiB)",
        ));
    }
    match parse_with_limit(file, src, interner, SHALLOW_DEPTH) {
        Err(Failure::TooDeep(_)) => {}
        Err(Failure::Error(e)) => return Err(e),
        Ok(e) => return Ok(e),
    }
    let deep =
        crate::stack::run_on_big_stack("kiln-parse-deep", DEEP_STACK, LEAST_DEEP_STACK, |size| {
            // A panic in the parser is a bug; report it rather than crash.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parse_with_limit(file, src, interner, depth_for_stack(size))
            }))
        });
    match deep {
        Ok(Ok(Ok(e))) => Ok(e),
        Ok(Ok(Err(Failure::Error(e) | Failure::TooDeep(e)))) => Err(e),
        Ok(Err(_)) => Err(ParseError::new(
            Span::new(file, 0, 0),
            "internal error: the parser panicked",
        )),
        Err(_) => Err(ParseError::new(
            Span::new(file, 0, 0),
            "not enough address space for a thread to parse deeply nested input",
        )),
    }
}

/// Why a parse stopped.
enum Failure {
    Error(ParseError),
    /// The nesting limit was reached (the error says so).
    TooDeep(ParseError),
}

fn parse_with_limit(
    file: FileId,
    src: &str,
    interner: &mut Interner,
    max_depth: u32,
) -> Result<Expr, Failure> {
    let mut p = Parser {
        src,
        bytes: src.as_bytes(),
        file,
        interner,
        pos: 0,
        peeked: None,
        depth: 0,
        max_depth,
        hit_depth_limit: false,
        runs: lexer::RunCache::default(),
    };
    let result = p.parse_expr().and_then(|e| {
        let t = p.peek()?;
        if t.kind != Tok::Eof {
            return Err(p.unexpected(t, "end of file or an operator"));
        }
        Ok(e)
    });
    match result {
        Ok(e) => Ok(e),
        Err(e) if p.hit_depth_limit => Err(Failure::TooDeep(e)),
        Err(e) => Err(Failure::Error(e)),
    }
}

struct Parser<'s, 'i> {
    src: &'s str,
    bytes: &'s [u8],
    file: FileId,
    interner: &'i mut Interner,
    /// Where lexing continues: after the peeked token if there is one.
    pos: usize,
    peeked: Option<Token>,
    depth: u32,
    max_depth: u32,
    /// Set when `max_depth` was exceeded (the error is then about that).
    hit_depth_limit: bool,
    runs: lexer::RunCache,
}

type PResult<T> = Result<T, ParseError>;

/// Binding strength of infix operators (higher binds tighter). Prefix `!`
/// sits at 7 and prefix `-` at 12; `?` at 11.
const PREC_NOT: u8 = 7;
const PREC_HAS_ATTR: u8 = 11;
const PREC_NEG: u8 = 12;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Assoc {
    Left,
    Right,
    None,
}

fn infix(kind: Tok) -> Option<(BinOp, u8, Assoc)> {
    Some(match kind {
        Tok::Impl => (BinOp::Impl, 1, Assoc::Right),
        Tok::Or => (BinOp::Or, 2, Assoc::Left),
        Tok::And => (BinOp::And, 3, Assoc::Left),
        Tok::Eq => (BinOp::Eq, 4, Assoc::None),
        Tok::Ne => (BinOp::Ne, 4, Assoc::None),
        Tok::Lt => (BinOp::Lt, 5, Assoc::None),
        Tok::Le => (BinOp::Le, 5, Assoc::None),
        Tok::Gt => (BinOp::Gt, 5, Assoc::None),
        Tok::Ge => (BinOp::Ge, 5, Assoc::None),
        Tok::Update => (BinOp::Update, 6, Assoc::Right),
        Tok::Plus => (BinOp::Add, 8, Assoc::Left),
        Tok::Minus => (BinOp::Sub, 8, Assoc::Left),
        Tok::Star => (BinOp::Mul, 9, Assoc::Left),
        Tok::Slash => (BinOp::Div, 9, Assoc::Left),
        Tok::Concat => (BinOp::Concat, 10, Assoc::Right),
        _ => return None,
    })
}

/// An operator waiting on the operator stack.
enum PendingOp {
    Prefix { op: UnOp, start: u32 },
    Infix { op: BinOp, span: Span, prec: u8 },
}

impl PendingOp {
    fn prec(&self) -> u8 {
        match self {
            PendingOp::Prefix { op: UnOp::Not, .. } => PREC_NOT,
            PendingOp::Prefix { op: UnOp::Neg, .. } => PREC_NEG,
            PendingOp::Infix { prec, .. } => *prec,
        }
    }
}

/// Can this token start a `select` (an argument in an application)?
fn starts_select(kind: Tok) -> bool {
    matches!(
        kind,
        Tok::Id
            | Tok::Int
            | Tok::Float
            | Tok::Path
            | Tok::HomePath
            | Tok::SearchPath
            | Tok::Uri
            | Tok::Quote
            | Tok::IndOpen
            | Tok::LParen
            | Tok::Let
            | Tok::Rec
            | Tok::LBrace
            | Tok::LBracket
    )
}

/// A piece of an indented string before indentation stripping.
enum IndPiece<'s> {
    /// Source text; `indent` is false for escapes (`''$`, `'''`, `''\x`),
    /// which count as content, never as indentation.
    Text {
        text: Cow<'s, str>,
        indent: bool,
    },
    Interp(Expr),
}

/// Accumulates string parts, joining adjacent literals.
#[derive(Default)]
struct PartsBuilder {
    parts: Vec<StrPart>,
    lit: String,
}

impl PartsBuilder {
    fn push_str(&mut self, s: &str) {
        self.lit.push_str(s);
    }

    fn push_char(&mut self, c: char) {
        self.lit.push(c);
    }

    fn flush(&mut self) {
        if !self.lit.is_empty() {
            let lit = std::mem::take(&mut self.lit);
            self.parts.push(StrPart::Literal(lit.into_boxed_str()));
        }
    }

    fn push_expr(&mut self, e: Expr) {
        self.flush();
        self.parts.push(StrPart::Interp(e));
    }

    fn finish(mut self) -> Vec<StrPart> {
        self.flush();
        self.parts
    }
}

impl<'s> Parser<'s, '_> {
    // ----- tokens -------------------------------------------------------

    fn span(&self, start: u32, end: u32) -> Span {
        Span::new(self.file, start, end)
    }

    fn lex_error(&self, e: LexError) -> ParseError {
        ParseError::new(self.span(e.start, e.end), e.message)
    }

    fn peek(&mut self) -> PResult<Token> {
        if let Some(t) = self.peeked {
            return Ok(t);
        }
        let start = lexer::skip_trivia(self.bytes, self.pos).map_err(|e| self.lex_error(e))?;
        let t =
            lexer::token_at(self.bytes, start, &mut self.runs).map_err(|e| self.lex_error(e))?;
        self.peeked = Some(t);
        Ok(t)
    }

    /// The kind of the `n`th token after the peeked one (n = 1 is the
    /// token after next), without consuming anything. Stops at strings.
    fn peek_kind_ahead(&mut self, n: usize) -> PResult<Tok> {
        let mut t = self.peek()?;
        for _ in 0..n {
            if t.kind == Tok::Eof || t.kind == Tok::Quote || t.kind == Tok::IndOpen {
                return Ok(Tok::Eof);
            }
            let start =
                lexer::skip_trivia(self.bytes, t.end as usize).map_err(|e| self.lex_error(e))?;
            t = lexer::token_at(self.bytes, start, &mut self.runs)
                .map_err(|e| self.lex_error(e))?;
        }
        Ok(t.kind)
    }

    fn bump(&mut self) -> PResult<Token> {
        let t = self.peek()?;
        self.peeked = None;
        self.pos = t.end as usize;
        Ok(t)
    }

    fn expect(&mut self, kind: Tok, expected: &str) -> PResult<Token> {
        let t = self.peek()?;
        if t.kind == kind {
            self.bump()
        } else {
            Err(self.unexpected(t, expected))
        }
    }

    fn text(&self, t: Token) -> &'s str {
        &self.src[t.start as usize..t.end as usize]
    }

    fn unexpected(&self, t: Token, expected: &str) -> ParseError {
        let found = match t.kind {
            Tok::Eof => "end of file".to_string(),
            Tok::Id | Tok::Int | Tok::Float | Tok::Uri | Tok::Path | Tok::SearchPath => {
                format!("{} '{}'", t.kind.describe(), self.text(t))
            }
            k => k.describe().to_string(),
        };
        ParseError::new(
            self.span(t.start, t.end),
            format!("syntax error: unexpected {found}, expected {expected}"),
        )
    }

    fn intern(&mut self, name: &str) -> Symbol {
        self.interner.intern(name)
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= self.max_depth {
            self.hit_depth_limit = true;
            let at = self.peek().map(|t| t.start).unwrap_or(self.pos as u32);
            return Err(ParseError::new(
                self.span(at, at),
                format!(
                    "expression nested too deeply (more than {} levels)",
                    self.max_depth
                ),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    // ----- expressions --------------------------------------------------

    fn parse_expr(&mut self) -> PResult<Expr> {
        self.nested(|p| p.parse_expr_function())
    }

    fn parse_expr_function(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        match t.kind {
            Tok::Id => match self.peek_kind_ahead(1)? {
                Tok::Colon => {
                    self.bump()?;
                    self.bump()?;
                    let name = Ident {
                        name: self.intern(self.text(t)),
                        span: self.span(t.start, t.end),
                    };
                    let body = self.parse_expr()?;
                    let span = self.span(t.start, body.span.end);
                    Ok(Expr::new(
                        span,
                        ExprKind::Lambda(Box::new(Lambda {
                            param: Param::Ident(name),
                            body,
                        })),
                    ))
                }
                Tok::At => {
                    self.bump()?;
                    self.bump()?;
                    let at = Ident {
                        name: self.intern(self.text(t)),
                        span: self.span(t.start, t.end),
                    };
                    self.expect(Tok::LBrace, "'{' (a set pattern after '@')")?;
                    self.parse_formals_lambda(t.start, Some((at, AtPosition::Before)))
                }
                _ => self.parse_if(),
            },
            Tok::LBrace if self.is_formals_start()? => {
                self.bump()?;
                self.parse_formals_lambda(t.start, None)
            }
            Tok::Assert | Tok::With => {
                self.bump()?;
                let first = self.parse_expr()?;
                self.expect(Tok::Semi, "';'")?;
                let body = self.parse_expr()?;
                let span = self.span(t.start, body.span.end);
                let kind = if t.kind == Tok::Assert {
                    ExprKind::Assert(Box::new(Assert { cond: first, body }))
                } else {
                    ExprKind::With(Box::new(With { env: first, body }))
                };
                Ok(Expr::new(span, kind))
            }
            Tok::Let if self.peek_kind_ahead(1)? != Tok::LBrace => {
                self.bump()?;
                let bindings = self.parse_binds(Tok::In)?;
                self.bump()?; // `in`
                if let Some(d) = bindings.dynamic.first() {
                    return Err(ParseError::new(
                        d.key.span,
                        "dynamic attributes not allowed in let",
                    ));
                }
                let body = self.parse_expr()?;
                let span = self.span(t.start, body.span.end);
                Ok(Expr::new(
                    span,
                    ExprKind::Let(Box::new(Let { bindings, body })),
                ))
            }
            _ => self.parse_if(),
        }
    }

    /// After `{`: is this a set pattern (`{ a, b ? 1, ... }:`) rather than a
    /// set? Decided by the next one or two tokens, as Nix's grammar does.
    fn is_formals_start(&mut self) -> PResult<bool> {
        Ok(match self.peek_kind_ahead(1)? {
            Tok::Ellipsis => true,
            Tok::RBrace => matches!(self.peek_kind_ahead(2)?, Tok::Colon | Tok::At),
            Tok::Id => matches!(
                self.peek_kind_ahead(2)?,
                Tok::Comma | Tok::Question | Tok::RBrace
            ),
            _ => false,
        })
    }

    /// Parses `formals '}' ('@' ID)? ':' body` (the `{` is consumed).
    fn parse_formals_lambda(
        &mut self,
        start: u32,
        mut at: Option<(Ident, AtPosition)>,
    ) -> PResult<Expr> {
        let mut entries: Vec<Formal> = Vec::new();
        let mut ellipsis = false;
        loop {
            let t = self.peek()?;
            match t.kind {
                Tok::RBrace => break,
                Tok::Ellipsis => {
                    self.bump()?;
                    ellipsis = true;
                    let t = self.peek()?;
                    if t.kind != Tok::RBrace {
                        return Err(self.unexpected(t, "'}' ('...' must come last)"));
                    }
                    break;
                }
                Tok::Id => {
                    self.bump()?;
                    let name = Ident {
                        name: self.intern(self.text(t)),
                        span: self.span(t.start, t.end),
                    };
                    let default = if self.peek()?.kind == Tok::Question {
                        self.bump()?;
                        Some(self.parse_expr()?)
                    } else {
                        None
                    };
                    entries.push(Formal { name, default });
                    let t = self.peek()?;
                    match t.kind {
                        Tok::Comma => {
                            self.bump()?;
                        }
                        Tok::RBrace => break,
                        _ => return Err(self.unexpected(t, "',' or '}'")),
                    }
                }
                _ => return Err(self.unexpected(t, "a formal argument, '...' or '}'")),
            }
        }
        self.bump()?; // `}`
        if at.is_none() && self.peek()?.kind == Tok::At {
            self.bump()?;
            let t = self.expect(Tok::Id, "an identifier after '@'")?;
            at = Some((
                Ident {
                    name: self.intern(self.text(t)),
                    span: self.span(t.start, t.end),
                },
                AtPosition::After,
            ));
        }
        self.expect(Tok::Colon, "':' after a set pattern")?;
        self.check_formals(&entries, at.as_ref().map(|a| a.0))?;
        let body = self.parse_expr()?;
        let span = self.span(start, body.span.end);
        Ok(Expr::new(
            span,
            ExprKind::Lambda(Box::new(Lambda {
                param: Param::Formals(Formals {
                    entries,
                    ellipsis,
                    at: at.map(|(name, position)| AtBinding { name, position }),
                }),
                body,
            })),
        ))
    }

    fn check_formals(&self, entries: &[Formal], at: Option<Ident>) -> PResult<()> {
        let mut seen: FxHashMap<Symbol, Span> = FxHashMap::default();
        for f in entries {
            if let Some(&first) = seen.get(&f.name.name) {
                return Err(ParseError::new(
                    f.name.span,
                    format!(
                        "duplicate formal function argument '{}'",
                        self.interner.resolve(f.name.name)
                    ),
                )
                .with_label(first, "first declared here"));
            }
            seen.insert(f.name.name, f.name.span);
        }
        if let Some(at) = at
            && let Some(&formal) = seen.get(&at.name)
        {
            return Err(ParseError::new(
                formal,
                format!(
                    "duplicate formal function argument '{}'",
                    self.interner.resolve(at.name)
                ),
            )
            .with_label(at.span, "also bound by '@' here"));
        }
        Ok(())
    }

    fn parse_if(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        if t.kind != Tok::If {
            return self.parse_op();
        }
        self.bump()?;
        let cond = self.parse_expr()?;
        self.expect(Tok::Then, "'then'")?;
        let then_branch = self.parse_expr()?;
        self.expect(Tok::Else, "'else'")?;
        let else_branch = self.parse_expr()?;
        let span = self.span(t.start, else_branch.span.end);
        Ok(Expr::new(
            span,
            ExprKind::If(Box::new(If {
                cond,
                then_branch,
                else_branch,
            })),
        ))
    }

    /// Infix and prefix operators, by operator-precedence parsing with
    /// explicit stacks (no recursion per operator).
    fn parse_op(&mut self) -> PResult<Expr> {
        let mut operands: Vec<Expr> = Vec::new();
        let mut ops: Vec<PendingOp> = Vec::new();
        loop {
            loop {
                let t = self.peek()?;
                let op = match t.kind {
                    Tok::Not => UnOp::Not,
                    Tok::Minus => UnOp::Neg,
                    _ => break,
                };
                self.bump()?;
                ops.push(PendingOp::Prefix { op, start: t.start });
            }
            operands.push(self.parse_app()?);
            loop {
                let t = self.peek()?;
                if t.kind == Tok::Question {
                    reduce_while(&mut operands, &mut ops, |p| p > PREC_HAS_ATTR);
                    self.bump()?;
                    let path = self.parse_attrpath()?;
                    let expr = operands.pop().expect("operand before '?'");
                    let end = path.last().map(|a| a.span.end).unwrap_or(t.end);
                    let span = self.span(expr.span.start, end);
                    operands.push(Expr::new(
                        span,
                        ExprKind::HasAttr(Box::new(HasAttr { expr, path })),
                    ));
                    continue;
                }
                if let Some((op, prec, assoc)) = infix(t.kind) {
                    while let Some(top) = ops.last() {
                        let top_prec = top.prec();
                        if top_prec > prec || (top_prec == prec && assoc == Assoc::Left) {
                            reduce_one(&mut operands, &mut ops);
                        } else if top_prec == prec && assoc == Assoc::None {
                            return Err(self.unexpected(
                                t,
                                "no second comparison (these operators do not chain; add parentheses)",
                            ));
                        } else {
                            break;
                        }
                    }
                    self.bump()?;
                    ops.push(PendingOp::Infix {
                        op,
                        span: self.span(t.start, t.end),
                        prec,
                    });
                    break;
                }
                reduce_while(&mut operands, &mut ops, |_| true);
                return Ok(operands.pop().expect("one operand left"));
            }
        }
    }

    fn parse_app(&mut self) -> PResult<Expr> {
        let mut func = self.parse_select()?;
        while starts_select(self.peek()?.kind) {
            let arg = self.parse_select()?;
            let span = func.span.to(arg.span);
            func = Expr::new(span, ExprKind::Apply(Box::new(Apply { func, arg })));
        }
        Ok(func)
    }

    fn parse_select(&mut self) -> PResult<Expr> {
        let expr = self.parse_simple()?;
        let t = self.peek()?;
        match t.kind {
            Tok::Dot => {
                self.bump()?;
                let path = self.parse_attrpath()?;
                let default = if self.peek()?.kind == Tok::OrKw {
                    self.bump()?;
                    Some(self.nested(|p| p.parse_select())?)
                } else {
                    None
                };
                let end = match &default {
                    Some(d) => d.span.end,
                    None => path.last().map(|a| a.span.end).unwrap_or(t.end),
                };
                let span = self.span(expr.span.start, end);
                Ok(Expr::new(
                    span,
                    ExprKind::Select(Box::new(Select {
                        expr,
                        path,
                        default,
                    })),
                ))
            }
            Tok::OrKw => {
                // `f or`: Nix applies `f` to the variable `or`.
                self.bump()?;
                let var = Expr::new(self.span(t.start, t.end), ExprKind::Var(self.intern("or")));
                let span = expr.span.to(var.span);
                Ok(Expr::new(
                    span,
                    ExprKind::Apply(Box::new(Apply {
                        func: expr,
                        arg: var,
                    })),
                ))
            }
            _ => Ok(expr),
        }
    }

    fn parse_attrpath(&mut self) -> PResult<AttrPath> {
        let mut path = vec![self.parse_attr_name()?];
        while self.peek()?.kind == Tok::Dot {
            self.bump()?;
            path.push(self.parse_attr_name()?);
        }
        Ok(path)
    }

    /// `ID`, `or`, `"string"` or `${expr}`; a string without interpolation
    /// (directly or inside `${}`) is a static name, as in Nix.
    fn parse_attr_name(&mut self) -> PResult<AttrName> {
        let t = self.peek()?;
        let expr = match t.kind {
            Tok::Id | Tok::OrKw => {
                self.bump()?;
                return Ok(AttrName {
                    span: self.span(t.start, t.end),
                    kind: AttrNameKind::Static(self.intern(self.text(t))),
                });
            }
            Tok::Quote => {
                self.bump()?;
                self.parse_string(t.start)?
            }
            Tok::DollarCurly => {
                self.bump()?;
                let e = self.parse_expr()?;
                self.expect(Tok::RBrace, "'}' to close '${'")?;
                e
            }
            _ => return Err(self.unexpected(t, "an attribute name")),
        };
        let span = self.span(t.start, self.pos as u32);
        if let ExprKind::Str(parts) = &expr.kind
            && parts.iter().all(|p| matches!(p, StrPart::Literal(_)))
        {
            let name = match parts.first() {
                Some(StrPart::Literal(s)) => self.intern(s),
                _ => self.intern(""),
            };
            return Ok(AttrName {
                span,
                kind: AttrNameKind::Static(name),
            });
        }
        Ok(AttrName {
            span,
            kind: AttrNameKind::Dynamic(Box::new(expr)),
        })
    }

    fn parse_simple(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        let leaf = |p: &Self, kind| Ok(Expr::new(p.span(t.start, t.end), kind));
        match t.kind {
            Tok::Id => {
                self.bump()?;
                let sym = self.intern(self.text(t));
                leaf(self, ExprKind::Var(sym))
            }
            Tok::Int => {
                self.bump()?;
                match self.text(t).parse::<i64>() {
                    Ok(n) => leaf(self, ExprKind::Int(n)),
                    Err(_) => Err(ParseError::new(
                        self.span(t.start, t.end),
                        format!("invalid integer '{}'", self.text(t)),
                    )),
                }
            }
            Tok::Float => {
                self.bump()?;
                match parse_float(self.text(t)) {
                    Some(f) => leaf(self, ExprKind::Float(f)),
                    None => Err(ParseError::new(
                        self.span(t.start, t.end),
                        format!("invalid float '{}'", self.text(t)),
                    )),
                }
            }
            Tok::Quote => {
                self.bump()?;
                self.parse_string(t.start)
            }
            Tok::IndOpen => {
                self.bump()?;
                self.parse_ind_string(t.start)
            }
            Tok::Path | Tok::HomePath => {
                self.bump()?;
                self.parse_path(t)
            }
            Tok::SearchPath => {
                self.bump()?;
                let inner = &self.src[t.start as usize + 1..t.end as usize - 1];
                leaf(
                    self,
                    ExprKind::Path(Box::new(PathLit {
                        kind: PathKind::Search,
                        parts: vec![StrPart::Literal(inner.into())],
                    })),
                )
            }
            Tok::Uri => {
                self.bump()?;
                leaf(self, ExprKind::Uri(self.text(t).into()))
            }
            Tok::LParen => {
                self.bump()?;
                let e = self.parse_expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::Let => {
                self.bump()?;
                self.expect(Tok::LBrace, "'{' (legacy 'let { … }')")?;
                let bindings = self.parse_binds(Tok::RBrace)?;
                let end = self.bump()?.end;
                Ok(Expr::new(
                    self.span(t.start, end),
                    ExprKind::LegacyLet(Box::new(bindings)),
                ))
            }
            Tok::Rec | Tok::LBrace => {
                self.bump()?;
                if t.kind == Tok::Rec {
                    self.expect(Tok::LBrace, "'{' after 'rec'")?;
                }
                let bindings = self.parse_binds(Tok::RBrace)?;
                let end = self.bump()?.end;
                Ok(Expr::new(
                    self.span(t.start, end),
                    ExprKind::Attrs(Box::new(AttrSet {
                        rec: t.kind == Tok::Rec,
                        bindings,
                    })),
                ))
            }
            Tok::LBracket => self.nested(|p| p.parse_list(t)),
            _ => Err(self.unexpected(t, "an expression")),
        }
    }

    /// `[ select* ]` after its `[`.
    fn parse_list(&mut self, t: Token) -> PResult<Expr> {
        self.bump()?;
        let mut items = Vec::new();
        loop {
            let n = self.peek()?;
            if n.kind == Tok::RBracket {
                self.bump()?;
                return Ok(Expr::new(self.span(t.start, n.end), ExprKind::List(items)));
            }
            if !starts_select(n.kind) {
                return Err(self.unexpected(n, "a list element or ']'"));
            }
            items.push(self.parse_select()?);
        }
    }

    // ----- strings and paths --------------------------------------------

    /// `${ expr }` starting at byte `at` (which holds `${`); returns the
    /// expression and moves past the `}`.
    fn parse_interpolation(&mut self, at: usize) -> PResult<Expr> {
        self.pos = at + 2;
        self.peeked = None;
        let e = self.parse_expr()?;
        self.expect(Tok::RBrace, "'}' to close '${'")?;
        Ok(e)
    }

    /// A `"…"` string body; `start` is the opening quote.
    fn parse_string(&mut self, start: u32) -> PResult<Expr> {
        let b = self.bytes;
        let mut out = PartsBuilder::default();
        let mut i = self.pos;
        loop {
            // Copy the run of ordinary bytes in one go.
            let run = b[i..]
                .iter()
                .position(|&c| matches!(c, b'"' | b'\\' | b'$' | b'\r'))
                .unwrap_or(b.len() - i);
            out.push_str(&self.src[i..i + run]);
            i += run;
            match b.get(i) {
                None => {
                    return Err(ParseError::new(
                        self.span(start, start + 1),
                        "unterminated string: this '\"' is never closed",
                    ));
                }
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(c) = self.src[i + 1..].chars().next() else {
                        return Err(ParseError::new(
                            self.span(start, start + 1),
                            "unterminated string: this '\"' is never closed",
                        ));
                    };
                    out.push_char(match c {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        c => c,
                    });
                    i += 1 + c.len_utf8();
                }
                Some(b'\r') => {
                    // Nix turns CR and CR LF into LF in string literals.
                    out.push_char('\n');
                    i += if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                }
                Some(_) => match b.get(i + 1) {
                    // `$`
                    Some(b'{') => {
                        let e = self.parse_interpolation(i)?;
                        out.push_expr(e);
                        i = self.pos;
                    }
                    Some(b'$') => {
                        // `$$` is two dollars: `$${x}` is not interpolation.
                        out.push_str("$$");
                        i += 2;
                    }
                    _ => {
                        out.push_char('$');
                        i += 1;
                    }
                },
            }
        }
        self.pos = i;
        self.peeked = None;
        Ok(Expr::new(
            self.span(start, i as u32),
            ExprKind::Str(out.finish()),
        ))
    }

    /// A `''…''` string body; `start` is the opening `''`.
    fn parse_ind_string(&mut self, start: u32) -> PResult<Expr> {
        let b = self.bytes;
        let mut pieces: Vec<IndPiece<'s>> = Vec::new();
        let mut i = self.pos;
        let mut text_start = i;
        let src = self.src;
        let flush = |pieces: &mut Vec<IndPiece<'s>>, from: usize, to: usize| {
            if to > from {
                pieces.push(IndPiece::Text {
                    text: Cow::Borrowed(&src[from..to]),
                    indent: true,
                });
            }
        };
        loop {
            match b.get(i) {
                None => {
                    return Err(ParseError::new(
                        self.span(start, start + 2),
                        "unterminated indented string: this '' is never closed",
                    ));
                }
                Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                    flush(&mut pieces, text_start, i);
                    let escaped: Option<(Cow<'s, str>, usize)> = match b.get(i + 2) {
                        Some(b'\'') => Some((Cow::Borrowed("''"), 3)),
                        Some(b'$') => Some((Cow::Borrowed("$"), 3)),
                        Some(b'\\') => match self.src[i + 3..].chars().next() {
                            Some(c) => {
                                let s = match c {
                                    'n' => Cow::Borrowed("\n"),
                                    'r' => Cow::Borrowed("\r"),
                                    't' => Cow::Borrowed("\t"),
                                    c => Cow::Owned(c.to_string()),
                                };
                                Some((s, 3 + c.len_utf8()))
                            }
                            None => None,
                        },
                        _ => None,
                    };
                    match escaped {
                        Some((text, len)) => {
                            pieces.push(IndPiece::Text {
                                text,
                                indent: false,
                            });
                            i += len;
                            text_start = i;
                        }
                        None => {
                            i += 2;
                            break;
                        }
                    }
                }
                Some(b'$') if b.get(i + 1) == Some(&b'{') => {
                    flush(&mut pieces, text_start, i);
                    let e = self.parse_interpolation(i)?;
                    pieces.push(IndPiece::Interp(e));
                    i = self.pos;
                    text_start = i;
                }
                // `$$` is two dollars, so `$${` is not interpolation.
                Some(b'$') if b.get(i + 1) == Some(&b'$') => i += 2,
                Some(_) => i += 1,
            }
        }
        self.pos = i;
        self.peeked = None;
        Ok(Expr::new(
            self.span(start, i as u32),
            ExprKind::Str(strip_indentation(pieces)),
        ))
    }

    /// A path literal whose first segment is token `t` (already consumed):
    /// continues with `${…}` and further path text as Nix's lexer does.
    fn parse_path(&mut self, t: Token) -> PResult<Expr> {
        let first = self.text(t);
        let kind = match t.kind {
            Tok::HomePath => PathKind::Home,
            _ if first.starts_with('/') => PathKind::Absolute,
            _ => PathKind::Relative,
        };
        let mut out = PartsBuilder::default();
        out.push_str(first);
        let mut after_slash = first.ends_with('/');
        let mut seen_interp = false;
        let mut text_before_interp = false;
        let mut i = t.end as usize;
        loop {
            if self.bytes[i..].starts_with(b"${") {
                let e = self.parse_interpolation(i)?;
                out.push_expr(e);
                i = self.pos;
                seen_interp = true;
                after_slash = false;
                continue;
            }
            let n = lexer::path_piece_len(&self.bytes[i..]);
            if n == 0 {
                break;
            }
            if !seen_interp {
                if text_before_interp {
                    return Err(ParseError::new(
                        self.span(i as u32, (i + n) as u32),
                        "syntax error: unexpected path text, expected '${'",
                    ));
                }
                text_before_interp = true;
            }
            out.push_str(&self.src[i..i + n]);
            after_slash = self.bytes[i + n - 1] == b'/';
            i += n;
        }
        if after_slash {
            return Err(ParseError::new(
                self.span(t.start, i as u32),
                "path has a trailing slash",
            ));
        }
        if text_before_interp && !seen_interp {
            return Err(ParseError::new(
                self.span(i as u32, i as u32),
                "syntax error: unexpected end of path, expected '${'",
            ));
        }
        self.pos = i;
        self.peeked = None;
        Ok(Expr::new(
            self.span(t.start, i as u32),
            ExprKind::Path(Box::new(PathLit {
                kind,
                parts: out.finish(),
            })),
        ))
    }

    // ----- bindings -----------------------------------------------------

    /// Bindings up to (not including) `end` (`}` or `in`), merged as Nix
    /// merges them. (The caller rejects dynamic attributes in `let`.)
    fn parse_binds(&mut self, end: Tok) -> PResult<Bindings> {
        let mut b = BindingsBuilder::default();
        loop {
            let t = self.peek()?;
            if t.kind == end {
                return Ok(b.bindings);
            }
            match t.kind {
                Tok::Inherit => {
                    self.bump()?;
                    let from = if self.peek()?.kind == Tok::LParen {
                        self.bump()?;
                        let e = self.parse_expr()?;
                        self.expect(Tok::RParen, "')'")?;
                        b.bindings.inherit_from.push(e);
                        Some(b.bindings.inherit_from.len() as u32 - 1)
                    } else {
                        None
                    };
                    loop {
                        let n = self.peek()?;
                        if n.kind == Tok::Semi {
                            self.bump()?;
                            break;
                        }
                        if !matches!(n.kind, Tok::Id | Tok::OrKw | Tok::Quote | Tok::DollarCurly) {
                            return Err(self.unexpected(n, "an attribute name or ';'"));
                        }
                        let name = self.parse_attr_name()?;
                        let AttrNameKind::Static(sym) = name.kind else {
                            return Err(ParseError::new(
                                name.span,
                                "dynamic attributes not allowed in inherit",
                            ));
                        };
                        let value = match from {
                            Some(i) => AttrValue::InheritFrom(i),
                            None => AttrValue::Inherit,
                        };
                        let ident = Ident {
                            name: sym,
                            span: name.span,
                        };
                        if let Some(prev) = b.insert_top(ident, value) {
                            return Err(self.dup_attr(&[Some(ident.name)], ident.span, prev));
                        }
                    }
                }
                Tok::Id | Tok::OrKw | Tok::Quote | Tok::DollarCurly => {
                    let path = self.parse_attrpath()?;
                    self.expect(Tok::Assign, "'=' after the attribute name")?;
                    let value = self.parse_expr()?;
                    let next = self.peek()?;
                    if next.kind != Tok::Semi {
                        return Err(self.missing_semi(&value, next));
                    }
                    self.bump()?;
                    self.add_attr(&mut b, path, value)?;
                }
                _ => {
                    let expected = if end == Tok::In {
                        "an attribute name, 'inherit' or 'in'"
                    } else {
                        "an attribute name, 'inherit' or '}'"
                    };
                    return Err(self.unexpected(t, expected));
                }
            }
        }
    }

    /// The error for a binding's value not followed by `;`. When the `;`
    /// was forgotten at the end of a line, the next line either starts a
    /// new binding (`b = 2;`, which the value swallowed as a function
    /// argument before the `=` stopped it) or closes the set: the error
    /// then points at the end of the line where the `;` belongs.
    fn missing_semi(&self, value: &Expr, next: Token) -> ParseError {
        let breaks_before_next =
            |end: u32| self.src[end as usize..next.start as usize].contains('\n');
        let mut end = None;
        if next.kind == Tok::Assign {
            // `a = 1 ⏎ b = 2;` parsed as `a = (1 b)`: the `;` is missing
            // after the last part of the application before the line break.
            let mut parts = Vec::new();
            let mut expr = value;
            while let ExprKind::Apply(apply) = &expr.kind {
                parts.push(apply.arg.span.end);
                expr = &apply.func;
            }
            parts.push(expr.span.end);
            end = parts.into_iter().filter(|e| breaks_before_next(*e)).max();
        } else if breaks_before_next(value.span.end) {
            end = Some(value.span.end);
        }
        let Some(end) = end else {
            return self.unexpected(next, "';' after the attribute's value");
        };
        let found = self.unexpected(next, "';'").message;
        let found = found
            .strip_prefix("syntax error: unexpected ")
            .and_then(|f| f.strip_suffix(", expected ';'"))
            .unwrap_or("this")
            .to_owned();
        ParseError::new(
            self.span(end, end),
            "syntax error: missing ';' at the end of this line (after the attribute's value)",
        )
        .with_label(
            self.span(next.start, next.end),
            format!("unexpected {found}"),
        )
    }

    fn dup_attr(&self, path: &[Option<Symbol>], at: Span, first: Span) -> ParseError {
        let name: Vec<&str> = path
            .iter()
            .map(|s| s.map_or("${…}", |s| self.interner.resolve(s)))
            .collect();
        ParseError::new(
            at,
            format!("attribute '{}' already defined", name.join(".")),
        )
        .with_label(first, "first defined here")
    }

    /// Adds `path = value` to the bindings, merging with earlier
    /// definitions the way Nix 2.8's `addAttr` does.
    fn add_attr(&mut self, b: &mut BindingsBuilder, path: AttrPath, value: Expr) -> PResult<()> {
        // The path's names, for error messages (`None`: a dynamic name).
        let full: SmallVec<[Option<Symbol>; 4]> = path
            .iter()
            .map(|n| match n.kind {
                AttrNameKind::Static(s) => Some(s),
                AttrNameKind::Dynamic(_) => None,
            })
            .collect();
        let last = path.len() - 1;
        let def_span = path[0].span.to(path[last].span);
        let mut value = Some(value);
        let mut take_value = || value.take().expect("placed once, at the last path element");
        let mut iter = path.into_iter();
        // The set being added to: `None` is the top level (indexed by the
        // builder's map), `Some` a nested set reached through the path.
        let mut target: Option<&mut Bindings> = None;
        for (idx, name) in iter.by_ref().enumerate() {
            let is_last = idx == last;
            match name.kind {
                AttrNameKind::Static(sym) => {
                    let ident = Ident {
                        name: sym,
                        span: name.span,
                    };
                    let cur: &mut Bindings = match target {
                        None => {
                            // Top level: use the index.
                            match b.index.get(&sym).copied() {
                                None => {
                                    let v = if is_last {
                                        AttrValue::Expr(take_value())
                                    } else {
                                        AttrValue::Expr(empty_set(name.span))
                                    };
                                    b.insert_top(ident, v);
                                    if is_last {
                                        return Ok(());
                                    }
                                    let i = b.bindings.attrs.len() - 1;
                                    target = Some(nested_bindings(&mut b.bindings.attrs[i]));
                                    continue;
                                }
                                Some(i) => {
                                    let attr = &mut b.bindings.attrs[i as usize];
                                    if is_last {
                                        return self.merge_final(
                                            attr,
                                            take_value(),
                                            &full,
                                            def_span,
                                        );
                                    }
                                    if !is_attrs_value(&attr.value) {
                                        return Err(self.dup_attr(&full, def_span, attr.name.span));
                                    }
                                    target = Some(nested_bindings(attr));
                                    continue;
                                }
                            }
                        }
                        Some(cur) => cur,
                    };
                    match cur.attrs.iter().position(|a| a.name.name == sym) {
                        None => {
                            let v = if is_last {
                                cur.attrs.push(Attr {
                                    name: ident,
                                    value: AttrValue::Expr(take_value()),
                                });
                                return Ok(());
                            } else {
                                AttrValue::Expr(empty_set(name.span))
                            };
                            cur.attrs.push(Attr {
                                name: ident,
                                value: v,
                            });
                            let i = cur.attrs.len() - 1;
                            target = Some(nested_bindings(&mut cur.attrs[i]));
                        }
                        Some(i) => {
                            let attr = &mut cur.attrs[i];
                            if is_last {
                                return self.merge_final(attr, take_value(), &full, def_span);
                            }
                            if !is_attrs_value(&attr.value) {
                                return Err(self.dup_attr(&full, def_span, attr.name.span));
                            }
                            target = Some(nested_bindings(attr));
                        }
                    }
                }
                AttrNameKind::Dynamic(key) => {
                    let cur: &mut Bindings = match target {
                        None => &mut b.bindings,
                        Some(cur) => cur,
                    };
                    let span = key.span;
                    if is_last {
                        cur.dynamic.push(DynamicAttr {
                            key: *key,
                            value: take_value(),
                            span,
                        });
                        return Ok(());
                    }
                    cur.dynamic.push(DynamicAttr {
                        key: *key,
                        value: empty_set(name.span),
                        span,
                    });
                    let d = cur.dynamic.last_mut().expect("just pushed");
                    target = Some(match &mut d.value.kind {
                        ExprKind::Attrs(set) => &mut set.bindings,
                        _ => unreachable!("a nested set was just created"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The last step of a path names an existing attribute: allowed only
    /// when both are set literals, whose attributes are then merged.
    fn merge_final(
        &self,
        existing: &mut Attr,
        value: Expr,
        path: &[Option<Symbol>],
        def_span: Span,
    ) -> PResult<()> {
        let first_span = existing.name.span;
        let AttrValue::Expr(Expr {
            kind: ExprKind::Attrs(target),
            ..
        }) = &mut existing.value
        else {
            return Err(self.dup_attr(path, def_span, first_span));
        };
        let mut value = value;
        let ExprKind::Attrs(new) = &mut value.kind else {
            return Err(self.dup_attr(path, def_span, first_span));
        };
        let target = &mut target.bindings;
        let offset = target.inherit_from.len() as u32;
        target.inherit_from.append(&mut new.bindings.inherit_from);
        for attr in std::mem::take(&mut new.bindings.attrs) {
            if let Some(prev) = target.attrs.iter().find(|a| a.name.name == attr.name.name) {
                let mut full = path.to_vec();
                full.push(Some(attr.name.name));
                return Err(self.dup_attr(&full, attr.name.span, prev.name.span));
            }
            let value = match attr.value {
                AttrValue::InheritFrom(i) => AttrValue::InheritFrom(i + offset),
                v => v,
            };
            target.attrs.push(Attr {
                name: attr.name,
                value,
            });
        }
        target.dynamic.append(&mut new.bindings.dynamic);
        Ok(())
    }
}

/// Bindings under construction, with an index of the top-level names.
#[derive(Default)]
struct BindingsBuilder {
    bindings: Bindings,
    index: FxHashMap<Symbol, u32>,
}

impl BindingsBuilder {
    /// Adds a top-level attribute; returns the first definition's span if
    /// the name is taken.
    fn insert_top(&mut self, name: Ident, value: AttrValue) -> Option<Span> {
        if let Some(&i) = self.index.get(&name.name) {
            return Some(self.bindings.attrs[i as usize].name.span);
        }
        self.index
            .insert(name.name, self.bindings.attrs.len() as u32);
        self.bindings.attrs.push(Attr { name, value });
        None
    }
}

fn empty_set(span: Span) -> Expr {
    Expr::new(
        span,
        ExprKind::Attrs(Box::new(AttrSet {
            rec: false,
            bindings: Bindings::default(),
        })),
    )
}

fn is_attrs_value(v: &AttrValue) -> bool {
    matches!(
        v,
        AttrValue::Expr(Expr {
            kind: ExprKind::Attrs(_),
            ..
        })
    )
}

/// The bindings of an attribute whose value is a set literal (checked by
/// the caller with `is_attrs_value`, or just created).
fn nested_bindings(attr: &mut Attr) -> &mut Bindings {
    match &mut attr.value {
        AttrValue::Expr(Expr {
            kind: ExprKind::Attrs(set),
            ..
        }) => &mut set.bindings,
        _ => unreachable!("caller checked that the value is a set literal"),
    }
}

fn reduce_one(operands: &mut Vec<Expr>, ops: &mut Vec<PendingOp>) {
    let Some(op) = ops.pop() else { return };
    match op {
        PendingOp::Prefix { op, start } => {
            let operand = operands.pop().expect("operand for prefix operator");
            let span = Span {
                start,
                ..operand.span
            };
            operands.push(Expr::new(
                span,
                ExprKind::Unary(Box::new(Unary { op, operand })),
            ));
        }
        PendingOp::Infix { op, span, .. } => {
            let rhs = operands.pop().expect("right operand");
            let lhs = operands.pop().expect("left operand");
            let whole = lhs.span.to(rhs.span);
            operands.push(Expr::new(
                whole,
                ExprKind::Binary(Box::new(Binary {
                    op,
                    op_span: span,
                    lhs,
                    rhs,
                })),
            ));
        }
    }
}

fn reduce_while(operands: &mut Vec<Expr>, ops: &mut Vec<PendingOp>, cond: impl Fn(u8) -> bool) {
    while let Some(top) = ops.last() {
        if !cond(top.prec()) {
            break;
        }
        reduce_one(operands, ops);
    }
}

/// Parses a `FLOAT` token's text (`1.`, `.5`, `1.5e3`, `1.e3`).
fn parse_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().or_else(|| {
        // Rust's parser wants a digit after the dot before an exponent.
        let fixed = text.replacen(".e", ".0e", 1).replacen(".E", ".0E", 1);
        fixed.parse::<f64>().ok()
    })
}

/// Nix 2.8's indentation stripping of `''` strings.
///
/// The minimum indentation is the smallest number of leading spaces over
/// all lines that have something other than spaces before their end
/// (interpolations and escapes count as something); lines of only spaces
/// don't count, and neither does the final line if it is only spaces.
/// Then that many leading spaces are removed from every line, and a final
/// line of only spaces is removed (only when the string ends in text).
/// Tabs are not indentation. The opening `''` already swallowed spaces plus
/// a newline directly after it.
fn strip_indentation(pieces: Vec<IndPiece<'_>>) -> Vec<StrPart> {
    let mut at_line_start = true;
    let mut min_indent = usize::MAX;
    let mut cur_indent = 0usize;
    for piece in &pieces {
        match piece {
            IndPiece::Text { text, indent: true } => {
                for &c in text.as_bytes() {
                    if at_line_start {
                        if c == b' ' {
                            cur_indent += 1;
                        } else if c == b'\n' {
                            cur_indent = 0;
                        } else {
                            at_line_start = false;
                            min_indent = min_indent.min(cur_indent);
                        }
                    } else if c == b'\n' {
                        at_line_start = true;
                        cur_indent = 0;
                    }
                }
            }
            _ => {
                if at_line_start {
                    at_line_start = false;
                    min_indent = min_indent.min(cur_indent);
                }
            }
        }
    }
    // With no line of content, min_indent stays "infinite" and every
    // leading space is stripped (as in Nix).

    let mut out = PartsBuilder::default();
    at_line_start = true;
    let mut dropped = 0usize;
    let count = pieces.len();
    for (idx, piece) in pieces.into_iter().enumerate() {
        match piece {
            IndPiece::Interp(e) => {
                at_line_start = false;
                dropped = 0;
                out.push_expr(e);
            }
            IndPiece::Text { text, .. } => {
                let mut s = String::with_capacity(text.len());
                // Copy runs of bytes between the points where the state
                // changes; strip only ASCII spaces, so UTF-8 stays intact.
                let bytes = text.as_bytes();
                let mut run_start = 0;
                for (j, &c) in bytes.iter().enumerate() {
                    if at_line_start {
                        if c == b' ' {
                            let keep = dropped >= min_indent;
                            dropped += 1;
                            if !keep {
                                s.push_str(&text[run_start..j]);
                                run_start = j + 1;
                            }
                        } else if c == b'\n' {
                            dropped = 0;
                        } else {
                            at_line_start = false;
                            dropped = 0;
                        }
                    } else if c == b'\n' {
                        at_line_start = true;
                    }
                }
                s.push_str(&text[run_start..]);
                if idx + 1 == count
                    && let Some(nl) = s.rfind('\n')
                    && s[nl + 1..].bytes().all(|c| c == b' ')
                {
                    s.truncate(nl + 1);
                }
                out.push_str(&s);
            }
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(parse_float("1."), Some(1.0));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("1.e3"), Some(1000.0));
        assert_eq!(parse_float("2.5E-1"), Some(0.25));
    }
}
