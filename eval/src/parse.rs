//! The bridge to the lang crate's parser.

use kiln_lang::ast;
use kiln_lang::span::FileId;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::symbol::Symbol;

/// Parse a file already added to the machine's sources. `extra` are names
/// bound around the file (by `scopedImport`), which count as defined.
pub fn parse(m: &mut Machine, file: FileId, extra: &[Symbol]) -> EvalResult<ast::Expr> {
    let text = m.sources.map.text(file);
    let globals = &m.globals;
    let is_global = |name: &str| {
        name == "__curPos"
            || extra.iter().any(|s| s.as_str() == name)
            || globals.contains_key(&Symbol::intern(name))
    };
    kiln_lang::parse_with_globals(file, text, &mut m.interner, &is_global)
        .map_err(|e| EvalError::new(ErrorKind::Parse(e.message), Some(e.span)))
}
