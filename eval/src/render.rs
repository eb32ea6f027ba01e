//! Rendering an evaluation error for a person, with the lang crate's
//! diagnostics: the message, the source line with a caret at the failing
//! expression, then the trace innermost first ("while evaluating the
//! attribute 'x'"), each frame with its own snippet when it has a
//! position. A frame repeated in a row is one line with a count, a cycle
//! of frames repeated in a row (mutual recursion) is shown once with a
//! line saying how often it repeats.
//!
//! Two lengths, as Nix's `--show-trace`:
//!
//! - **short** (the default) says what the user wrote: frames of kiln's
//!   own builtins (`derivationStrict`, `getAttr`, …) are left out, at most
//!   [`SHORT_FRAMES`] frames are shown, and a last note says how many were
//!   folded;
//! - **full** shows every frame kept.
//!
//! In both, a place is shown once: a frame at a span already shown (the
//! error's own, or an inner frame's) becomes a plain note, or in the short
//! trace is folded.

use std::collections::HashSet;

use kiln_lang::diagnostics::{Diagnostic, Label};

use crate::error::EvalError;
use crate::source::Sources;

/// The most frames a short trace shows.
pub const SHORT_FRAMES: usize = 8;

pub fn render_error(sources: &Sources, err: &EvalError, full: bool) -> String {
    let mut diagnostic = Diagnostic::error(err.to_string());
    let mut shown = HashSet::new();
    if let Some(span) = err.span() {
        diagnostic = diagnostic.with_primary(span, "");
        shown.insert(span);
    }
    for (span, text) in err.labels() {
        diagnostic.labels.push(Label {
            span: *span,
            text: text.clone(),
        });
    }
    let mut kept = 0;
    let mut folded = 0;
    for group in err.condensed_trace() {
        let cycle = group.frames.len() > 1;
        // A frame alone carries its count; a cycle gets a line after it.
        let count = if cycle { 1 } else { group.times };
        let mut cycle_kept = false;
        for frame in &group.frames {
            let repeated = frame.span.is_some_and(|span| shown.contains(&span));
            if !full && (frame.builtin || repeated || kept == SHORT_FRAMES) {
                folded += count;
                continue;
            }
            kept += 1;
            cycle_kept = true;
            let text = if count > 1 {
                format!("{} ({count} times)", frame.message)
            } else {
                frame.message.clone()
            };
            match frame.span {
                Some(span) if !repeated => {
                    shown.insert(span);
                    diagnostic.labels.push(Label { span, text });
                }
                _ => diagnostic = diagnostic.with_note(text),
            }
        }
        if cycle && group.times > 1 {
            if cycle_kept {
                diagnostic = diagnostic.with_note(format!(
                    "the {} frames above repeat {} more times",
                    group.frames.len(),
                    group.times - 1
                ));
            } else {
                folded += group.frames.len() * (group.times - 1);
            }
        }
    }
    if folded > 0 {
        let frames = if folded == 1 { "frame" } else { "frames" };
        diagnostic = diagnostic.with_note(format!(
            "{folded} more {frames} of the trace folded (--show-trace shows them)"
        ));
    }
    diagnostic = diagnostic.with_note(format!(
        "error code {code}: 'kiln explain {code}' says more",
        code = err.kind().code()
    ));
    diagnostic.render(&sources.map)
}
