//! Rendering an evaluation error for a person, with the lang crate's
//! diagnostics: the message, the source line with a caret at the failing
//! expression, then the trace innermost first ("while evaluating the
//! attribute 'x'"), each frame with its own snippet when it has a
//! position. Repeated frames are folded into one line with a count.

use kiln_lang::diagnostics::{Diagnostic, Label};

use crate::error::EvalError;
use crate::source::Sources;

pub fn render_error(sources: &Sources, err: &EvalError) -> String {
    let mut diagnostic = Diagnostic::error(err.to_string());
    if let Some(span) = err.span() {
        diagnostic = diagnostic.with_primary(span, "");
    }
    for (frame, count) in err.condensed_trace() {
        let text = if count > 1 {
            format!("{} ({count} times)", frame.message)
        } else {
            frame.message.clone()
        };
        match frame.span {
            Some(span) => {
                diagnostic.labels.push(Label { span, text });
            }
            None => diagnostic = diagnostic.with_note(text),
        }
    }
    diagnostic = diagnostic.with_note(format!("error code {}", err.kind().code()));
    diagnostic.render(&sources.map)
}
