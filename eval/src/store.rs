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
use std::path::Path;

use sha2::{Digest, Sha256};

/// Errors from the store side, as text: the evaluator reports them as
/// I/O errors at the expression that needed the store.
pub type StoreResult<T> = Result<T, String>;

pub trait EvalStore {
    /// The logical store directory, e.g. `/kiln/store`.
    fn store_dir(&self) -> &str;

    /// Copy a file or directory tree into the store as a source path
    /// (NAR-hashed, recursive) named `name`; return its store path.
    fn add_source(&self, name: &str, path: &Path) -> StoreResult<String>;

    /// Add a text file (`builtins.toFile`, `.drv` files) that refers to
    /// `references`; return its store path.
    fn add_text(
        &self,
        name: &str,
        text: &str,
        references: &BTreeSet<String>,
    ) -> StoreResult<String>;

    /// Whether `path` is a valid store path in this store.
    fn is_valid(&self, path: &str) -> bool;
}

/// A store held in memory, for tests and for evaluation without a root.
/// Paths are derived from a SHA-256 of the content and name, so they are
/// stable, but they are not the paths Nix would compute.
pub struct MemoryStore {
    store_dir: String,
    contents: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    pub fn new(store_dir: impl Into<String>) -> MemoryStore {
        MemoryStore {
            store_dir: store_dir.into(),
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
        const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
        let hash: String = digest
            .iter()
            .take(32)
            .map(|b| ALPHABET[(*b as usize) % 32] as char)
            .collect();
        format!("{}/{}-{}", self.store_dir, hash, name)
    }

    /// The bytes stored at `path` (a file source or a text).
    pub fn contents(&self, path: &str) -> Option<Vec<u8>> {
        self.contents.borrow().get(path).cloned()
    }
}

impl EvalStore for MemoryStore {
    fn store_dir(&self) -> &str {
        &self.store_dir
    }

    fn add_source(&self, name: &str, path: &Path) -> StoreResult<String> {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("getting status of '{}': {e}", path.display()))?;
        let content = if meta.is_file() {
            std::fs::read(path).map_err(|e| format!("reading '{}': {e}", path.display()))?
        } else {
            // Directories: hash the listing; good enough for a memory store.
            let mut names: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| format!("reading '{}': {e}", path.display()))?
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
        text: &str,
        references: &BTreeSet<String>,
    ) -> StoreResult<String> {
        let mut key = text.as_bytes().to_vec();
        for r in references {
            key.push(0);
            key.extend_from_slice(r.as_bytes());
        }
        let store_path = self.path_for("text", name, &key);
        self.contents
            .borrow_mut()
            .insert(store_path.clone(), text.as_bytes().to_vec());
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
        let a = store.add_text("hello", "hi", &refs).unwrap();
        let b = store.add_text("hello", "hi", &refs).unwrap();
        let c = store.add_text("hello", "ho", &refs).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("/kiln/store/") && a.ends_with("-hello"));
        assert_eq!(a.len(), "/kiln/store/".len() + 32 + "-hello".len());
        assert!(store.is_valid(&a));
        assert_eq!(store.contents(&a).unwrap(), b"hi");
    }
}
