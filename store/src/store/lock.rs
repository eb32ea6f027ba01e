//! Advisory file locks (`flock`) between kiln processes.
//!
//! A lock is held as long as its file descriptor is open, and the kernel
//! releases it when the process dies, even by SIGKILL: a killed `kiln store
//! add` never leaves a lock behind. Lock files are never deleted (deleting
//! one while another process waits on it would let two processes hold
//! "the same" lock).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// An exclusive lock on one file; released on drop.
#[derive(Debug)]
pub struct PathLock {
    _file: File,
    path: PathBuf,
}

impl PathLock {
    /// Block until the lock at `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> io::Result<PathLock> {
        let file = open_lock_file(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(PathLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Take the lock if nobody holds it; `None` if another process does.
    pub fn try_acquire(path: &Path) -> io::Result<Option<PathLock>> {
        let file = open_lock_file(path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Some(PathLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(err) if err.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: a valid open fd.
        let rc = unsafe { libc::flock(file.as_raw_fd(), operation) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = PathLock::acquire(&path).unwrap();
        // flock locks belong to the open file description, so a second
        // open in the same process conflicts just as another process would.
        assert!(PathLock::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(PathLock::try_acquire(&path).unwrap().is_some());
    }
}
