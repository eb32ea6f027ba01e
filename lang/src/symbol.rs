//! Interned identifiers.
//!
//! Every identifier and static attribute name in the AST is a [`Symbol`]: a
//! `u32` index into an [`Interner`]. Comparing and hashing names is then an
//! integer operation, which is what a fast evaluator wants for scopes and
//! attribute sets.
//!
//! One `Interner` is meant to live for a whole evaluation: the parser interns
//! into it (`parse` takes `&mut Interner`), and the evaluator keeps using the
//! same one for names made at run time (`listToAttrs`, `getAttr`, …), so a
//! name has the same `Symbol` wherever it comes from.

use rustc_hash::FxHashMap;

/// An interned name. Only meaningful with the [`Interner`] that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(pub u32);

/// Maps names to [`Symbol`]s and back.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: FxHashMap<Box<str>, Symbol>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub fn new() -> Interner {
        Interner::default()
    }

    /// The symbol for `name`, creating it on first use.
    pub fn intern(&mut self, name: &str) -> Symbol {
        if let Some(&sym) = self.ids.get(name) {
            return sym;
        }
        let sym = Symbol(self.names.len() as u32);
        self.names.push(name.into());
        self.ids.insert(name.into(), sym);
        sym
    }

    /// The symbol for `name` if it was ever interned.
    pub fn get(&self, name: &str) -> Option<Symbol> {
        self.ids.get(name).copied()
    }

    /// The text of a symbol. Panics only on a symbol from another interner
    /// (a programming error, never user input).
    pub fn resolve(&self, sym: Symbol) -> &str {
        &self.names[sym.0 as usize]
    }

    /// How many distinct names are interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_symbol() {
        let mut i = Interner::new();
        let a = i.intern("a");
        let b = i.intern("b");
        assert_ne!(a, b);
        assert_eq!(i.intern("a"), a);
        assert_eq!(i.resolve(b), "b");
        assert_eq!(i.get("c"), None);
    }
}
