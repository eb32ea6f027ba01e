//! Interned names.
//!
//! Attribute names and identifiers are interned once into a per-thread
//! table and then compared as integers: attribute sets are sorted by
//! `Symbol` (interning order, not alphabetical) so lookup is a binary search
//! over `u32`s. Where Nix exposes order (`attrNames`, printing) the caller
//! sorts by the name's text with [`Symbol::as_str`].

use std::cell::RefCell;
use std::fmt;

use rustc_hash::FxHashMap;

/// An interned name. Cheap to copy, compare and hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(u32);

#[derive(Default)]
struct Interner {
    by_name: FxHashMap<&'static [u8], Symbol>,
    /// Each name's bytes and its text (the same bytes when they are UTF-8,
    /// the lossy rendering otherwise: names are bytes, as in Nix).
    names: Vec<(&'static [u8], &'static str)>,
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::default());
}

impl Symbol {
    /// Intern `name`. Interned text lives as long as the process: the set of
    /// distinct names a program uses is small compared to its values.
    pub fn intern(name: &str) -> Symbol {
        Symbol::intern_bytes(name.as_bytes())
    }

    /// Intern a name that may not be UTF-8.
    pub fn intern_bytes(name: &[u8]) -> Symbol {
        INTERNER.with(|cell| {
            let mut interner = cell.borrow_mut();
            if let Some(symbol) = interner.by_name.get(name) {
                return *symbol;
            }
            let bytes: &'static [u8] = Box::leak(name.to_owned().into_boxed_slice());
            let text: &'static str = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => Box::leak(String::from_utf8_lossy(bytes).into_owned().into_boxed_str()),
            };
            let symbol = Symbol(interner.names.len() as u32);
            interner.names.push((bytes, text));
            interner.by_name.insert(bytes, symbol);
            symbol
        })
    }

    /// The raw index (for compact caches).
    pub(crate) fn index(self) -> u32 {
        self.0
    }

    /// A symbol from [`Symbol::index`].
    pub(crate) fn from_index(index: u32) -> Symbol {
        Symbol(index)
    }

    /// The text of this name (lossy when its bytes are not UTF-8: order
    /// and printing use [`Symbol::as_bytes`]).
    pub fn as_str(self) -> &'static str {
        INTERNER.with(|cell| cell.borrow().names[self.0 as usize].1)
    }

    /// The bytes of this name.
    pub fn as_bytes(self) -> &'static [u8] {
        INTERNER.with(|cell| cell.borrow().names[self.0 as usize].0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_round_trips() {
        let a = Symbol::intern("alpha");
        let b = Symbol::intern("beta");
        assert_eq!(a, Symbol::intern("alpha"));
        assert_ne!(a, b);
        assert_eq!(b.as_str(), "beta");
    }
}
