//! Build users: when kiln runs as root, each build runs as its own
//! unprivileged host uid, so nothing a builder creates (a setuid bit, a file
//! capability, a process) means anything for another user, and two
//! concurrent builds never share a uid.
//!
//! The uids need no entry in `/etc/passwd`. They come from a range (by
//! default 256 uids from 872415232, the start of Nix's `auto-allocate-uids`
//! range; `KILN_BUILD_USERS=FIRST:COUNT` changes it), each with the same
//! number as its gid. A uid is taken by holding an exclusive `flock` on
//! `<lock dir>/<uid>`; the lock dir is host-wide (`/run/kiln/build-users`),
//! so builds of different stores on one host do not share uids either.
//! A killed kiln's locks go with its process.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::BuildError;

/// The default first build uid.
pub const DEFAULT_FIRST_UID: u32 = 872_415_232;
/// The default number of build uids.
pub const DEFAULT_COUNT: u32 = 256;
/// The host-wide directory of build-user locks.
pub const LOCK_DIR: &str = "/run/kiln/build-users";

/// One build's uid, held until dropped.
#[derive(Debug)]
pub struct BuildUser {
    pub uid: u32,
    pub gid: u32,
    _lock: File,
}

/// The range of build uids.
#[derive(Debug, Clone)]
pub struct BuildUsers {
    first: u32,
    count: u32,
    lock_dir: PathBuf,
}

impl BuildUsers {
    /// The range from `KILN_BUILD_USERS` (`FIRST:COUNT`) or the default.
    pub fn from_env() -> Result<BuildUsers, BuildError> {
        let (first, count) = match std::env::var("KILN_BUILD_USERS") {
            Ok(spec) => parse_range(&spec).ok_or_else(|| {
                BuildError::Other(format!(
                    "KILN_BUILD_USERS={spec:?} is not FIRST:COUNT with FIRST > 0 and COUNT > 0"
                ))
            })?,
            Err(_) => (DEFAULT_FIRST_UID, DEFAULT_COUNT),
        };
        Ok(BuildUsers {
            first,
            count,
            lock_dir: PathBuf::from(LOCK_DIR),
        })
    }

    /// The same range with its locks in `dir` (tests).
    pub fn with_lock_dir(first: u32, count: u32, dir: &Path) -> BuildUsers {
        BuildUsers {
            first,
            count,
            lock_dir: dir.to_path_buf(),
        }
    }

    /// A uid of the range, for probing (not held).
    pub fn any(&self) -> (u32, u32) {
        (self.first, self.first)
    }

    /// The first uid nobody holds.
    pub fn acquire(&self) -> Result<BuildUser, BuildError> {
        std::fs::create_dir_all(&self.lock_dir).map_err(|e| BuildError::io(&self.lock_dir, e))?;
        for uid in self.first..self.first.saturating_add(self.count) {
            let path = self.lock_dir.join(uid.to_string());
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| BuildError::io(&path, e))?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    return Ok(BuildUser {
                        uid,
                        gid: uid,
                        _lock: file,
                    });
                }
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                Err(e) => return Err(BuildError::io(&path, e.into())),
            }
        }
        Err(BuildError::Other(format!(
            "all {} build users ({}..{}) are busy; raise the count with KILN_BUILD_USERS=FIRST:COUNT",
            self.count,
            self.first,
            self.first.saturating_add(self.count)
        )))
    }
}

fn parse_range(spec: &str) -> Option<(u32, u32)> {
    let (first, count) = spec.split_once(':')?;
    let (first, count) = (first.trim().parse().ok()?, count.trim().parse().ok()?);
    (first > 0 && count > 0 && u32::checked_add(first, count).is_some()).then_some((first, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_builds_never_share_a_uid_and_a_released_uid_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let users = BuildUsers::with_lock_dir(50_000, 2, dir.path());
        let a = users.acquire().unwrap();
        let b = users.acquire().unwrap();
        assert_ne!(a.uid, b.uid);
        assert_eq!((a.uid, a.gid), (50_000, 50_000));
        let err = users.acquire().unwrap_err().to_string();
        assert!(err.contains("all 2 build users"), "{err}");
        drop(a);
        assert_eq!(users.acquire().unwrap().uid, 50_000);
    }

    #[test]
    fn the_range_is_first_colon_count() {
        assert_eq!(parse_range("30000:64"), Some((30000, 64)));
        assert_eq!(parse_range("0:64"), None);
        assert_eq!(parse_range("30000"), None);
        assert_eq!(parse_range("4294967295:2"), None);
    }
}
