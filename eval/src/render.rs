//! Rendering an evaluation error for a person:
//!
//! ```text
//! error: attribute 'nmae' missing; did you mean 'name'?
//!
//!        at /src/default.nix:3:7:
//!
//!             3|   x = a.nmae;
//!              |       ^
//!
//!        … while evaluating the attribute 'x'
//!          at /src/default.nix:3:3
//! ```
//!
//! Repeated trace lines are folded into one with a count.

use std::fmt::Write;

use crate::error::EvalError;
use crate::source::Sources;
use crate::span::Span;

pub fn render_error(sources: &Sources, err: &EvalError) -> String {
    let mut out = format!("error: {} [{}]\n", err, err.kind().code());
    if let Some(span) = err.span() {
        snippet(sources, span, &mut out);
    }
    for (frame, count) in err.condensed_trace() {
        let _ = write!(out, "\n       … {}", frame.message);
        if count > 1 {
            let _ = write!(out, " ({count} times)");
        }
        out.push('\n');
        if let Some(span) = frame.span {
            let _ = writeln!(out, "         at {}", sources.map.describe(span));
        }
    }
    out
}

fn snippet(sources: &Sources, span: Span, out: &mut String) {
    let Some(file) = sources.map.get(span.file) else {
        return;
    };
    let (line, col) = file.line_col(span.start);
    let _ = writeln!(out, "\n       at {}:{}:{}:\n", file.name(), line, col);
    let text = file.line_text(line);
    let gutter = line.to_string();
    let _ = writeln!(out, "       {:>5}| {}", gutter, text);
    let caret_pad: String = text
        .chars()
        .take((col as usize).saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = writeln!(out, "       {:>5}| {}^", "", caret_pad);
}
