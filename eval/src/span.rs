//! Source positions, as the evaluator sees them: the lang crate's spans.
pub use kiln_lang::span::Span;
