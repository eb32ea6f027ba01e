//! The token cursor: peeking and consuming tokens, positions, errors at
//! a token, interning, and the nesting limit.

use crate::error::ParseError;
use crate::lexer::{self, LexError, Tok, Token};
use crate::span::Span;
use crate::symbol::Symbol;

use super::{PResult, Parser};

impl<'s> Parser<'s, '_> {
    pub(super) fn span(&self, start: u32, end: u32) -> Span {
        Span::new(self.file, start, end)
    }

    fn lex_error(&self, e: LexError) -> ParseError {
        ParseError::new(self.span(e.start, e.end), e.message)
    }

    pub(super) fn peek(&mut self) -> PResult<Token> {
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
    pub(super) fn peek_kind_ahead(&mut self, n: usize) -> PResult<Tok> {
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

    pub(super) fn bump(&mut self) -> PResult<Token> {
        let t = self.peek()?;
        self.peeked = None;
        self.pos = t.end as usize;
        Ok(t)
    }

    pub(super) fn expect(&mut self, kind: Tok, expected: &str) -> PResult<Token> {
        let t = self.peek()?;
        if t.kind == kind {
            self.bump()
        } else {
            Err(self.unexpected(t, expected))
        }
    }

    pub(super) fn text(&self, t: Token) -> &'s str {
        &self.src[t.start as usize..t.end as usize]
    }

    pub(super) fn unexpected(&self, t: Token, expected: &str) -> ParseError {
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

    pub(super) fn intern(&mut self, name: &str) -> Symbol {
        self.interner.intern(name)
    }

    pub(super) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
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
}
