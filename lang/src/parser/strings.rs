//! Strings, indented strings (with Nix 2.8's indentation stripping),
//! interpolations and paths.

use std::borrow::Cow;

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{self, Tok, Token};

use super::{PResult, Parser};

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
    pub(super) fn parse_string(&mut self, start: u32) -> PResult<Expr> {
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
    pub(super) fn parse_ind_string(&mut self, start: u32) -> PResult<Expr> {
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
    pub(super) fn parse_path(&mut self, t: Token) -> PResult<Expr> {
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
