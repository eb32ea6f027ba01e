//! Making files durable before a path is registered: the one place kiln
//! syncs anything.
//!
//! # The scheme
//!
//! A path is registered only after its files would survive a crash. kiln
//! makes exactly the files it wrote durable, never "everything dirty on the
//! file system": `syncfs` (what kiln used before) also waits for every
//! other process's dirty data, so its cost depended on the machine (a cold
//! instantiation of 2,000 derivations took 0.2 s alone and 1.6 s right
//! after another tree was deleted; see `bench/durability/`).
//!
//! [`sync_paths`] therefore:
//!
//! 1. starts write-back of each file's data without waiting
//!    (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so the disk works on all
//!    of them at once instead of one file per `fsync`;
//! 2. `fsync`s every file and directory, on a small pool of threads: a
//!    journalling file system commits the `fsync`s that wait at the same
//!    moment together (ext4's group commit), so N threads need about N
//!    times fewer journal commits than one thread would.
//!
//! The cost is proportional to what kiln wrote. The directory that a new
//! entry is renamed into is synced with [`sync_dir`] after the rename.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::store::StoreError;

/// Threads that `fsync` at once (most of their time is spent waiting for
/// the disk, not on a CPU).
const SYNC_THREADS: usize = 16;

/// Below this many files, a single thread syncs them (a thread costs more
/// than it saves).
const FILES_PER_THREAD: usize = 8;

/// Make every file and directory in `paths` durable (contents and
/// metadata). Symlinks must not be given: they live in their directory,
/// which is synced.
pub fn sync_paths(paths: &[PathBuf]) -> Result<(), StoreError> {
    if paths.is_empty() {
        return Ok(());
    }
    // Step 1: start the data write-back of every file at once.
    for path in paths {
        if let Ok(file) = fs::File::open(path) {
            start_write_back(&file);
        }
    }
    // Step 2: fsync them all, several at a time.
    let threads = paths
        .len()
        .div_ceil(FILES_PER_THREAD)
        .clamp(1, SYNC_THREADS);
    let next = AtomicUsize::new(0);
    let work = || -> Result<(), StoreError> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else {
                return Ok(());
            };
            fsync_path(path)?;
        }
    };
    if threads == 1 {
        return work();
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut result = work();
        for helper in helpers {
            let joined = helper.join().unwrap_or_else(|_| {
                Err(StoreError::Io {
                    action: "fsyncing",
                    path: PathBuf::new(),
                    source: io::Error::other("a sync thread panicked"),
                })
            });
            if result.is_ok() {
                result = joined;
            }
        }
        result
    })
}

fn fsync_path(path: &Path) -> Result<(), StoreError> {
    fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(StoreError::io("fsyncing", path))
}

/// Ask the kernel to start writing `file`'s dirty pages now, without
/// waiting. Only a hint: a failure changes nothing.
fn start_write_back(file: &fs::File) {
    // SAFETY: a valid open fd; offset 0 and length 0 mean the whole file.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Make every regular file and directory of the tree at `path` durable.
pub fn sync_tree(path: &Path) -> Result<(), StoreError> {
    let mut paths = Vec::new();
    collect_syncable(path, &mut paths)?;
    sync_paths(&paths)
}

/// The regular files and directories of a tree (not its symlinks), each
/// directory after its entries.
pub(crate) fn collect_syncable(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let meta = fs::symlink_metadata(path).map_err(StoreError::io("inspecting", path))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(StoreError::io("reading directory", path))? {
            let entry = entry.map_err(StoreError::io("reading directory", path))?;
            collect_syncable(&entry.path(), out)?;
        }
        out.push(path.to_path_buf());
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// fsync one directory (after a rename into it, so the new entry is durable).
pub fn sync_dir(path: &Path) -> Result<(), StoreError> {
    fsync_path(path)
}

/// Start writing back everything dirty on the file system holding `path`
/// and wait for it (`syncfs`). Only for background write-back during a
/// long copy, never for durability (see the module docs).
pub fn write_back_file_system(path: &Path) -> io::Result<()> {
    let handle = fs::File::open(path)?;
    rustix::fs::syncfs(&handle)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_many_files_and_reports_a_missing_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..100 {
            let file = tmp.path().join(format!("f{i}"));
            fs::write(&file, format!("{i}")).unwrap();
            paths.push(file);
        }
        paths.push(tmp.path().to_path_buf());
        sync_paths(&paths).unwrap();
        sync_tree(tmp.path()).unwrap();
        paths.push(tmp.path().join("missing"));
        let err = sync_paths(&paths).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
