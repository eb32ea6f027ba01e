//! Selections (`a.b or c`), attribute paths, the simple expressions
//! (names, numbers, parenthesised, sets, lists) and float literals.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Tok, Token};

use super::operators::starts_select;
use super::{PResult, Parser};

impl<'s> Parser<'s, '_> {
    pub(super) fn parse_select(&mut self) -> PResult<Expr> {
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

    pub(super) fn parse_attrpath(&mut self) -> PResult<AttrPath> {
        let mut path = vec![self.parse_attr_name()?];
        while self.peek()?.kind == Tok::Dot {
            self.bump()?;
            path.push(self.parse_attr_name()?);
        }
        Ok(path)
    }

    /// `ID`, `or`, `"string"` or `${expr}`; a string without interpolation
    /// (directly or inside `${}`) is a static name, as in Nix.
    pub(super) fn parse_attr_name(&mut self) -> PResult<AttrName> {
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
}

/// Parses a `FLOAT` token's text (`1.`, `.5`, `1.5e3`, `1.e3`).
fn parse_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().or_else(|| {
        // Rust's parser wants a digit after the dot before an exponent.
        let fixed = text.replacen(".e", ".0e", 1).replacen(".E", ".0E", 1);
        fixed.parse::<f64>().ok()
    })
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
