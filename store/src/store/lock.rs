//! Advisory locks between kiln processes (and threads).
//!
//! A lock is held as long as its file descriptor is open, and the kernel
//! releases it when the process dies, even by SIGKILL: a killed `kiln store
//! add` never leaves a lock behind. Two kinds:
//!
//! - [`PathLock::acquire`]: `flock` on a file of its own (temp dirs).
//! - [`PathLock::acquire_byte`]: an open-file-description lock on one byte
//!   of a shared file (store paths). One shared file means no new file per
//!   lock, which costs a file creation on every build otherwise; the byte
//!   is chosen by the caller from the path's hash, so two paths share a
//!   byte only by a 2^-62 chance, and then they merely wait for each other.
//!
//! Lock files are never deleted (deleting one while another process waits
//! on it would let two processes hold "the same" lock).

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

    /// Block until byte `offset` of the shared lock file at `path` (created
    /// if missing) is ours. Like `flock`, the lock belongs to this open file
    /// description, so threads of one process exclude each other too.
    pub fn acquire_byte(path: &Path, offset: u64) -> io::Result<PathLock> {
        let file = open_lock_file(path)?;
        // SAFETY: an all-zero `flock` is a valid value of the C struct.
        let mut range: libc::flock = unsafe { std::mem::zeroed() };
        range.l_type = libc::F_WRLCK as libc::c_short;
        range.l_whence = libc::SEEK_SET as libc::c_short;
        range.l_start = (offset & (i64::MAX as u64)) as libc::off_t;
        range.l_len = 1;
        loop {
            // SAFETY: a valid open fd and a valid `flock` struct.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &range) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(PathLock {
            _file: file,
            path: path.to_path_buf(),
        })
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

    #[test]
    fn byte_locks_exclude_the_same_byte_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::sync::Arc::new(dir.path().join("paths.lock"));
        let held = PathLock::acquire_byte(&path, 7).unwrap();
        // Another byte is free at once.
        let other = PathLock::acquire_byte(&path, 8).unwrap();
        // The same byte waits until the holder lets go, even in this process.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let lock = PathLock::acquire_byte(&path, 7).unwrap();
                tx.send(()).unwrap();
                drop(lock);
            })
        };
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "the same byte was locked twice"
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the waiter gets the byte once it is released");
        waiter.join().unwrap();
        drop(other);
    }
}
