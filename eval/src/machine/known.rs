//! Interned names the machine itself uses.

use crate::symbol::Symbol;

/// Interned names the machine itself uses.
pub(crate) struct KnownSymbols {
    pub functor: Symbol,
    pub to_string: Symbol,
    pub out_path: Symbol,
    pub overrides: Symbol,
    pub type_: Symbol,
    pub file: Symbol,
    pub line: Symbol,
    pub column: Symbol,
    pub name: Symbol,
    pub value: Symbol,
}

impl KnownSymbols {
    pub(super) fn new() -> KnownSymbols {
        KnownSymbols {
            functor: Symbol::intern("__functor"),
            to_string: Symbol::intern("__toString"),
            out_path: Symbol::intern("outPath"),
            overrides: Symbol::intern("__overrides"),
            type_: Symbol::intern("type"),
            file: Symbol::intern("file"),
            line: Symbol::intern("line"),
            column: Symbol::intern("column"),
            name: Symbol::intern("name"),
            value: Symbol::intern("value"),
        }
    }
}
