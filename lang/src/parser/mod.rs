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
//!
//! # Modules
//!
//! This file holds the entry points, the depth limit and the [`Parser`]
//! state; the grammar is split by kind of syntax, each an `impl Parser`:
//! `cursor` (tokens, errors at a token, nesting), `expr` (functions,
//! `assert`, `with`, `let`, `if`), `operators` (precedence parsing,
//! application), `primary` (selection, attribute paths, simple
//! expressions), `strings` (strings, indented strings, paths) and
//! `bindings` (sets and `let` bindings, merged as Nix merges them).

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{self, Tok, Token};
use crate::span::{FileId, Span};
use crate::symbol::Interner;

mod bindings;
mod cursor;
mod expr;
mod operators;
mod primary;
mod strings;

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
