//! Operators: the precedence table, operator-precedence parsing of infix
//! and prefix operators with explicit stacks, and application.

use crate::ast::*;
use crate::lexer::Tok;
use crate::span::Span;

use super::{PResult, Parser};

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
pub(super) fn starts_select(kind: Tok) -> bool {
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

impl<'s> Parser<'s, '_> {
    /// Infix and prefix operators, by operator-precedence parsing with
    /// explicit stacks (no recursion per operator).
    pub(super) fn parse_op(&mut self) -> PResult<Expr> {
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
