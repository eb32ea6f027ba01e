//! kiln-lang: the syntax of kiln's language (a compatible subset of Nix).
//!
//! Owns the parser (nom) producing an AST with byte spans, the source map,
//! and rendering of diagnostics with source snippets. Knows nothing of
//! evaluation or the store.
