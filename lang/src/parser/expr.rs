//! The loosest forms: functions (`x: …`, formals with `@`), `assert`,
//! `with`, `let … in` and `if`.

use rustc_hash::FxHashMap;

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::Tok;
use crate::span::Span;
use crate::symbol::Symbol;

use super::{PResult, Parser};

impl<'s> Parser<'s, '_> {
    pub(super) fn parse_expr(&mut self) -> PResult<Expr> {
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
                let next = self.peek()?;
                if next.kind != Tok::Semi {
                    // `with s ⏎ body`: the body was taken as an argument.
                    if let Some(end) = self.semi_before_swallowed(&first, next) {
                        let what = if t.kind == Tok::Assert {
                            "assert"
                        } else {
                            "with"
                        };
                        return Err(ParseError::new(
                            self.span(end, end),
                            format!(
                                "syntax error: missing ';' at the end of this line (after '{what} …')"
                            ),
                        )
                        .with_label(
                            self.span(next.start, next.end),
                            "the expression after it was read as a function argument",
                        ));
                    }
                    return Err(self.unexpected(next, "';'"));
                }
                self.bump()?;
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
}
