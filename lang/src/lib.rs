//! kiln-lang: the syntax of kiln's language (a compatible subset of Nix).
//!
//! Owns the parser (nom) producing an AST with byte spans, the source map,
//! and rendering of diagnostics with source snippets. Knows nothing of
//! evaluation or the store.
//!
//! - [`span`]: `Span { file, start, end }`, a `Copy` byte range.
//! - [`source`]: the [`SourceMap`] of every parsed text.
//! - [`symbol`]: interned names ([`Symbol`], [`Interner`]).
//! - [`ast`]: the syntax tree (see its docs for the invariants eval relies on).
//! - [`lexer`], [`parser`](parse): Nix 2.8's tokens and grammar.
//! - [`scope`]: the parse-time "undefined variable" check.
//! - [`diagnostics`]: [`Diagnostic`] rendering for parse and eval errors.
//! - [`sexpr`]: a readable S-expression printing of the AST.
//! - [`stack`]: threads with as big a stack as the address space allows.
//!
//! # Example
//!
//! ```
//! use kiln_lang::{Interner, SourceMap, parse};
//! let mut map = SourceMap::new();
//! let file = map.add("(string)", None, "let x = 1; in x + 2".to_string());
//! let mut names = Interner::new();
//! let expr = parse(file, map.text(file), &mut names).expect("parses");
//! assert_eq!(kiln_lang::sexpr::to_sexpr(&expr, &names), "(let ((x 1)) (+ x 2))");
//! ```

#![forbid(unsafe_code)]

pub mod ast;
pub mod diagnostics;
pub mod error;
pub mod lexer;
mod parser;
pub mod scope;
pub mod sexpr;
pub mod source;
pub mod span;
pub mod stack;
pub mod symbol;

pub use ast::Expr;
pub use diagnostics::Diagnostic;
pub use error::ParseError;
pub use parser::MAX_DEPTH;
pub use source::SourceMap;
pub use span::{FileId, Span};
pub use symbol::{Interner, Symbol};

/// Parses `text` (the contents of `file`) and checks that every variable is
/// bound or one of Nix 2.8's globals, as `nix-instantiate --parse` does.
pub fn parse(file: FileId, text: &str, interner: &mut Interner) -> Result<Expr, ParseError> {
    parse_with_globals(file, text, interner, &scope::is_nix_global)
}

/// Like [`parse`], with the evaluator's own notion of which free names
/// exist (its base environment).
pub fn parse_with_globals(
    file: FileId,
    text: &str,
    interner: &mut Interner,
    is_global: &dyn Fn(&str) -> bool,
) -> Result<Expr, ParseError> {
    let expr = parser::parse_expr_text(file, text, interner)?;
    scope::check_variables(&expr, interner, is_global)?;
    Ok(expr)
}

/// Parses without the variable check (for an evaluator that resolves
/// names itself and reports undefined ones).
pub fn parse_unchecked(
    file: FileId,
    text: &str,
    interner: &mut Interner,
) -> Result<Expr, ParseError> {
    parser::parse_expr_text(file, text, interner)
}
