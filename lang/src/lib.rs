//! kiln-lang: the syntax of kiln's language (a compatible subset of Nix).
//!
//! Owns the parser (nom) producing an AST with byte spans, the source map,
//! and rendering of diagnostics with source snippets. Knows nothing of
//! evaluation or the store.
//!
//! - [`span`]: `Span { file, start, end }`, a `Copy` byte range.
//! - [`source`]: the [`SourceMap`](source::SourceMap) of every parsed text.
//! - [`symbol`]: interned names ([`Symbol`](symbol::Symbol), [`Interner`](symbol::Interner)).
//! - [`ast`]: the syntax tree (see its docs for the invariants eval relies on).

pub mod ast;
pub mod source;
pub mod span;
pub mod symbol;

pub use span::{FileId, Span};
pub use symbol::{Interner, Symbol};
