//! [`KilnEvalStore`]: the evaluator's store with Nix's real paths, either
//! writing to a `kiln_store::Store` or only computing (dry run).
//!
//! # What it computes
//!
//! Every path is the one Nix 2.8 computes (see `kiln_store::store_path`):
//! sources are `source` paths of their NAR sha256 (or fixed-output paths
//! for flat / filtered adds), `toFile` results and `.drv` files are `text`
//! paths of their contents and references. For each derivation written it
//! remembers the unmasked hash modulo and the output names, so that
//! dependent derivations never re-read or re-hash their inputs (Nix keeps
//! the same cache, `drvHashes`).
//!
//! # How it writes (the batching)
//!
//! Sources are added through `Store::add_fixed` at once: they are few and
//! may be large. Text files (`.drv`s, `toFile`) are many and tiny, so they
//! are kept in memory until [`EvalStore::flush`]. Which of them are valid
//! already is asked on a second thread while evaluation goes on
//! (`prefetch`); the flush hands the others to `Store::install` as one
//! batch (the store's one way in: written in canonical form, synced,
//! renamed into place, registered in one transaction). The store's
//! invariant holds: a path is registered only after its file is complete
//! and synced; a crash before the transaction leaves unregistered files
//! that the next write replaces.
//! Until the flush the files are not in the store (reading a `toFile`
//! result back during the same evaluation is not supported, as in Nix's
//! read-only mode).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use kiln_store::clock::unix_now;
use kiln_store::derivation::DrvHash;
use kiln_store::hash::{Hash, HashAlgo};
use kiln_store::nar::hash_regular_bytes;
use kiln_store::store::{Locking, NewPath, Staged, Store, ValidPathInfo};
use kiln_store::store_path::{make_fixed_output_path, make_text_path};
use kiln_store::{Derivation, FileIngestionMethod, StoreDir, StorePath};
use rustc_hash::FxHashMap;

use crate::store::{EvalStore, PathRequest, StoreError, StoreResult};

mod prefetch;

use prefetch::ValidityPrefetch;

/// The store used by `kiln instantiate`, `kiln build FILE` and
/// `kiln eval` (dry run).
pub struct KilnEvalStore {
    dir: StoreDir,
    /// `None`: dry run, nothing is written. Shared with the validity
    /// prefetch thread.
    store: Option<Arc<Store>>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// The paths this evaluation produced, with their references (in
    /// order; a slice, as a B-tree node per path would be ~500 bytes).
    references: FxHashMap<StorePath, Box<[StorePath]>>,
    /// Hash modulo of the derivations this evaluation produced or read.
    derivations: FxHashMap<StorePath, Rc<DrvHash>>,
    /// Text files to write and register at the flush (each path once:
    /// it is queued only when it first enters `references`).
    pending: Vec<Pending>,
    /// Asks which `pending` paths are valid, in their order.
    prefetch: Option<ValidityPrefetch>,
    /// `meta` JSON to record once the derivations are registered.
    meta: Vec<(StorePath, String)>,
}

struct Pending {
    path: StorePath,
    contents: Vec<u8>,
    contents_hash: Hash,
}

impl KilnEvalStore {
    /// Compute Nix's paths without writing anything.
    pub fn dry_run(dir: StoreDir) -> KilnEvalStore {
        KilnEvalStore {
            dir,
            store: None,
            state: RefCell::new(State::default()),
        }
    }

    /// Write to `store` (text files batched until [`EvalStore::flush`]).
    pub fn writing(store: Store) -> KilnEvalStore {
        let dir = store.store_dir().clone();
        KilnEvalStore {
            dir,
            store: Some(Arc::new(store)),
            state: RefCell::new(State::default()),
        }
    }

    /// The underlying store (None in a dry run).
    pub fn store(&self) -> Option<&Store> {
        self.store.as_deref()
    }

    fn parse(&self, path: &str) -> StoreResult<StorePath> {
        Ok(self.dir.parse_path(path)?)
    }

    fn parse_all(&self, paths: &BTreeSet<String>) -> StoreResult<BTreeSet<StorePath>> {
        paths.iter().map(|p| self.parse(p)).collect()
    }

    /// Add a text file: compute its path and, when writing, queue it.
    fn add_text_bytes(
        &self,
        name: &str,
        contents: Vec<u8>,
        references: BTreeSet<StorePath>,
    ) -> StoreResult<StorePath> {
        let contents_hash = Hash::digest(HashAlgo::Sha256, &contents);
        let path = make_text_path(&self.dir, name, &contents_hash, &references)?;
        let mut state = self.state.borrow_mut();
        let first_time = state
            .references
            .insert(path.clone(), references.into_iter().collect())
            .is_none();
        if first_time && let Some(store) = &self.store {
            let state = &mut *state;
            if state.prefetch.is_none() {
                state.prefetch = ValidityPrefetch::start(store.clone());
            }
            if let Some(prefetch) = &mut state.prefetch {
                prefetch.ask(path.clone());
            }
            state.pending.push(Pending {
                path: path.clone(),
                contents,
                contents_hash,
            });
        }
        Ok(path)
    }

    /// Add a (possibly filtered) file or tree; returns the path and the
    /// content hash the path was computed from.
    fn add_tree(&self, request: &PathRequest<'_>) -> StoreResult<StorePath> {
        // A filter is applied by copying what it keeps to a scratch
        // directory first; the store then ingests that copy.
        let filtered: Option<(tempfile::TempDir, PathBuf)> = match request.excluded {
            Some(excluded) => {
                let scratch = tempfile::tempdir().map_err(|e| {
                    StoreError::io("creating a scratch dir in", &std::env::temp_dir(), e)
                })?;
                let copy = scratch.path().join("content");
                copy_filtered(request.path, &copy, Path::new(""), excluded)?;
                Some((scratch, copy))
            }
            None => None,
        };
        let source: &Path = filtered
            .as_ref()
            .map(|(_, copy)| copy.as_path())
            .unwrap_or(request.path);
        let method = if request.recursive {
            FileIngestionMethod::Recursive
        } else {
            FileIngestionMethod::Flat
        };
        let path = match &self.store {
            Some(store) => store.add_fixed(source, method, HashAlgo::Sha256, request.name)?,
            None => {
                let hash = content_hash(source, method)?;
                make_fixed_output_path(&self.dir, method, &hash, request.name, &BTreeSet::new())?
            }
        };
        if let Some(expected) = request.expected_sha256 {
            let wanted = make_fixed_output_path(
                &self.dir,
                method,
                expected,
                request.name,
                &BTreeSet::new(),
            )?;
            if wanted != path {
                return Err(StoreError::HashMismatch {
                    from: request.path.to_path_buf(),
                    expected: self.dir.display(&wanted),
                    got: self.dir.display(&path),
                });
            }
        }
        self.state
            .borrow_mut()
            .references
            .insert(path.clone(), Box::default());
        Ok(path)
    }

    /// Read a derivation that this evaluation did not produce.
    fn read_derivation(&self, drv_path: &str) -> StoreResult<Derivation> {
        let path = self.parse(drv_path)?;
        let file = match &self.store {
            Some(store) => store.real_path(&path),
            // A dry run can still read derivations from a store that
            // really is at the logical directory (e.g. /nix/store).
            None => PathBuf::from(drv_path),
        };
        let bytes = fs::read(&file)
            .map_err(|e| StoreError::io("reading derivation", Path::new(drv_path), e))?;
        Ok(Derivation::parse(&self.dir, &bytes)?)
    }
}

impl EvalStore for KilnEvalStore {
    fn dir(&self) -> &StoreDir {
        &self.dir
    }

    fn add_source(&self, name: &str, path: &Path) -> StoreResult<String> {
        self.add_path(&PathRequest {
            name,
            path,
            recursive: true,
            excluded: None,
            expected_sha256: None,
        })
    }

    fn add_path(&self, request: &PathRequest<'_>) -> StoreResult<String> {
        let path = self.add_tree(request)?;
        Ok(self.dir.display(&path))
    }

    fn add_text(
        &self,
        name: &str,
        text: &[u8],
        references: &BTreeSet<String>,
    ) -> StoreResult<String> {
        let refs = self.parse_all(references)?;
        let path = self.add_text_bytes(name, text.to_vec(), refs)?;
        Ok(self.dir.display(&path))
    }

    fn is_valid(&self, path: &str) -> bool {
        let Ok(parsed) = self.parse(path) else {
            return false;
        };
        if self.state.borrow().references.contains_key(&parsed) {
            return true;
        }
        match &self.store {
            Some(store) => store.is_valid(&parsed).unwrap_or(false),
            None => Path::new(path).exists(),
        }
    }

    fn add_derivation(
        &self,
        drv: &Derivation,
        name: &str,
        aterm: Vec<u8>,
        hash: DrvHash,
    ) -> StoreResult<String> {
        let path = self.add_text_bytes(&format!("{name}.drv"), aterm, drv.references())?;
        let printed = self.dir.display(&path);
        self.state
            .borrow_mut()
            .derivations
            .insert(path, Rc::new(hash));
        Ok(printed)
    }

    fn derivation_hash(&self, drv_path: &StorePath) -> StoreResult<Rc<DrvHash>> {
        if let Some(hash) = self.state.borrow().derivations.get(drv_path) {
            return Ok(hash.clone());
        }
        let drv = self.read_derivation(&self.dir.display(drv_path))?;
        let hash = drv.hash_modulo(&self.dir, false, &mut |input: &StorePath| {
            self.derivation_hash(input)
        })?;
        let hash = Rc::new(hash);
        self.state
            .borrow_mut()
            .derivations
            .insert(drv_path.clone(), hash.clone());
        Ok(hash)
    }

    fn references(&self, path: &str) -> StoreResult<BTreeSet<String>> {
        let parsed = self.parse(path)?;
        if let Some(refs) = self.state.borrow().references.get(&parsed) {
            return Ok(refs.iter().map(|r| self.dir.display(r)).collect());
        }
        match &self.store {
            Some(store) => Ok(store
                .references(&parsed)?
                .iter()
                .map(|r| self.dir.display(r))
                .collect()),
            None if parsed.name().ends_with(".drv") => Ok(self
                .read_derivation(path)?
                .references()
                .iter()
                .map(|r| self.dir.display(r))
                .collect()),
            None => Ok(BTreeSet::new()),
        }
    }

    fn set_derivation_meta(&self, drv_path: &str, json: &str) -> StoreResult<()> {
        if self.store.is_some() {
            let path = self.parse(drv_path)?;
            self.state.borrow_mut().meta.push((path, json.to_owned()));
        }
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let (pending, prefetch, meta) = {
            let mut state = self.state.borrow_mut();
            (
                std::mem::take(&mut state.pending),
                state.prefetch.take(),
                std::mem::take(&mut state.meta),
            )
        };
        let prefetched = match prefetch {
            Some(prefetch) => Some(prefetch.finish()?),
            None => None,
        };
        if !pending.is_empty() {
            let references = |path: &StorePath| {
                self.state
                    .borrow()
                    .references
                    .get(path)
                    .map(|refs| refs.iter().cloned().collect())
                    .unwrap_or_default()
            };
            install_batch(store, pending, prefetched, &references)?;
        }
        for (drv, json) in meta {
            store.set_derivation_meta(&drv, &json)?;
        }
        Ok(())
    }
}

/// Install the pending text files that are not valid yet, in one batch
/// through the store's one way in. `valid` says, when known, which pending
/// paths are valid already (the prefetch's answer: a hint, the install
/// checks again under the paths' locks).
fn install_batch(
    store: &Store,
    pending: Vec<Pending>,
    valid: Option<Vec<bool>>,
    references: &dyn Fn(&StorePath) -> BTreeSet<StorePath>,
) -> StoreResult<()> {
    let known_valid = match valid {
        Some(valid) if valid.len() == pending.len() => valid,
        _ => vec![false; pending.len()],
    };
    let now = unix_now();
    let batch: Vec<NewPath> = pending
        .into_iter()
        .zip(known_valid)
        .filter(|(_, valid)| !valid)
        .map(|(p, _)| {
            let (nar_hash, nar_size) = hash_regular_bytes(&p.contents);
            NewPath {
                info: ValidPathInfo {
                    references: references(&p.path),
                    path: p.path,
                    nar_hash,
                    nar_size,
                    deriver: None,
                    registration_time: now,
                    ca: Some(format!("text:{}", p.contents_hash.to_typed_nix32())),
                    signatures: Vec::new(),
                },
                content: Staged::File(p.contents),
            }
        })
        .collect();
    store.install(batch, Locking::Take)?;
    Ok(())
}

/// The hash a path is computed from: NAR sha256 or the flat file's sha256.
fn content_hash(path: &Path, method: FileIngestionMethod) -> StoreResult<Hash> {
    match method {
        FileIngestionMethod::Recursive => Ok(kiln_store::nar::hash_path(path, HashAlgo::Sha256)?.0),
        FileIngestionMethod::Flat => {
            let meta = fs::symlink_metadata(path)
                .map_err(|e| StoreError::io("getting status of", path, e))?;
            if !meta.is_file() {
                return Err(StoreError::NotRegularFile(path.to_path_buf()));
            }
            let bytes = fs::read(path).map_err(|e| StoreError::io("reading", path, e))?;
            Ok(Hash::digest(HashAlgo::Sha256, bytes))
        }
    }
}

/// Copy `src` to `dst` leaving out the `excluded` entries (relative paths).
fn copy_filtered(
    src: &Path,
    dst: &Path,
    rel: &Path,
    excluded: &BTreeSet<PathBuf>,
) -> StoreResult<()> {
    let io = |what: &'static str, p: &Path, e: std::io::Error| StoreError::io(what, p, e);
    let meta = fs::symlink_metadata(src).map_err(|e| io("getting status of", src, e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(|e| io("reading link", src, e))?;
        std::os::unix::fs::symlink(&target, dst).map_err(|e| io("creating link", dst, e))?;
    } else if meta.is_dir() {
        fs::create_dir(dst).map_err(|e| io("creating", dst, e))?;
        for entry in fs::read_dir(src).map_err(|e| io("reading", src, e))? {
            let entry = entry.map_err(|e| io("reading", src, e))?;
            let child_rel = rel.join(entry.file_name());
            if excluded.contains(&child_rel) {
                continue;
            }
            copy_filtered(
                &entry.path(),
                &dst.join(entry.file_name()),
                &child_rel,
                excluded,
            )?;
        }
    } else if meta.is_file() {
        fs::copy(src, dst).map_err(|e| io("copying", src, e))?;
    } else {
        return Err(StoreError::UnsupportedFileType(src.to_path_buf()));
    }
    Ok(())
}

/// Errors while hashing inputs: the store's, or the derivation's own.
#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let root = tempfile::tempdir().expect("temp root");
        let store = Store::open(kiln_store::store::StoreConfig {
            root: root.path().to_path_buf(),
            store_dir: StoreDir::new("/nix/store").expect("dir"),
        })
        .expect("open store");
        (root, store)
    }

    #[test]
    fn text_files_become_valid_only_at_flush_and_replace_crash_leftovers() {
        let (root, store) = temp_store();
        let want = "/nix/store/psfcckwhbzj6xincr5ydak4wakyb3fsh-hello";
        let physical = root.path().join(want.trim_start_matches('/'));
        // What a crash between rename and registration leaves behind.
        fs::write(&physical, "garbage").expect("leftover");
        let eval_store = KilnEvalStore::writing(store);
        let path = eval_store
            .add_text("hello", b"hi", &BTreeSet::new())
            .expect("add");
        assert_eq!(path, want);
        let parsed = StoreDir::new("/nix/store")
            .unwrap()
            .parse_path(want)
            .unwrap();
        let store = eval_store.store().expect("writing store");
        assert!(!store.is_valid(&parsed).unwrap(), "valid before the flush");
        eval_store.flush().expect("flush");
        assert!(store.is_valid(&parsed).unwrap());
        assert_eq!(fs::read(&physical).unwrap(), b"hi");
        let info = store.path_info(&parsed).unwrap().expect("info");
        assert_eq!(info.nar_hash, hash_regular_bytes(b"hi").0);
    }

    #[test]
    fn dry_run_paths_match_nix_for_a_text_file() {
        // `builtins.toFile "hello" "hi"` under /nix/store in Nix 2.8.
        let store = KilnEvalStore::dry_run(StoreDir::new("/nix/store").expect("dir"));
        let path = store
            .add_text("hello", b"hi", &BTreeSet::new())
            .expect("path");
        assert_eq!(path, "/nix/store/psfcckwhbzj6xincr5ydak4wakyb3fsh-hello");
        assert!(store.is_valid(&path));
        assert!(store.references(&path).expect("refs").is_empty());
    }
}
