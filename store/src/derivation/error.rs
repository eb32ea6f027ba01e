//! Errors of the derivation format, grouped by where they arise: ATerm
//! syntax, content (shared by the ATerm and JSON readers), JSON shape, and
//! the path computations.

use std::fmt;

use thiserror::Error;

use crate::error::{HashError, StorePathError};

/// Where a content error was found: a byte offset in an ATerm file, or a
/// field of a JSON document or of an in-memory [`super::Derivation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Byte(usize),
    Field(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Byte(pos) => write!(f, "at byte {pos}"),
            Location::Field(field) => write!(f, "in {field}"),
        }
    }
}

/// Why a set of outputs does not form one of Nix's derivation kinds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OutputsProblem {
    #[error("a derivation must have at least one output")]
    NoOutputs,
    #[error("outputs mix input-addressed, fixed, floating and deferred kinds")]
    MixedKinds,
    #[error("a fixed-output derivation must have exactly one output")]
    SeveralFixed,
    #[error("the fixed output must be named \"out\", not {0:?}")]
    FixedNotOut(String),
    #[error("all floating content-addressed outputs must use the same hash algorithm")]
    FloatingAlgosDiffer,
}

/// Everything that can be wrong with a derivation or with computing its paths.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DerivationError {
    // ATerm syntax.
    #[error("derivation syntax error at byte {pos}: expected {expected}")]
    Expected { pos: usize, expected: &'static str },
    #[error("derivation ends early at byte {pos}: expected {expected}")]
    UnexpectedEnd { pos: usize, expected: &'static str },
    #[error("unterminated string starting at byte {pos} of the derivation")]
    UnterminatedString { pos: usize },
    #[error(
        "invalid escape '\\{}' at byte {pos} of the derivation (only \\\" \\\\ \\n \\r \\t exist)",
        char::from(*byte).escape_default()
    )]
    BadEscape { pos: usize, byte: u8 },
    #[error("unexpected data after the end of the derivation at byte {pos}")]
    TrailingData { pos: usize },

    // Content.
    #[error("string {at} is not valid UTF-8")]
    NotUtf8 { at: Location },
    #[error(
        "{what} {at} contains an escape or a quote or backslash, which Nix writes unescaped in this field"
    )]
    UnquotedFieldEscape { at: Location, what: &'static str },
    #[error("raw control byte {byte:#04x} {at}: Nix writes it escaped in this field")]
    UnescapedControl { at: Location, byte: u8 },
    #[error("bad store path {path:?} {at}: {source}")]
    BadPath {
        at: Location,
        path: String,
        source: StorePathError,
    },
    #[error("bad output name {name:?} {at}: {source}")]
    BadOutputName {
        at: Location,
        name: String,
        source: StorePathError,
    },
    #[error("{what} {value:?} {at} is not after {previous:?}: Nix writes these sorted")]
    Unsorted {
        at: Location,
        what: &'static str,
        value: String,
        previous: String,
    },
    #[error("duplicate {what} {value:?} {at}")]
    Duplicate {
        at: Location,
        what: &'static str,
        value: String,
    },
    #[error(
        "unknown output hash algorithm {value:?} {at} (expected [r:]md5, [r:]sha1, [r:]sha256 or [r:]sha512)"
    )]
    BadHashAlgo { at: Location, value: String },
    #[error("bad output hash {value:?} {at}: {source}")]
    BadHash {
        at: Location,
        value: String,
        source: HashError,
    },
    #[error("output hash {value:?} {at} is not in lower-case base16, the form Nix writes")]
    HashNotBase16 { at: Location, value: String },
    #[error("output {name:?} {at}: {reason}")]
    BadOutput {
        at: Location,
        name: String,
        reason: &'static str,
    },
    #[error("input derivation {drv:?} {at} lists none of its outputs")]
    NoInputOutputs { at: Location, drv: String },
    #[error("fixed output {name:?} {at} has path {found:?}, but its hash gives {expected:?}")]
    FixedOutputPathMismatch {
        at: Location,
        name: String,
        found: String,
        expected: String,
    },
    #[error("bad outputs {at}: {problem}")]
    BadOutputs {
        at: Location,
        problem: OutputsProblem,
    },

    // JSON shape.
    #[error("invalid derivation JSON: {0}")]
    JsonSyntax(String),
    #[error("derivation JSON {at}: expected {expected}")]
    JsonShape {
        at: Location,
        expected: &'static str,
    },

    // Path computation.
    #[error("input derivation {drv:?} has no output {output:?}")]
    MissingInputOutput { drv: String, output: String },
    // Trust: what a `.drv` says must be what its contents give.
    #[error(
        "derivation '{drv}' has incorrect output '{found}', should be '{expected}' (output {output:?})"
    )]
    IncorrectOutput {
        drv: String,
        output: String,
        found: String,
        expected: String,
    },
    #[error(
        "derivation '{drv}' has incorrect environment variable '{variable}', should be '{expected}'"
    )]
    IncorrectEnvironment {
        drv: String,
        variable: String,
        expected: String,
    },
    #[error("cannot compute a path of derivation {drv_name:?}: {source}")]
    Path {
        drv_name: String,
        source: StorePathError,
    },
}
