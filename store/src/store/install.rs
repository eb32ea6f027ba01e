//! The one way into the store: [`Store::install`].
//!
//! Everything that makes a path valid goes through here: `kiln store add`
//! (sources, fixed-output content, text files), a build's outputs, the
//! batched `.drv` and `toFile` writes of an instantiation, and later bundle
//! import, substitution and remote copies. Nothing else in kiln writes a
//! row to the database that says a path is valid.
//!
//! # The sequence
//!
//! For a batch of [`NewPath`]s (each a [`ValidPathInfo`] plus its staged
//! content), in this order:
//!
//! 0. **Temp roots.** Every path of the batch becomes a temp GC root of
//!    this process (`crate::gc::temp_roots`), so a collector never deletes
//!    a path between the validity check below and the caller's use of it.
//! 1. **Lock and skip.** Take each path's lock ([`Locking::Take`]; a build
//!    already holds its outputs' locks and says [`Locking::HeldByCaller`])
//!    and drop the paths that are valid already and have their files:
//!    those are never touched again. A path that is registered but whose
//!    files are gone (deleted by hand) is installed again: its files are
//!    put back and its row updated, which is how a build or an add
//!    repairs it.
//!    Then every `.drv` of the batch is **checked**: its output paths must
//!    follow from its contents (`store/drv_check.rs`); a mismatch fails the
//!    install before anything is written.
//! 2. **Files complete.** In-memory files ([`Staged::File`]) are written in
//!    canonical form (read-only, mtime 1) into one temp dir of the store;
//!    staged trees ([`Staged::Tree`]) are already complete in a temp dir
//!    of this store (the same file system, so the rename below is atomic).
//! 3. **Canonicalised.** Trees not yet canonical go through
//!    [`crate::canonicalise::canonicalise_tree`].
//! 4. **Synced.** Every file and directory is made durable
//!    ([`crate::durable::sync_paths`]: only what kiln wrote).
//! 5. **Moved into place.** An unregistered leftover at the target (what a
//!    crash between steps 5 and 7 leaves) is deleted, then the content is
//!    renamed to its store path.
//! 6. **Store dir synced**, once for the batch.
//! 7. **Registered in one transaction**: every row, its references (valid
//!    already or in the batch), and the outputs each `.drv` declares.
//!
//! A crash before step 7 leaves at worst unregistered files, which the next
//! install of that path replaces and the garbage collector deletes; a
//! crash after it leaves complete, valid paths. `kiln store add`'s e2e test
//! kills it at nine moments and checks exactly this.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::db::DrvOutputRow;
use crate::delete::remove_tree;
use crate::derivation::Derivation;
use crate::durable::{collect_syncable, sync_dir, sync_paths};
use crate::store::lock::PathLock;
use crate::store::{Store, StoreError, ValidPathInfo};
use crate::store_path::StorePath;

/// A path to make valid: what the database will say, and the files.
#[derive(Debug)]
pub struct NewPath {
    pub info: ValidPathInfo,
    pub content: Staged,
}

/// Where a new path's files are before [`Store::install`].
#[derive(Debug)]
pub enum Staged {
    /// A file, directory or symlink inside a temp dir of this store
    /// ([`Store::temp_dir`]; a build's scratch store is one). `canonical`:
    /// it is in canonical form already (a build's outputs are canonicalised
    /// before they are scanned and hashed).
    Tree { path: PathBuf, canonical: bool },
    /// A regular, non-executable file with these bytes (a `.drv`, a
    /// `toFile` result), written by the install itself.
    File(Vec<u8>),
}

/// Who takes the paths' locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// The install takes each path's lock (and waits for a process that
    /// is adding or building the same path).
    Take,
    /// The caller holds every path's lock already (a build holds its
    /// outputs' locks from before it starts).
    HeldByCaller,
}

/// What an install did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// The paths that became valid now (the others were valid already).
    pub new: Vec<StorePath>,
}

impl Store {
    /// Make every path of `batch` valid (see the module docs for the
    /// sequence). Paths valid already are left as they are. Either every
    /// path of the batch is valid afterwards or, on error, none of the new
    /// ones is.
    pub fn install(&self, batch: Vec<NewPath>, locking: Locking) -> Result<Installed, StoreError> {
        if batch.is_empty() {
            return Ok(Installed::default());
        }
        // 0. Temp roots first: a collector running now either sees them or
        //    has finished deciding, so what is found valid below stays.
        self.add_temp_roots(
            &batch
                .iter()
                .map(|p| p.info.path.clone())
                .collect::<Vec<_>>(),
        )?;
        // 1. Lock (in path order, so two batches never wait on each other
        //    crosswise) and skip what is valid.
        let _locks = match locking {
            Locking::Take => self.lock_paths(batch.iter().map(|p| &p.info.path))?,
            Locking::HeldByCaller => Vec::new(),
        };
        let valid = self.present_among(
            &batch
                .iter()
                .map(|p| p.info.path.clone())
                .collect::<Vec<_>>(),
        )?;
        let batch: Vec<NewPath> = batch
            .into_iter()
            .zip(valid)
            .filter_map(|(p, valid)| (!valid).then_some(p))
            .collect();
        if batch.is_empty() {
            return Ok(Installed::default());
        }
        super::drv_check::check_batch(self, &batch)?;

        // 2.–4. Complete, canonical, durable.
        let files_dir = if batch.iter().any(|p| matches!(p.content, Staged::File(_))) {
            Some(self.temp_dir()?)
        } else {
            None
        };
        let mut staged: Vec<PathBuf> = Vec::with_capacity(batch.len());
        let mut to_sync: Vec<PathBuf> = Vec::with_capacity(batch.len() + 1);
        for new in &batch {
            match &new.content {
                Staged::File(bytes) => {
                    let dir = files_dir.as_ref().expect("made above for files");
                    let file = dir.path().join(new.info.path.base_name());
                    write_canonical_file(&file, bytes)?;
                    to_sync.push(file.clone());
                    staged.push(file);
                }
                Staged::Tree { path, canonical } => {
                    if !canonical {
                        crate::canonicalise::canonicalise_tree(path)?;
                    }
                    collect_syncable(path, &mut to_sync)?;
                    staged.push(path.clone());
                }
            }
        }
        sync_paths(&to_sync)?;

        // 5.–6. Into place, then the store directory.
        for (new, from) in batch.iter().zip(&staged) {
            let target = self.real_path(&new.info.path);
            if fs::symlink_metadata(&target).is_ok() {
                // Present paths were dropped above, so this is an
                // unregistered leftover (or what a repair moved aside).
                tracing::info!("replacing unregistered leftover {}", target.display());
                remove_tree(&target)?;
            }
            move_into_place(from, &target)?;
        }
        sync_dir(self.physical_store_dir())?;

        // 7. One transaction.
        let mut rows = Vec::with_capacity(batch.len());
        let mut drv_outputs = Vec::new();
        for new in &batch {
            if new.info.path.name().ends_with(".drv") {
                match &new.content {
                    Staged::File(bytes) => {
                        self.push_output_rows(&new.info.path, bytes, &mut drv_outputs)
                    }
                    Staged::Tree { .. } => {
                        let real = self.real_path(&new.info.path);
                        if let Ok(bytes) = fs::read(&real) {
                            self.push_output_rows(&new.info.path, &bytes, &mut drv_outputs);
                        }
                    }
                }
            }
            rows.push(self.to_row(&new.info));
        }
        self.db.register(&rows, &drv_outputs)?;
        drop(files_dir);
        Ok(Installed {
            new: batch.into_iter().map(|p| p.info.path).collect(),
        })
    }

    /// Which of `paths` are valid, in their order (one read transaction).
    pub fn valid_among(&self, paths: &[StorePath]) -> Result<Vec<bool>, StoreError> {
        let printed: Vec<String> = paths.iter().map(|p| self.print_path(p)).collect();
        Ok(self.db.valid_among(&printed)?)
    }

    /// Which of `paths` are valid *and* have files on disk, in their order
    /// (see [`Store::is_present`]).
    pub fn present_among(&self, paths: &[StorePath]) -> Result<Vec<bool>, StoreError> {
        let valid = self.valid_among(paths)?;
        Ok(paths
            .iter()
            .zip(valid)
            .map(|(path, valid)| valid && self.files_exist(path))
            .collect())
    }

    /// The locks of `paths`, taken in path order.
    fn lock_paths<'a>(
        &self,
        paths: impl Iterator<Item = &'a StorePath>,
    ) -> Result<Vec<PathLock>, StoreError> {
        let sorted: BTreeSet<&StorePath> = paths.collect();
        sorted.into_iter().map(|p| self.lock_path(p)).collect()
    }

    /// The output rows of `drv_path` if `bytes` parse as a derivation (a
    /// file that only happens to be named `.drv` records nothing).
    fn push_output_rows(&self, drv_path: &StorePath, bytes: &[u8], rows: &mut Vec<DrvOutputRow>) {
        if let Ok(drv) = Derivation::parse(self.store_dir(), bytes) {
            rows.extend(self.output_rows(drv_path, &drv));
        }
    }

    pub(crate) fn output_rows(&self, drv_path: &StorePath, drv: &Derivation) -> Vec<DrvOutputRow> {
        drv.outputs
            .iter()
            .filter_map(|(output, out)| {
                out.path().map(|path| DrvOutputRow {
                    drv: self.print_path(drv_path),
                    output: output.clone(),
                    path: self.print_path(path),
                })
            })
            .collect()
    }
}

/// Write a regular file already in canonical form (read-only, mtime 1).
fn write_canonical_file(file: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let io = StoreError::io("writing", file);
    let mut handle = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(file)
        .map_err(io)?;
    let one_second = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
    handle
        .write_all(contents)
        .and_then(|()| handle.set_modified(one_second))
        .map_err(StoreError::io("writing", file))
}

/// Rename a canonical tree to its store path. Moving a directory to a new
/// parent rewrites its `..` entry, which needs write permission on the
/// directory itself; only root has that on a canonical (0555) directory.
/// So a directory is made writable for the rename and made canonical again
/// after it, with that change synced before the path can be registered.
fn move_into_place(content: &Path, target: &Path) -> Result<(), StoreError> {
    let is_dir = fs::symlink_metadata(content)
        .map_err(StoreError::io("reading", content))?
        .is_dir();
    if !is_dir {
        return fs::rename(content, target).map_err(StoreError::io("moving into place", target));
    }
    fs::set_permissions(content, fs::Permissions::from_mode(0o755))
        .map_err(StoreError::io("making writable", content))?;
    fs::rename(content, target).map_err(StoreError::io("moving into place", target))?;
    fs::set_permissions(target, fs::Permissions::from_mode(0o555))
        .map_err(StoreError::io("making read-only", target))?;
    sync_dir(target)?;
    Ok(())
}
