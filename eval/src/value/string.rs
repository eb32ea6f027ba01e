//! Strings and their context.
//!
//! A Nix string is text plus a *context*: the set of store paths and
//! derivation outputs it was built from. `derivation` turns the context of
//! every string in its arguments into input sources and input derivations
//! (issue 4), so every operation that builds a string from other strings
//! (concatenation, interpolation, `toString`, `replaceStrings`, `substring`,
//! …) must carry the union of its inputs' contexts. Most strings have none,
//! so an empty context costs one null pointer.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use crate::symbol::Symbol;

/// One element of a string's context.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextElem {
    /// A plain store path (a source copied to the store, or an output path
    /// named directly).
    Path(String),
    /// Output `output` of the derivation at store path `drv`
    /// (Nix writes it `!output!drv`).
    DrvOutput { drv: String, output: String },
    /// The derivation at `drv` with all its outputs and their closure
    /// (Nix writes it `=drv`); produced by `drvPath`.
    AllOutputs(String),
}

/// A set of context elements, ordered so printing and hashing are stable.
///
/// Nearly every context holds one or two elements, and a B-tree's first
/// node alone is ~600 bytes, paid by every string that mentions a store
/// path: small sets are a sorted vector. A string built from thousands of
/// derivations (a fan-in's inputs) would make sorted insertion quadratic,
/// so past `SMALL` elements the set becomes a B-tree.
#[derive(Clone, Debug, Default)]
pub struct Context(Repr);

/// Equal when the elements are, whichever representation holds them.
impl PartialEq for Context {
    fn eq(&self, other: &Context) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Context {}

#[derive(Clone, Debug)]
enum Repr {
    Small(Vec<ContextElem>),
    Large(BTreeSet<ContextElem>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Small(Vec::new())
    }
}

/// Largest context kept as a sorted vector.
const SMALL: usize = 16;

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// Add `elem`; false if it was there already.
    pub fn insert(&mut self, elem: ContextElem) -> bool {
        match &mut self.0 {
            Repr::Small(elems) => match elems.binary_search(&elem) {
                Ok(_) => false,
                Err(_) if elems.len() == SMALL => {
                    let mut set: BTreeSet<ContextElem> =
                        std::mem::take(elems).into_iter().collect();
                    set.insert(elem);
                    self.0 = Repr::Large(set);
                    true
                }
                Err(at) => {
                    elems.insert(at, elem);
                    true
                }
            },
            Repr::Large(set) => set.insert(elem),
        }
    }

    pub fn contains(&self, elem: &ContextElem) -> bool {
        match &self.0 {
            Repr::Small(elems) => elems.binary_search(elem).is_ok(),
            Repr::Large(set) => set.contains(elem),
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> ContextIter<'_> {
        match &self.0 {
            Repr::Small(elems) => ContextIter::Small(elems.iter()),
            Repr::Large(set) => ContextIter::Large(set.iter()),
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Small(elems) => elems.len(),
            Repr::Large(set) => set.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`Context::iter`].
pub enum ContextIter<'a> {
    Small(std::slice::Iter<'a, ContextElem>),
    Large(std::collections::btree_set::Iter<'a, ContextElem>),
}

impl<'a> Iterator for ContextIter<'a> {
    type Item = &'a ContextElem;
    fn next(&mut self) -> Option<&'a ContextElem> {
        match self {
            ContextIter::Small(it) => it.next(),
            ContextIter::Large(it) => it.next(),
        }
    }
}

impl Extend<ContextElem> for Context {
    fn extend<I: IntoIterator<Item = ContextElem>>(&mut self, items: I) {
        for elem in items {
            self.insert(elem);
        }
    }
}

impl FromIterator<ContextElem> for Context {
    fn from_iter<I: IntoIterator<Item = ContextElem>>(items: I) -> Context {
        let mut elems: Vec<ContextElem> = items.into_iter().collect();
        elems.sort();
        elems.dedup();
        if elems.len() > SMALL {
            // From sorted input a B-tree is built in one pass.
            Context(Repr::Large(elems.into_iter().collect()))
        } else {
            Context(Repr::Small(elems))
        }
    }
}

impl<const N: usize> From<[ContextElem; N]> for Context {
    fn from(elems: [ContextElem; N]) -> Context {
        elems.into_iter().collect()
    }
}

impl IntoIterator for Context {
    type Item = ContextElem;
    type IntoIter = Box<dyn Iterator<Item = ContextElem>>;
    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            Repr::Small(elems) => Box::new(elems.into_iter()),
            Repr::Large(set) => Box::new(set.into_iter()),
        }
    }
}

impl<'a> IntoIterator for &'a Context {
    type Item = &'a ContextElem;
    type IntoIter = ContextIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[derive(Debug)]
struct Inner {
    text: Text,
    /// Shared: a string made from one string with context (a substring,
    /// an interpolation of one derivation) keeps the same context.
    context: Option<Rc<Context>>,
    /// The interned symbol of this text once it was used as an attribute
    /// name (`NO_SYMBOL` until then): `s.${name}` over names from
    /// `attrNames` then never hashes the text again.
    symbol: Cell<u32>,
    /// Whether the bytes are valid UTF-8 (known for free for text made
    /// from Rust strings; checked once for text made from bytes).
    utf8: bool,
    /// For text that is not UTF-8: the lossy rendering handed out by
    /// [`NixString::as_str`] to the few callers that need `&str` (file
    /// names, error messages), made once on first use.
    lossy: std::cell::OnceCell<Box<str>>,
}

const NO_SYMBOL: u32 = u32::MAX;

/// A string's bytes. As in Nix, a string is any sequence of bytes (a
/// `readFile` of a Latin-1 file, a `substring` that cuts a UTF-8 character
/// in two); up to 24 of them are kept inline, so the many short strings a
/// program makes (names, numbers, versions) cost one allocation (the `Rc`)
/// instead of two.
#[derive(Debug)]
pub struct Text(smallvec::SmallVec<[u8; 24]>, bool);

impl Text {
    /// Arbitrary bytes (checked once for UTF-8).
    pub fn from_bytes(bytes: &[u8]) -> Text {
        Text(
            smallvec::SmallVec::from_slice(bytes),
            std::str::from_utf8(bytes).is_ok(),
        )
    }

    /// Arbitrary bytes, reusing the buffer when it is not small.
    pub fn from_vec(bytes: Vec<u8>) -> Text {
        let utf8 = std::str::from_utf8(&bytes).is_ok();
        if bytes.len() <= 24 {
            Text(smallvec::SmallVec::from_slice(&bytes), utf8)
        } else {
            Text(smallvec::SmallVec::from_vec(bytes), utf8)
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(smallvec::SmallVec::from_slice(s.as_bytes()), true)
    }
}

impl From<&[u8]> for Text {
    fn from(s: &[u8]) -> Text {
        Text::from_bytes(s)
    }
}

impl From<Vec<u8>> for Text {
    fn from(s: Vec<u8>) -> Text {
        Text::from_vec(s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::from(s.as_str())
    }
}

impl From<Box<str>> for Text {
    fn from(s: Box<str>) -> Text {
        Text::from(String::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= 24 {
            Text(smallvec::SmallVec::from_slice(s.as_bytes()), true)
        } else {
            // Reuses the string's buffer.
            Text(smallvec::SmallVec::from_vec(s.into_bytes()), true)
        }
    }
}

/// An immutable string value; cloning shares it.
#[derive(Clone)]
pub struct NixString(Rc<Inner>);

impl NixString {
    fn make(text: Text, context: Option<Rc<Context>>, symbol: u32) -> NixString {
        let utf8 = text.1;
        NixString(Rc::new(Inner {
            text,
            context,
            symbol: Cell::new(symbol),
            utf8,
            lossy: std::cell::OnceCell::new(),
        }))
    }

    /// A string with no context.
    pub fn new(text: impl Into<Text>) -> NixString {
        NixString::make(text.into(), None, NO_SYMBOL)
    }

    /// The text of an attribute name (knows its symbol already).
    pub fn from_symbol(symbol: Symbol) -> NixString {
        NixString::make(Text::from(symbol.as_bytes()), None, symbol.index())
    }

    /// This text as an interned attribute name.
    pub fn to_symbol(&self) -> Symbol {
        let cached = self.0.symbol.get();
        if cached != NO_SYMBOL {
            return Symbol::from_index(cached);
        }
        let symbol = Symbol::intern_bytes(self.as_bytes());
        self.0.symbol.set(symbol.index());
        symbol
    }

    /// A string with the given context (empty context is stored as none).
    pub fn with_context(text: impl Into<Text>, context: Context) -> NixString {
        let context = if context.is_empty() {
            None
        } else {
            Some(Rc::new(context))
        };
        NixString::make(text.into(), context, NO_SYMBOL)
    }

    /// A string with the same context as `source`.
    pub fn with_context_of(text: impl Into<Text>, source: &NixString) -> NixString {
        NixString::make(text.into(), source.0.context.clone(), NO_SYMBOL)
    }

    /// The bytes of the string: what every string operation works on.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.text.0
    }

    /// Whether the bytes are valid UTF-8.
    pub fn is_utf8(&self) -> bool {
        self.0.utf8
    }

    /// The text as `&str`, for callers that need one (file names, error
    /// messages, numbers). Exact for UTF-8 text; for any other bytes it is
    /// the lossy rendering (U+FFFD for each bad sequence), so operations on
    /// a string's value use [`NixString::as_bytes`] instead.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        if self.0.utf8 {
            // SAFETY: `utf8` is true only when the bytes were made from a
            // Rust string or checked (`Text::from_bytes`), and a `Text` is
            // never mutated.
            unsafe { std::str::from_utf8_unchecked(&self.0.text.0) }
        } else {
            self.0
                .lossy
                .get_or_init(|| String::from_utf8_lossy(&self.0.text.0).into())
        }
    }

    /// The text as `&str` when it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        self.0.utf8.then(|| self.as_str())
    }

    /// The context, if any.
    pub fn context(&self) -> Option<&Context> {
        self.0.context.as_deref()
    }

    pub fn has_context(&self) -> bool {
        self.0.context.is_some()
    }

    /// Add this string's context to `into` (used when a string is built
    /// from pieces).
    pub fn merge_context_into(&self, into: &mut Context) {
        if let Some(ctx) = &self.0.context {
            into.extend(ctx.iter().cloned());
        }
    }

    /// The same text without context (`unsafeDiscardStringContext`).
    pub fn without_context(&self) -> NixString {
        if self.has_context() {
            NixString::new(self.as_bytes())
        } else {
            self.clone()
        }
    }
}

impl fmt::Debug for NixString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))?;
        if let Some(ctx) = self.context() {
            write!(f, " (context {ctx:?})")?;
        }
        Ok(())
    }
}

impl PartialEq for NixString {
    /// Equality compares text only, as in Nix.
    fn eq(&self, other: &NixString) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl From<&str> for NixString {
    fn from(text: &str) -> NixString {
        NixString::new(text)
    }
}

impl From<String> for NixString {
    fn from(text: String) -> NixString {
        NixString::new(text)
    }
}

/// Builds a string from pieces, collecting their contexts.
#[derive(Default)]
pub struct StringBuilder {
    text: Vec<u8>,
    /// Some piece was not UTF-8 (checked again at `finish`: two halves of
    /// a character make a whole one).
    maybe_not_utf8: bool,
    context: Collected,
}

/// The context gathered so far: the one context of the only piece that
/// had one is kept shared, not copied (`"${drv}/bin"` and the like).
#[derive(Default)]
enum Collected {
    #[default]
    None,
    Shared(Rc<Context>),
    Owned(Context),
}

impl Collected {
    fn owned(&mut self) -> &mut Context {
        if !matches!(self, Collected::Owned(_)) {
            let context = match std::mem::take(self) {
                Collected::Shared(shared) => Rc::unwrap_or_clone(shared),
                _ => Context::new(),
            };
            *self = Collected::Owned(context);
        }
        match self {
            Collected::Owned(context) => context,
            _ => unreachable!("made owned above"),
        }
    }
}

impl StringBuilder {
    pub fn new() -> StringBuilder {
        StringBuilder::default()
    }

    pub fn push_str(&mut self, text: &str) {
        self.text.extend_from_slice(text.as_bytes());
    }

    /// Append bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.maybe_not_utf8 |= std::str::from_utf8(bytes).is_err();
        self.text.extend_from_slice(bytes);
    }

    /// Append a string value, keeping its context.
    pub fn push(&mut self, s: &NixString) {
        self.text.extend_from_slice(s.as_bytes());
        self.maybe_not_utf8 |= !s.is_utf8();
        let Some(theirs) = &s.0.context else {
            return;
        };
        match &self.context {
            Collected::None => self.context = Collected::Shared(theirs.clone()),
            Collected::Shared(ours) if Rc::ptr_eq(ours, theirs) => {}
            _ => s.merge_context_into(self.context.owned()),
        }
    }

    pub fn add_context(&mut self, elem: ContextElem) {
        self.context.owned().insert(elem);
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn finish(self) -> NixString {
        let text = if self.maybe_not_utf8 {
            Text::from_vec(self.text)
        } else {
            // Every piece was UTF-8, so the whole is.
            if self.text.len() <= 24 {
                Text(smallvec::SmallVec::from_slice(&self.text), true)
            } else {
                Text(smallvec::SmallVec::from_vec(self.text), true)
            }
        };
        match self.context {
            Collected::None => NixString::new(text),
            Collected::Shared(shared) => NixString::make(text, Some(shared), NO_SYMBOL),
            Collected::Owned(context) => NixString::with_context(text, context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> ContextElem {
        ContextElem::Path(p.to_owned())
    }

    #[test]
    fn context_is_a_sorted_set() {
        let mut context = Context::new();
        assert!(context.insert(path("/s/b")));
        assert!(context.insert(path("/s/a")));
        assert!(!context.insert(path("/s/b")));
        context.extend([path("/s/c"), path("/s/a")]);
        let order: Vec<&ContextElem> = context.iter().collect();
        assert_eq!(order, [&path("/s/a"), &path("/s/b"), &path("/s/c")]);
        assert_eq!(
            Context::from([path("/s/c"), path("/s/a"), path("/s/c")]).len(),
            2
        );
        assert!(context.contains(&path("/s/c")) && !context.contains(&path("/s/d")));
    }

    #[test]
    fn a_large_context_stays_a_sorted_set() {
        // In an order unlike the sorted one, with repeats, past the size
        // where the representation changes.
        let names: Vec<String> = (0..200).map(|i| format!("/s/{}", (i * 37) % 101)).collect();
        let mut context = Context::new();
        for name in &names {
            context.insert(path(name));
        }
        let mut expected: Vec<ContextElem> = names.iter().map(|n| path(n)).collect();
        expected.sort();
        expected.dedup();
        assert_eq!(expected.len(), 101);
        assert_eq!(context.len(), 101);
        assert!(context.iter().eq(expected.iter()));
        assert!(context.contains(&path("/s/100")));
        assert_eq!(names.iter().map(|n| path(n)).collect::<Context>(), context);
        assert!(context.clone().into_iter().eq(expected.into_iter()));
    }

    #[test]
    fn builder_shares_one_context_and_merges_several() {
        let drv = NixString::with_context("/s/x", Context::from([path("/s/x")]));
        let mut one = StringBuilder::new();
        one.push_str("at ");
        one.push(&drv);
        one.push(&drv);
        let one = one.finish();
        assert_eq!(one.as_str(), "at /s/x/s/x");
        // The same allocation, not a copy.
        assert!(Rc::ptr_eq(
            one.0.context.as_ref().unwrap(),
            drv.0.context.as_ref().unwrap()
        ));

        let other = NixString::with_context("/s/y", Context::from([path("/s/y")]));
        let mut two = StringBuilder::new();
        two.push(&drv);
        two.push(&other);
        two.add_context(path("/s/a"));
        let two = two.finish();
        let elems: Vec<&ContextElem> = two.context().unwrap().iter().collect();
        assert_eq!(elems, [&path("/s/a"), &path("/s/x"), &path("/s/y")]);
        // The shared context of `drv` was not changed by the merge.
        assert_eq!(drv.context().unwrap().len(), 1);

        let plain = StringBuilder::new().finish();
        assert!(!plain.has_context());
    }
}
