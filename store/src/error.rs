//! One error enum per format. Each variant carries the bad value and, where
//! there is one, its position (a character index in a string, a byte offset in
//! a NAR) so a message can point at the fault.

use std::path::PathBuf;

use thiserror::Error;

use crate::hash::HashAlgo;

/// A string that is not valid Nix base32.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Nixbase32Error {
    #[error("invalid nixbase32 character {char:?} at position {pos}")]
    InvalidChar { char: char, pos: usize },
    #[error("nixbase32 string has length {0}, which no byte count encodes to")]
    InvalidLength(usize),
    #[error("nixbase32 string {0:?} has non-zero unused high bits")]
    NonZeroPadding(String),
}

/// A hash string or digest that cannot be parsed or is of the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    #[error("unknown hash algorithm {0:?} (expected md5, sha1, sha256 or sha512)")]
    UnknownAlgo(String),
    #[error("hash {0:?} has no algorithm: write it as ALGO:HASH or in SRI form ALGO-BASE64")]
    MissingAlgo(String),
    #[error("hash {input:?} is {found}, but {expected} was expected")]
    AlgoMismatch {
        input: String,
        expected: HashAlgo,
        found: HashAlgo,
    },
    #[error(
        "hash {input:?} has length {len}, which is not a base16, nixbase32 or base64 {algo} hash"
    )]
    BadLength {
        input: String,
        algo: HashAlgo,
        len: usize,
    },
    #[error("invalid base16 character {char:?} at position {pos} in hash {input:?}")]
    BadBase16 {
        input: String,
        char: char,
        pos: usize,
    },
    #[error("invalid nixbase32 in hash {input:?}: {source}")]
    BadNixbase32 {
        input: String,
        source: Nixbase32Error,
    },
    #[error("invalid base64 in hash {input:?}")]
    BadBase64 { input: String },
    #[error("{algo} digest must be {expected} bytes, got {len}")]
    BadDigestLength {
        algo: HashAlgo,
        expected: usize,
        len: usize,
    },
}

/// A store directory, store path or store path name that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorePathError {
    #[error("invalid store directory {dir:?}: {reason}")]
    BadStoreDir { dir: String, reason: &'static str },
    #[error("path {path:?} is not in the store directory {store_dir:?}")]
    NotInStore { path: String, store_dir: String },
    #[error(
        "store path base name {0:?} is not of the form HASH-NAME (32 hash characters, '-', name)"
    )]
    BadBaseName(String),
    #[error("invalid hash part {hash:?} in store path: {source}")]
    BadHashPart {
        hash: String,
        source: Nixbase32Error,
    },
    #[error("store path name is empty")]
    EmptyName,
    #[error("store path name {name:?} is {len} bytes long, more than the limit of 211")]
    NameTooLong { name: String, len: usize },
    #[error(
        "invalid character {char:?} at position {pos} in store path name {name:?} (allowed: a-z A-Z 0-9 + - . _ ? =)"
    )]
    BadNameChar {
        name: String,
        char: char,
        pos: usize,
    },
    #[error("a fixed-output path {name:?} other than recursive sha256 cannot have references")]
    FixedOutputWithReferences { name: String },
}

/// A NAR that cannot be written, read, or restored.
///
/// `offset` is the byte position in the archive where the fault starts.
#[derive(Debug, Error)]
pub enum NarError {
    #[error("NAR is truncated: the input ends inside the item at byte {offset}")]
    Truncated { offset: u64 },
    #[error("bad NAR token at byte {offset}: expected {expected}, found {found:?}")]
    BadTag {
        offset: u64,
        expected: &'static str,
        found: String,
    },
    #[error("NAR string at byte {offset} claims {len} bytes, more than the limit of {max}")]
    TooLong { offset: u64, len: u64, max: u64 },
    #[error("non-zero padding byte in NAR at byte {offset}")]
    BadPadding { offset: u64 },
    #[error("invalid NAR entry name {name:?} at byte {offset}: {reason}")]
    BadEntryName {
        offset: u64,
        name: String,
        reason: &'static str,
    },
    #[error(
        "invalid symlink target {target:?} at byte {offset}: it must be non-empty and without NUL bytes"
    )]
    BadSymlinkTarget { offset: u64, target: String },
    #[error("NAR entry {name:?} at byte {offset} is not after {previous:?} in bytewise order")]
    UnsortedEntry {
        offset: u64,
        previous: String,
        name: String,
    },
    #[error("NAR directory nesting deeper than {max} levels at byte {offset}")]
    TooDeep { offset: u64, max: usize },
    #[error("NAR restore target {0:?} already exists")]
    TargetExists(PathBuf),
    #[error("{path:?} is a {kind}, which a NAR cannot hold")]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
    #[error("file {path:?} changed size while being archived")]
    FileChanged { path: PathBuf },
    #[error("{path:?}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading NAR at byte {offset}: {source}")]
    Read { offset: u64, source: std::io::Error },
    #[error("writing NAR: {0}")]
    Write(std::io::Error),
}

impl NarError {
    /// An I/O error on a file of the tree being archived or restored.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NarError::Io {
            path: path.into(),
            source,
        }
    }
}
