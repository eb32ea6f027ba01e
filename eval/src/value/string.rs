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
pub type Context = BTreeSet<ContextElem>;

#[derive(Debug)]
struct Inner {
    // A `String`, not `Box<str>`: converting would reallocate to shrink.
    text: Text,
    context: Option<Box<Context>>,
    /// The interned symbol of this text once it was used as an attribute
    /// name (`NO_SYMBOL` until then): `s.${name}` over names from
    /// `attrNames` then never hashes the text again.
    symbol: Cell<u32>,
}

const NO_SYMBOL: u32 = u32::MAX;

/// UTF-8 bytes; up to 24 of them are kept inline, so the many short
/// strings a program makes (names, numbers, versions) cost one allocation
/// (the `Rc`) instead of two.
#[derive(Debug)]
pub struct Text(smallvec::SmallVec<[u8; 24]>);

impl Text {
    fn as_str(&self) -> &str {
        // SAFETY: a `Text` is only ever built from a `String` or `&str`
        // (see the `From` impls below) and never mutated, so its bytes are
        // valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(smallvec::SmallVec::from_slice(s.as_bytes()))
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
            Text(smallvec::SmallVec::from_slice(s.as_bytes()))
        } else {
            // Reuses the string's buffer.
            Text(smallvec::SmallVec::from_vec(s.into_bytes()))
        }
    }
}

/// An immutable string value; cloning shares it.
#[derive(Clone)]
pub struct NixString(Rc<Inner>);

impl NixString {
    /// A string with no context.
    pub fn new(text: impl Into<Text>) -> NixString {
        NixString(Rc::new(Inner {
            text: text.into(),
            context: None,
            symbol: Cell::new(NO_SYMBOL),
        }))
    }

    /// The text of an attribute name (knows its symbol already).
    pub fn from_symbol(symbol: Symbol) -> NixString {
        NixString(Rc::new(Inner {
            text: Text(smallvec::SmallVec::from_slice(symbol.as_str().as_bytes())),
            context: None,
            symbol: Cell::new(symbol.index()),
        }))
    }

    /// This text as an interned attribute name.
    pub fn to_symbol(&self) -> Symbol {
        let cached = self.0.symbol.get();
        if cached != NO_SYMBOL {
            return Symbol::from_index(cached);
        }
        let symbol = Symbol::intern(self.0.text.as_str());
        self.0.symbol.set(symbol.index());
        symbol
    }

    /// A string with the given context (empty context is stored as none).
    pub fn with_context(text: impl Into<Text>, context: Context) -> NixString {
        let context = if context.is_empty() {
            None
        } else {
            Some(Box::new(context))
        };
        NixString(Rc::new(Inner {
            text: text.into(),
            context,
            symbol: Cell::new(NO_SYMBOL),
        }))
    }

    pub fn as_str(&self) -> &str {
        self.0.text.as_str()
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
            NixString::new(self.as_str())
        } else {
            self.clone()
        }
    }
}

impl fmt::Debug for NixString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if let Some(ctx) = self.context() {
            write!(f, " (context {ctx:?})")?;
        }
        Ok(())
    }
}

impl PartialEq for NixString {
    /// Equality compares text only, as in Nix.
    fn eq(&self, other: &NixString) -> bool {
        self.as_str() == other.as_str()
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
    text: String,
    context: Context,
}

impl StringBuilder {
    pub fn new() -> StringBuilder {
        StringBuilder::default()
    }

    pub fn push_str(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Append a string value, keeping its context.
    pub fn push(&mut self, s: &NixString) {
        self.text.push_str(s.as_str());
        s.merge_context_into(&mut self.context);
    }

    pub fn add_context(&mut self, elem: ContextElem) {
        self.context.insert(elem);
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn finish(self) -> NixString {
        NixString::with_context(self.text, self.context)
    }
}
