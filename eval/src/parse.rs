//! The bridge to the lang crate's parser.
//!
//! The parser's own check for undefined variables is skipped: the
//! compiler resolves every name anyway and reports the undefined ones
//! before evaluation starts, which saves a pass over big files.

use kiln_lang::ast;
use kiln_lang::span::FileId;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;

/// Parse a file already added to the machine's sources.
pub fn parse(m: &mut Machine, file: FileId) -> EvalResult<ast::Expr> {
    let text = m.sources.map.text(file);
    kiln_lang::parse_unchecked(file, text, &mut m.interner).map_err(|e| {
        let err = EvalError::new(ErrorKind::Parse(e.message), Some(e.span));
        // The parser's secondary labels ("first defined here") come along.
        e.labels
            .into_iter()
            .fold(err, |err, (span, text)| err.with_label(span, text))
    })
}
