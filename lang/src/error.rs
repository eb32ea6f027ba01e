//! The error a parse can end with.

use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// A syntax error (or an error Nix reports at parse time: a duplicate
/// attribute or formal, an undefined variable, a dynamic attribute in
/// `let`, an invalid integer, a path with a trailing slash).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Where the problem is (often an empty span at an unexpected token).
    pub span: Span,
    /// What is wrong and, for syntax errors, what was expected.
    pub message: String,
    /// Related places, such as the first definition of a duplicate.
    pub labels: Vec<(Span, String)>,
}

impl ParseError {
    pub fn new(span: Span, message: impl Into<String>) -> ParseError {
        ParseError {
            span,
            message: message.into(),
            labels: Vec::new(),
        }
    }

    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> ParseError {
        self.labels.push((span, text.into()));
        self
    }

    /// The error as a renderable diagnostic.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = Diagnostic::error(self.message.clone()).with_primary(self.span, "");
        for (span, text) in &self.labels {
            d = d.with_label(*span, text.clone());
        }
        d
    }
}
