//! Attribute sets.
//!
//! An attribute set is an immutable vector of `(Symbol, Value)` sorted by
//! symbol id, shared through an `Rc`: selecting is a binary search,
//! `//` is one merge of two sorted vectors, and passing a set around is a
//! pointer copy. Positions of attributes (for `unsafeGetAttrPos` and
//! error messages) are kept only for sets written as literals.

use std::rc::Rc;

use crate::span::Span;

use super::Value;
use crate::symbol::Symbol;

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<(Symbol, Value)>,
    /// Same order as `entries` when present. Shared: every set made by
    /// one literal has the same positions.
    positions: Option<Rc<[Option<Span>]>>,
}

/// An immutable attribute set.
#[derive(Clone, Debug)]
pub struct Attrs(Rc<Inner>);

impl Default for Attrs {
    fn default() -> Self {
        Attrs::empty()
    }
}

impl Attrs {
    pub fn empty() -> Attrs {
        thread_local! {
            static EMPTY: Attrs = Attrs(Rc::new(Inner::default()));
        }
        EMPTY.with(Attrs::clone)
    }

    /// Build from entries in any order. When a name repeats, the first
    /// occurrence wins (as in `listToAttrs`).
    pub fn from_entries(mut entries: Vec<(Symbol, Value)>) -> Attrs {
        entries.sort_by_key(|(name, _)| *name);
        entries.dedup_by_key(|(name, _)| *name);
        Attrs(Rc::new(Inner {
            entries,
            positions: None,
        }))
    }

    /// Build from entries already sorted by symbol and without duplicates.
    pub fn from_sorted(entries: Vec<(Symbol, Value)>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        Attrs(Rc::new(Inner {
            entries,
            positions: None,
        }))
    }

    /// Build from entries with source positions; the first of a repeated
    /// name wins.
    pub fn from_entries_with_positions(entries: Vec<(Symbol, Value, Option<Span>)>) -> Attrs {
        let mut entries = entries;
        entries.sort_by_key(|(name, _, _)| *name);
        entries.dedup_by_key(|(name, _, _)| *name);
        let mut positions = Vec::with_capacity(entries.len());
        let entries = entries
            .into_iter()
            .map(|(name, value, pos)| {
                positions.push(pos);
                (name, value)
            })
            .collect();
        Attrs(Rc::new(Inner {
            entries,
            positions: Some(positions.into()),
        }))
    }

    /// Build from entries already sorted by symbol and without
    /// duplicates, with their positions (same order, same length).
    pub fn from_sorted_with_positions(
        entries: Vec<(Symbol, Value)>,
        positions: Rc<[Option<Span>]>,
    ) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert_eq!(entries.len(), positions.len());
        Attrs(Rc::new(Inner {
            entries,
            positions: Some(positions),
        }))
    }

    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    fn index_of(&self, name: Symbol) -> Option<usize> {
        let entries = &self.0.entries;
        // Small sets: a linear scan beats the branches of a binary search.
        if entries.len() <= 8 {
            return entries.iter().position(|(n, _)| *n == name);
        }
        entries.binary_search_by_key(&name, |(n, _)| *n).ok()
    }

    pub fn get(&self, name: Symbol) -> Option<&Value> {
        self.index_of(name).map(|i| &self.0.entries[i].1)
    }

    pub fn get_str(&self, name: &str) -> Option<&Value> {
        self.get(Symbol::intern(name))
    }

    pub fn contains(&self, name: Symbol) -> bool {
        self.index_of(name).is_some()
    }

    /// Where the attribute was defined, if the set came from a literal.
    pub fn position(&self, name: Symbol) -> Option<Span> {
        let i = self.index_of(name)?;
        self.0.positions.as_ref().and_then(|p| p[i])
    }

    /// Entries in symbol order (cheap; not alphabetical).
    pub fn iter(&self) -> impl Iterator<Item = (Symbol, &Value)> {
        self.0.entries.iter().map(|(n, v)| (*n, v))
    }

    /// Entries in alphabetical order of their names, as Nix exposes them.
    pub fn sorted(&self) -> Vec<(Symbol, &Value)> {
        // Look each name up once, not once per comparison.
        // Bytewise, as Nix.
        let mut keyed: Vec<(&'static [u8], Symbol, &Value)> =
            self.iter().map(|(n, v)| (n.as_bytes(), n, v)).collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        keyed.into_iter().map(|(_, n, v)| (n, v)).collect()
    }

    /// Names in alphabetical order.
    pub fn sorted_names(&self) -> Vec<Symbol> {
        let mut keyed: Vec<(&'static [u8], Symbol)> = self
            .0
            .entries
            .iter()
            .map(|(n, _)| (n.as_bytes(), *n))
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        keyed.into_iter().map(|(_, n)| n).collect()
    }

    /// `self // other`: attributes of `other` win.
    pub fn update(&self, other: &Attrs) -> Attrs {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let (a, b) = (&self.0.entries, &other.0.entries);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let keep_positions = self.0.positions.is_some() || other.0.positions.is_some();
        let mut positions = Vec::new();
        let mut take = |from: &Attrs, k: usize, out: &mut Vec<(Symbol, Value)>| {
            out.push(from.0.entries[k].clone());
            if keep_positions {
                positions.push(from.pos_at(k));
            }
        };
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].0 < b[j].0 {
                take(self, i, &mut out);
                i += 1;
            } else {
                if a[i].0 == b[j].0 {
                    i += 1;
                }
                take(other, j, &mut out);
                j += 1;
            }
        }
        for k in i..a.len() {
            take(self, k, &mut out);
        }
        for k in j..b.len() {
            take(other, k, &mut out);
        }
        Attrs(Rc::new(Inner {
            entries: out,
            positions: keep_positions.then(|| positions.into()),
        }))
    }

    fn pos_at(&self, i: usize) -> Option<Span> {
        self.0.positions.as_ref().and_then(|p| p[i])
    }

    /// The source positions of the entries, in [`Attrs::iter`] order, if
    /// the set came from a literal (for building a set from its entries).
    pub fn positions(&self) -> Option<&Rc<[Option<Span>]>> {
        self.0.positions.as_ref()
    }

    /// A copy without the given names (positions kept, as in Nix).
    pub fn remove(&self, names: &[Symbol]) -> Attrs {
        self.retain(|n| !names.contains(&n))
    }

    /// A copy with the attributes whose names `keep` accepts, with their
    /// positions (`removeAttrs`, `intersectAttrs`: Nix copies them).
    pub fn retain(&self, keep: impl Fn(Symbol) -> bool) -> Attrs {
        let mut entries = Vec::new();
        let mut positions = Vec::new();
        for (i, (n, v)) in self.0.entries.iter().enumerate() {
            if keep(*n) {
                entries.push((*n, v.clone()));
                positions.push(self.pos_at(i));
            }
        }
        Attrs(Rc::new(Inner {
            entries,
            positions: self.0.positions.is_some().then(|| positions.into()),
        }))
    }

    /// Apply `f` to every value, keeping names. The new values were
    /// written nowhere: the set has no positions (`mapAttrs` in Nix).
    pub fn map_values(&self, mut f: impl FnMut(Symbol, &Value) -> Value) -> Attrs {
        let entries = self.0.entries.iter().map(|(n, v)| (*n, f(*n, v))).collect();
        Attrs(Rc::new(Inner {
            entries,
            positions: None,
        }))
    }

    pub fn ptr_eq(&self, other: &Attrs) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// A stable identity for cycle detection while printing.
    pub fn addr(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, i64)]) -> Attrs {
        Attrs::from_entries(
            pairs
                .iter()
                .map(|(n, v)| (Symbol::intern(n), Value::Int(*v)))
                .collect(),
        )
    }

    #[test]
    fn update_prefers_right_and_keeps_order() {
        let left = set(&[("a", 1), ("b", 2), ("c", 3)]);
        let right = set(&[("b", 20), ("d", 4)]);
        let merged = left.update(&right);
        assert_eq!(merged.len(), 4);
        assert!(matches!(merged.get_str("b"), Some(Value::Int(20))));
        assert!(matches!(merged.get_str("a"), Some(Value::Int(1))));
        let names: Vec<&str> = merged.sorted_names().iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn first_duplicate_wins_and_lookup_works_in_large_sets() {
        let mut pairs: Vec<(Symbol, Value)> = (0..100)
            .map(|i| (Symbol::intern(&format!("k{i}")), Value::Int(i)))
            .collect();
        pairs.push((Symbol::intern("k5"), Value::Int(-1)));
        let attrs = Attrs::from_entries(pairs);
        assert_eq!(attrs.len(), 100);
        assert!(matches!(attrs.get_str("k5"), Some(Value::Int(5))));
        assert!(matches!(attrs.get_str("k99"), Some(Value::Int(99))));
        assert!(attrs.get_str("nope").is_none());
    }
}
