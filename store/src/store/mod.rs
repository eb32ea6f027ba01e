//! The store: files under a physical root plus the database that says which
//! of them are valid.
//!
//! # Layout
//!
//! ```text
//! ROOT/                         physical root (`/` for a system install)
//!   <store dir>/                e.g. ROOT/kiln/store: the store paths
//!     <hash>-<name>             read-only, mtime 1
//!     .tmp-kiln-…/              paths being assembled (see `temp`)
//!   kiln/var/kiln/              the state directory
//!     db/db.sqlite              the database (see `crate::db`)
//!     locks/paths.lock          store-path locks (one byte per path)
//!     temp/<tmpname>.lock       liveness locks of temp dirs
//! ```
//!
//! The logical store dir (`/kiln/store`, or `/nix/store` for Nix-identical
//! paths) goes into every hash and path string; the root only says where the
//! files really are.
//!
//! # Invariant
//!
//! A path is valid (has a database row) only if its files are complete,
//! canonical and fsynced: they are assembled in a temp dir, canonicalised,
//! synced, renamed into place, and only then registered in one transaction.
//! That sequence exists once, [`Store::install`] (see [`install`]); every
//! way of making a path valid calls it. A crash at any moment leaves at
//! worst an unregistered directory that the next attempt replaces.

mod add;
mod drv_check;
mod ingest;
pub mod install;
pub mod lock;
mod maint;
mod pipe;
mod query;
pub mod temp;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::canonicalise::CanonicaliseError;
use crate::db::{Database, DbError, PathRow};
use crate::error::{HashError, NarError, StorePathError};
use crate::hash::Hash;
use crate::store_path::{StoreDir, StorePath};

pub use install::{Installed, Locking, NewPath, Staged};
pub use lock::PathLock;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Physical root: the store is at `root` + `store_dir`.
    pub root: PathBuf,
    /// Logical store directory, part of every path and hash.
    pub store_dir: StoreDir,
}

impl StoreConfig {
    /// Physical location of the store directory.
    pub fn physical_store_dir(&self) -> PathBuf {
        self.root
            .join(self.store_dir.as_str().trim_start_matches('/'))
    }

    /// `ROOT/kiln/var/kiln`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("kiln/var/kiln")
    }

    /// `STATE/db/db.sqlite`.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("db/db.sqlite")
    }
}

/// What the database knows about a valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPathInfo {
    pub path: StorePath,
    /// sha256 of the NAR serialisation.
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub deriver: Option<StorePath>,
    pub references: BTreeSet<StorePath>,
    /// Seconds since the Unix epoch.
    pub registration_time: i64,
    /// Content address, e.g. `fixed:r:sha256:<nix32>` or `text:sha256:<nix32>`.
    pub ca: Option<String>,
    pub signatures: Vec<String>,
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Canonicalise(#[from] CanonicaliseError),
    #[error(transparent)]
    Nar(#[from] NarError),
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Reading the source of an add failed: the caller's input is at fault.
    #[error("reading {path}: {source}")]
    Source {
        path: PathBuf,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{0} is not a valid path in this store")]
    NotValid(String),
    #[error("flat hashing needs a regular file, but {0} is not one")]
    FlatNotRegularFile(PathBuf),
    #[error("database entry for {path} is corrupt: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("derivation: {0}")]
    Derivation(String),
    /// `kiln store delete` of a path a root still keeps.
    #[error("cannot delete {path}: it is alive, held by the {root}{}", via(chain))]
    Alive {
        path: String,
        root: String,
        /// From the root's path to `path`.
        chain: Vec<String>,
    },
    #[error("{0} exists and is not a symlink; not replacing it")]
    NotASymlink(PathBuf),
    /// A malformed `.drv`, or one naming paths its contents do not give.
    #[error(transparent)]
    BadDerivation(#[from] crate::derivation::DerivationError),
}

/// ` (via A -> B -> PATH)` when the root names another path than `chain`'s last.
fn via(chain: &[String]) -> String {
    if chain.len() < 2 {
        return String::new();
    }
    format!(" (via {})", chain.join(" -> "))
}

impl StoreError {
    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the caller's input (a source file, a name, a path that is
    /// not valid) is at fault rather than the store or the system.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::Source { .. }
                | StoreError::StorePath(_)
                | StoreError::Hash(_)
                | StoreError::NotValid(_)
                | StoreError::FlatNotRegularFile(_)
                | StoreError::NotASymlink(_)
                | StoreError::Db(DbError::UnknownReference { .. } | DbError::NotValid { .. })
        )
    }
}

/// An open store.
pub struct Store {
    config: StoreConfig,
    physical_store_dir: PathBuf,
    pub(crate) db: Database,
    /// Whether this process already removed stale temp dirs.
    swept_temp: std::sync::atomic::AtomicBool,
    /// The paths this process has recorded as temp GC roots.
    pub(crate) temp_roots: crate::gc::temp_roots::TempRoots,
}

impl Store {
    /// Open the store, creating its directories and database if needed.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let physical_store_dir = config.physical_store_dir();
        fs::create_dir_all(&physical_store_dir).map_err(StoreError::io(
            "creating store directory",
            &physical_store_dir,
        ))?;
        let db = Database::open(&config.db_path())?;
        Ok(Store {
            config,
            physical_store_dir,
            db,
            swept_temp: std::sync::atomic::AtomicBool::new(false),
            temp_roots: Default::default(),
        })
    }

    /// Open the store for reading only: the database is opened read-only
    /// and nothing is created, so a user who cannot write a root-owned
    /// store can still query it. A store that does not exist yet is
    /// opened (and so created) as [`Store::open`] does, and so is one whose
    /// database cannot be read as it is but that this user may write: one
    /// whose creation was interrupted (no schema yet), one of an older
    /// schema, or one an older kiln left without SQLite's `-shm` file.
    /// Writing through the result fails with SQLite's read-only error.
    pub fn open_read_only(config: StoreConfig) -> Result<Store, StoreError> {
        let db_path = config.db_path();
        if !db_path.exists() {
            return Store::open(config);
        }
        let physical_store_dir = config.physical_store_dir();
        let db = match Database::open_read_only(&db_path) {
            Ok(db) => db,
            Err(_) if may_write(&db_path) => return Store::open(config),
            Err(e) => return Err(e.into()),
        };
        Ok(Store {
            config,
            physical_store_dir,
            db,
            swept_temp: std::sync::atomic::AtomicBool::new(false),
            temp_roots: Default::default(),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn store_dir(&self) -> &StoreDir {
        &self.config.store_dir
    }

    pub fn state_dir(&self) -> PathBuf {
        self.config.state_dir()
    }

    /// The physical store directory (`ROOT` + store dir).
    pub fn physical_store_dir(&self) -> &Path {
        &self.physical_store_dir
    }

    /// Where a store path's files really are.
    pub fn real_path(&self, path: &StorePath) -> PathBuf {
        self.physical_store_dir.join(path.base_name())
    }

    /// The full logical path string, e.g. `/kiln/store/<hash>-<name>`.
    pub fn print_path(&self, path: &StorePath) -> String {
        self.config.store_dir.display(path)
    }

    /// Take the lock of one store path, waiting for another process that
    /// holds it (while it adds or builds that path).
    pub fn lock_path(&self, path: &StorePath) -> Result<PathLock, StoreError> {
        let file = self.state_dir().join("locks/paths.lock");
        let mut first = [0u8; 8];
        first.copy_from_slice(&path.digest()[..8]);
        let offset = u64::from_le_bytes(first);
        PathLock::acquire_byte(&file, offset)
            .or_else(|err| {
                if err.kind() != std::io::ErrorKind::NotFound {
                    return Err(err);
                }
                // First lock of a new store: make the directory, then retry.
                fs::create_dir_all(file.parent().expect("locks dir"))?;
                PathLock::acquire_byte(&file, offset)
            })
            .map_err(StoreError::io("locking", &file))
    }

    pub(crate) fn temp_lock_dir(&self) -> PathBuf {
        self.state_dir().join("temp")
    }

    /// A fresh temp dir in the store; stale ones of dead processes are
    /// removed first (once per process).
    pub fn temp_dir(&self) -> Result<temp::TempDir, StoreError> {
        use std::sync::atomic::Ordering;
        if !self.swept_temp.swap(true, Ordering::Relaxed) {
            // Sweeping is housekeeping: a leftover that cannot be removed
            // now (say, a dying sandbox still writes into it) must not fail
            // the operation that asked for a new temp dir.
            match temp::remove_stale(&self.physical_store_dir, &self.temp_lock_dir()) {
                Ok(0) => {}
                Ok(removed) => tracing::info!("removed {removed} stale temporary directories"),
                Err(err) => tracing::warn!("could not remove stale temporary directories: {err}"),
            }
        }
        temp::TempDir::create(&self.physical_store_dir, &self.temp_lock_dir())
    }

    fn to_row(&self, info: &ValidPathInfo) -> PathRow {
        PathRow {
            path: self.print_path(&info.path),
            nar_hash: info.nar_hash.to_typed_nix32(),
            nar_size: info.nar_size,
            deriver: info.deriver.as_ref().map(|d| self.print_path(d)),
            registration_time: info.registration_time,
            ca: info.ca.clone(),
            signatures: info.signatures.clone(),
            references: info.references.iter().map(|r| self.print_path(r)).collect(),
        }
    }

    pub(crate) fn parse_db_path(&self, path: &str) -> Result<StorePath, StoreError> {
        self.config
            .store_dir
            .parse_path(path)
            .map_err(|err| StoreError::Corrupt {
                path: path.to_string(),
                detail: err.to_string(),
            })
    }

    fn info_from_row(&self, row: PathRow) -> Result<ValidPathInfo, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            path: row.path.clone(),
            detail,
        };
        let nar_hash = Hash::parse(&row.nar_hash, None).map_err(|e| corrupt(e.to_string()))?;
        let deriver = match &row.deriver {
            Some(d) => Some(self.parse_db_path(d)?),
            None => None,
        };
        let references = row
            .references
            .iter()
            .map(|r| self.parse_db_path(r))
            .collect::<Result<_, _>>()?;
        Ok(ValidPathInfo {
            path: self.parse_db_path(&row.path)?,
            nar_hash,
            nar_size: row.nar_size,
            deriver,
            references,
            registration_time: row.registration_time,
            ca: row.ca,
            signatures: row.signatures,
        })
    }
}

#[cfg(test)]
impl Store {
    /// Drop a path's row, as if its registration had never committed.
    fn database_forget_for_test(&self, path: &StorePath) {
        self.db
            .forget_for_test(&self.print_path(path))
            .expect("delete row");
    }
}

#[cfg(test)]
mod tests;

/// Whether this process may write the database file and its directory
/// (where SQLite keeps its `-wal` and `-shm` files).
fn may_write(db_path: &Path) -> bool {
    let writable = |p: &Path| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok();
    writable(db_path) && db_path.parent().is_some_and(writable)
}
