//! Rendering errors with source snippets.
//!
//! A [`Diagnostic`] is a severity, a message, an optional primary span with
//! a label, extra labelled spans (e.g. "first defined here", or one per
//! frame of an evaluation trace), and free-form notes. [`Diagnostic::render`]
//! turns it into text like:
//!
//! ```text
//! error: syntax error: unexpected ')', expected an expression
//!  --> /src/default.nix:3:7
//!   |
//! 3 |   a = );
//!   |       ^ here
//!   |
//!  ::: /src/default.nix:1:3
//!   |
//! 1 |   b = 1;
//!   |   - first defined here
//!   = note: …
//! ```
//!
//! Used by the parser and by the evaluator for every language error.

use std::fmt::Write;

use crate::source::SourceMap;
use crate::span::Span;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A span with a short text shown next to its caret line.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// A message about the source, renderable with [`Diagnostic::render`].
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// The main place; shown first, with `^` carets.
    pub primary: Option<Label>,
    /// Further places, in order; shown with `-` underlines.
    pub labels: Vec<Label>,
    /// Lines printed at the end as `= note: …`.
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(severity: Severity, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            message: message.into(),
            primary: None,
            labels: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Error, message)
    }

    pub fn with_primary(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// The diagnostic as text, with a snippet of each labelled line. Spans
    /// whose file is not in `map` are named but not shown.
    pub fn render(&self, map: &SourceMap) -> String {
        let mut out = format!("{}: {}\n", self.severity.as_str(), self.message);
        let gutter = self
            .primary
            .iter()
            .chain(&self.labels)
            .map(|l| map.line_col(l.span).0.to_string().len())
            .max()
            .unwrap_or(1);
        if let Some(p) = &self.primary {
            render_label(&mut out, map, p, '^', "-->", gutter);
        }
        for l in &self.labels {
            render_label(&mut out, map, l, '-', ":::", gutter);
        }
        for n in &self.notes {
            let _ = writeln!(out, "{:gutter$} = note: {n}", "");
        }
        out
    }
}

fn render_label(
    out: &mut String,
    map: &SourceMap,
    label: &Label,
    mark: char,
    arrow: &str,
    gutter: usize,
) {
    let Some(file) = map.get(label.span.file) else {
        let _ = writeln!(out, "{:gutter$}{arrow} «unknown file»: {}", "", label.text);
        return;
    };
    let (line, col) = file.line_col(label.span.start);
    let _ = writeln!(out, "{:gutter$}{arrow} {}:{line}:{col}", "", file.name());
    let text = file.line_text(line);
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{line:>gutter$} | {}", text.replace('\t', " "));
    // Underline to the end of the span, but not past the end of this line.
    let (end_line, end_col) = file.line_col(label.span.end);
    let width = if end_line == line && end_col > col {
        (end_col - col) as usize
    } else if end_line > line {
        (text.chars().count() + 1)
            .saturating_sub(col as usize)
            .max(1)
    } else {
        1
    };
    let marks: String = std::iter::repeat_n(mark, width).collect();
    let pad = (col as usize).saturating_sub(1);
    let _ = write!(out, "{:gutter$} | {:pad$}{marks}", "", "");
    if label.text.is_empty() {
        out.push('\n');
    } else {
        let _ = writeln!(out, " {}", label.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_caret() {
        let mut map = SourceMap::new();
        let f = map.add("x.nix", None, "{\n  a = );\n}\n".to_string());
        let d = Diagnostic::error("unexpected ')'")
            .with_primary(Span::new(f, 8, 9), "expected an expression")
            .with_label(Span::new(f, 0, 1), "set starts here")
            .with_note("a note");
        let text = d.render(&map);
        let expected = [
            "error: unexpected ')'",
            " --> x.nix:2:7",
            "  |",
            "2 |   a = );",
            "  |       ^ expected an expression",
            " ::: x.nix:1:1",
            "  |",
            "1 | {",
            "  | - set starts here",
            "  = note: a note",
            "",
        ]
        .join("\n");
        assert_eq!(text, expected);
    }

    #[test]
    fn unknown_file_is_named_not_shown() {
        let map = SourceMap::new();
        let d = Diagnostic::error("boom").with_primary(Span::new(crate::FileId(3), 0, 1), "");
        assert!(d.render(&map).contains("«unknown file»"));
    }
}
