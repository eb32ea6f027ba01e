//! The evaluator's window on the store.
//!
//! Evaluation needs a store for a few things only: copying sources named in
//! strings (`"${./src}"`), writing text files (`toFile`) and derivations,
//! and asking whether a path is valid. [`EvalStore`] is that surface; the
//! CLI gives an implementation backed by `kiln_store::Store`, tests use
//! [`MemoryStore`], and `--dry` evaluation can use a store that only
//! computes paths. Paths are strings in the logical store directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What the store side of an evaluation can fail with. The evaluator
/// reports it at the expression that needed the store
/// ([`crate::ErrorKind::Store`]); the CLI tells the store's own failures
/// (exit 1) from bad input (exit 2) by [`StoreError::store_failed`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store itself (its database, its files, an install).
    #[error("{0}")]
    Store(#[source] kiln_store::store::StoreError),
    /// Reading or copying what is to be added.
    #[error("{what} '{}': {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Serialising a tree to hash it.
    #[error("{0}")]
    Nar(#[source] kiln_store::NarError),
    /// A string that is not a path of this store, or a name no store path
    /// can have.
    #[error("{0}")]
    BadPath(#[source] kiln_store::StorePathError),
    /// A derivation that cannot be read, parsed or hashed.
    #[error("{0}")]
    Derivation(#[source] kiln_store::DerivationError),
    /// A flat (non-recursive) add of something that is not a regular file.
    #[error("'{}' is not a regular file (needed for a flat, non-recursive path)", .0.display())]
    NotRegularFile(PathBuf),
    /// Neither a file, a directory nor a symlink.
    #[error("'{}' has an unsupported file type", .0.display())]
    UnsupportedFileType(PathBuf),
    /// `builtins.path { sha256 = …; }` and the contents disagree.
    #[error(
        "store path mismatch in (possibly filtered) path added from '{}': expected {expected}, got {got}",
        from.display()
    )]
    HashMismatch {
        from: PathBuf,
        expected: String,
        got: String,
    },
    /// What this kind of store cannot do (a memory store, a dry run).
    #[error("{0}")]
    Unsupported(String),
    /// The thread that asks the store which paths are valid died.
    #[error("the store validity worker panicked")]
    WorkerPanicked,
}

impl StoreError {
    /// Whether the store failed (rather than the input being bad): the
    /// database, an install, the disk.
    pub fn store_failed(&self) -> bool {
        match self {
            StoreError::Store(e) => !e.is_bad_input(),
            StoreError::WorkerPanicked => true,
            _ => false,
        }
    }

    /// An I/O error on `path` while doing `what` ("reading", …).
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<kiln_store::store::StoreError> for StoreError {
    fn from(e: kiln_store::store::StoreError) -> StoreError {
        StoreError::Store(e)
    }
}

impl From<kiln_store::NarError> for StoreError {
    fn from(e: kiln_store::NarError) -> StoreError {
        StoreError::Nar(e)
    }
}

impl From<kiln_store::StorePathError> for StoreError {
    fn from(e: kiln_store::StorePathError) -> StoreError {
        StoreError::BadPath(e)
    }
}

impl From<kiln_store::DerivationError> for StoreError {
    fn from(e: kiln_store::DerivationError) -> StoreError {
        StoreError::Derivation(e)
    }
}

/// The result of an [`EvalStore`] operation.
pub type StoreResult<T> = Result<T, StoreError>;

pub trait EvalStore {
    /// The logical store directory, e.g. `/kiln/store`.
    fn dir(&self) -> &kiln_store::StoreDir;

    /// [`EvalStore::dir`] as text.
    fn store_dir(&self) -> &str {
        self.dir().as_str()
    }

    /// Copy a file or directory tree into the store as a source path
    /// (NAR-hashed, recursive) named `name`; return its store path.
    fn add_source(&self, name: &str, path: &Path) -> StoreResult<String>;

    /// Add a text file (`builtins.toFile`, `.drv` files) that refers to
    /// `references`; return its store path.
    fn add_text(
        &self,
        name: &str,
        text: &[u8],
        references: &BTreeSet<String>,
    ) -> StoreResult<String>;

    /// Whether `path` is a valid store path in this store.
    fn is_valid(&self, path: &str) -> bool;

    // ----- derivations (issue 4; see `crate::kiln_store`) -----------------

    /// Add a file or tree as `builtins.path` does: recursive (NAR) or flat
    /// (a regular file's bytes), skipping the entries `request.excluded`
    /// names, and checking `request.expected_sha256` if given.
    fn add_path(&self, request: &PathRequest<'_>) -> StoreResult<String> {
        if request.recursive && request.excluded.is_none() && request.expected_sha256.is_none() {
            return self.add_source(request.name, request.path);
        }
        Err(StoreError::Unsupported(
            "this store cannot add filtered, flat or hash-checked paths".to_owned(),
        ))
    }

    /// Write a `.drv` (named `{name}.drv`) whose output paths are filled
    /// in, given its bytes and unmasked hash modulo
    /// ([`kiln_store::Derivation::instantiate`] computes both); return its
    /// path. Stores that compute Nix's paths remember the hash for
    /// [`EvalStore::derivation_hash`].
    fn add_derivation(
        &self,
        drv: &kiln_store::Derivation,
        name: &str,
        aterm: Vec<u8>,
        _hash: kiln_store::derivation::DrvHash,
    ) -> StoreResult<String> {
        let refs = drv
            .references()
            .iter()
            .map(|p| self.dir().display(p))
            .collect();
        self.add_text(&format!("{name}.drv"), &aterm, &refs)
    }

    /// The unmasked hash modulo of a derivation written (or readable)
    /// here, one entry per output. Shared: instantiation asks for the
    /// same input many times.
    fn derivation_hash(
        &self,
        drv_path: &kiln_store::StorePath,
    ) -> StoreResult<std::rc::Rc<kiln_store::derivation::DrvHash>> {
        Err(StoreError::Unsupported(format!(
            "this store cannot read the derivation '{}'",
            drv_path.base_name()
        )))
    }

    /// The references of a store path (for `=drv` contexts, which bring
    /// in a derivation's whole closure).
    fn references(&self, path: &str) -> StoreResult<BTreeSet<String>> {
        Err(StoreError::Unsupported(format!(
            "this store cannot query references of '{path}'"
        )))
    }

    /// Record the `meta` of a derivation (JSON) for SBOMs.
    fn set_derivation_meta(&self, _drv_path: &str, _json: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Make everything written so far durable and valid (stores may batch
    /// their writes until this is called).
    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// What `builtins.path` / `filterSource` / `"${./p}"` ask of the store.
pub struct PathRequest<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    /// NAR (true) or the flat bytes of a regular file (false).
    pub recursive: bool,
    /// Entries (relative to `path`) left out by a filter; a left-out
    /// directory drops everything under it.
    pub excluded: Option<&'a BTreeSet<std::path::PathBuf>>,
    /// The content hash the result must have (`sha256` argument).
    pub expected_sha256: Option<&'a kiln_store::Hash>,
}

/// A store held in memory, for tests and for evaluation without a root.
/// Paths are derived from a SHA-256 of the content and name, so they are
/// stable, but they are not the paths Nix would compute.
pub struct MemoryStore {
    store_dir: kiln_store::StoreDir,
    contents: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    /// A store under `store_dir`, which must be a valid store directory
    /// (callers pass a constant).
    pub fn new(store_dir: &str) -> MemoryStore {
        MemoryStore {
            store_dir: kiln_store::StoreDir::new(store_dir).expect("a valid store directory"),
            contents: RefCell::new(BTreeMap::new()),
        }
    }

    fn path_for(&self, kind: &str, name: &str, content: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(content);
        let digest = hasher.finalize();
        // 32 characters from the alphabet store hashes use.
        let alphabet = kiln_store::nixbase32::ALPHABET;
        let hash: String = digest
            .iter()
            .take(32)
            .map(|b| alphabet[(*b as usize) % 32] as char)
            .collect();
        format!("{}/{}-{}", self.store_dir.as_str(), hash, name)
    }

    /// The bytes stored at `path` (a file source or a text).
    pub fn contents(&self, path: &str) -> Option<Vec<u8>> {
        self.contents.borrow().get(path).cloned()
    }
}

impl EvalStore for MemoryStore {
    fn dir(&self) -> &kiln_store::StoreDir {
        &self.store_dir
    }

    fn add_source(&self, name: &str, path: &Path) -> StoreResult<String> {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| StoreError::io("getting status of", path, e))?;
        let content = if meta.is_file() {
            std::fs::read(path).map_err(|e| StoreError::io("reading", path, e))?
        } else {
            // Directories: hash the listing; good enough for a memory store.
            let mut names: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| StoreError::io("reading", path, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names.join("\n").into_bytes()
        };
        let store_path = self.path_for("source", name, &content);
        self.contents
            .borrow_mut()
            .insert(store_path.clone(), content);
        Ok(store_path)
    }

    fn add_text(
        &self,
        name: &str,
        text: &[u8],
        references: &BTreeSet<String>,
    ) -> StoreResult<String> {
        let mut key = text.to_vec();
        for r in references {
            key.push(0);
            key.extend_from_slice(r.as_bytes());
        }
        let store_path = self.path_for("text", name, &key);
        self.contents
            .borrow_mut()
            .insert(store_path.clone(), text.to_vec());
        Ok(store_path)
    }

    fn is_valid(&self, path: &str) -> bool {
        self.contents.borrow().contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_paths_are_stable_and_valid() {
        let store = MemoryStore::new("/kiln/store");
        let refs = BTreeSet::new();
        let a = store.add_text("hello", b"hi", &refs).unwrap();
        let b = store.add_text("hello", b"hi", &refs).unwrap();
        let c = store.add_text("hello", b"ho", &refs).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("/kiln/store/") && a.ends_with("-hello"));
        assert_eq!(a.len(), "/kiln/store/".len() + 32 + "-hello".len());
        assert!(store.is_valid(&a));
        assert_eq!(store.contents(&a).unwrap(), b"hi");
    }
}
