//! Creating the next build's temp dir off the critical path.
//!
//! A build's temp dir is `<temp>/store` (the scratch store),
//! `<temp>/build` (`/build`) and `<temp>/overlay-work` (the sandbox view's
//! overlay), plus the temp dir's liveness lock file: five file-system creations, which cost milliseconds on a busy disk. In a chain
//! of builds that time would be paid between every two builds; a background
//! thread prepares the next temp dir while the current build runs instead.
//! At most one prepared dir waits at a time. If preparing fails, the build
//! creates its temp dir itself and reports the error as before.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, sync_channel};

use kiln_store::store::Store;
use kiln_store::store::temp::TempDir;

use crate::error::BuildError;

/// A temp dir of a build with its two subdirectories created.
pub struct BuildDirs {
    pub temp: TempDir,
    pub scratch_store: PathBuf,
    pub build_dir: PathBuf,
}

impl BuildDirs {
    /// Create a temp dir with `store` and `build` in it.
    pub fn create(store: &Store) -> Result<BuildDirs, BuildError> {
        let temp = store
            .temp_dir()
            .map_err(|e| BuildError::store("creating a build directory", e))?;
        let scratch_store = temp.path().join("store");
        let build_dir = temp.path().join("build");
        // The overlay work dir of the sandbox view (see `sandbox::view`).
        let overlay_work = temp.path().join("overlay-work");
        for dir in [&scratch_store, &build_dir, &overlay_work] {
            std::fs::create_dir(dir).map_err(|e| BuildError::io(dir, e))?;
        }
        Ok(BuildDirs {
            temp,
            scratch_store,
            build_dir,
        })
    }
}

/// Hands out build dirs, prepared ahead by a thread of `scope`.
pub struct Prepared {
    ready: Mutex<Option<Receiver<BuildDirs>>>,
}

impl Prepared {
    /// Start preparing in `scope`; the thread ends when the `Prepared` is
    /// dropped (removing the dir it holds) or when creating one fails.
    pub fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &'env Store,
    ) -> Prepared {
        // Capacity 0: the next dir is created while the current build runs,
        // and handed over when a build asks for it.
        let (tx, rx) = sync_channel::<BuildDirs>(0);
        let spawned = std::thread::Builder::new()
            .name("kiln-prepare".into())
            .spawn_scoped(scope, move || {
                while let Ok(dirs) = BuildDirs::create(store) {
                    if tx.send(dirs).is_err() {
                        break;
                    }
                }
            });
        Prepared {
            ready: Mutex::new(spawned.is_ok().then_some(rx)),
        }
    }

    /// A prepared build dir, or a new one if none can be prepared.
    pub fn take(&self, store: &Store) -> Result<BuildDirs, BuildError> {
        let mut guard = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = guard.as_ref() {
            match rx.recv() {
                Ok(dirs) => return Ok(dirs),
                // The thread stopped (creating failed): stop asking it.
                Err(_) => *guard = None,
            }
        }
        drop(guard);
        BuildDirs::create(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::StoreDir;
    use kiln_store::store::StoreConfig;

    #[test]
    fn hands_out_fresh_dirs_and_removes_the_spare() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            root: root.path().to_path_buf(),
            store_dir: StoreDir::new("/kiln/store").unwrap(),
        })
        .unwrap();
        let (first, second) = std::thread::scope(|scope| {
            let prepared = Prepared::start(scope, &store);
            let a = prepared.take(&store).unwrap();
            let b = prepared.take(&store).unwrap();
            (a, b)
        });
        assert_ne!(first.temp.path(), second.temp.path());
        for dirs in [&first, &second] {
            assert!(dirs.scratch_store.is_dir());
            assert!(dirs.build_dir.is_dir());
            assert!(dirs.scratch_store.starts_with(dirs.temp.path()));
        }
        // The spare prepared after the second was removed when the pool
        // ended: only the two handed out remain.
        let temps = std::fs::read_dir(store.physical_store_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            })
            .count();
        assert_eq!(temps, 2);
    }
}
