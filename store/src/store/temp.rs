//! Temporary directories inside the physical store directory.
//!
//! New store paths are assembled in `STORE/.tmp-kiln-<pid>-<seq>-<nanos>/`
//! and renamed into place, which is atomic only within one file system,
//! hence inside the store directory. Every name is unique, so a directory
//! left behind by a killed process never collides with a retry.
//!
//! Each temp dir has a lock file `STATE/temp/<name>.lock`, taken *before*
//! the directory is created and released after it is gone. A temp dir whose
//! lock can be taken therefore belongs to a dead process, and
//! [`remove_stale`] deletes it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::delete::remove_tree;
use crate::store::StoreError;
use crate::store::lock::PathLock;

/// Names of temp dirs start with this; no store path does (a store path's
/// base name starts with its nixbase32 hash).
pub const TEMP_PREFIX: &str = ".tmp-kiln-";

/// A temp dir that is ours until dropped; dropping removes it.
pub struct TempDir {
    path: PathBuf,
    lock: Option<PathLock>,
}

impl TempDir {
    /// Create a fresh temp dir in `store_dir`, its lock in `lock_dir`.
    pub fn create(store_dir: &Path, lock_dir: &Path) -> Result<TempDir, StoreError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "{TEMP_PREFIX}{}-{}-{nanos:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        fs::create_dir_all(lock_dir).map_err(StoreError::io("creating", lock_dir))?;
        let lock_path = lock_dir.join(format!("{name}.lock"));
        let lock = PathLock::acquire(&lock_path).map_err(StoreError::io("locking", &lock_path))?;
        let path = store_dir.join(&name);
        fs::create_dir(&path).map_err(StoreError::io("creating temporary directory", &path))?;
        // Private: while a build runs, its files may carry any mode.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(StoreError::io("making private", &path))?;
        Ok(TempDir {
            path,
            lock: Some(lock),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a failure leaves a dir that `remove_stale` deletes later.
        if remove_tree(&self.path).is_ok()
            && let Some(lock) = self.lock.take()
        {
            let lock_file = lock.path().to_path_buf();
            drop(lock);
            let _ = fs::remove_file(lock_file);
        }
    }
}

/// Delete the temp dirs in `store_dir` whose owners are gone, and their
/// lock files. Returns how many were removed.
pub fn remove_stale(store_dir: &Path, lock_dir: &Path) -> Result<usize, StoreError> {
    let entries = match fs::read_dir(store_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(StoreError::io("reading", store_dir)(err)),
    };
    fs::create_dir_all(lock_dir).map_err(StoreError::io("creating", lock_dir))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(StoreError::io("reading", store_dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let lock_path = lock_dir.join(format!("{name}.lock"));
        let Some(lock) =
            PathLock::try_acquire(&lock_path).map_err(StoreError::io("locking", &lock_path))?
        else {
            continue; // a live process is still assembling it
        };
        // One tree that cannot be removed never stops the sweep.
        if let Err(e) = remove_tree(&entry.path()) {
            tracing::warn!("cannot remove the stale temporary directory: {e}");
            continue;
        }
        drop(lock);
        let _ = fs::remove_file(&lock_path);
        removed += 1;
    }
    Ok(removed)
}
