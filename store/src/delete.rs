//! Deleting trees that may be read-only and arbitrarily deep.
//!
//! Used for store paths collected by the garbage collector, leftovers of
//! killed processes and temp dirs. Everything is relative to open
//! directory descriptors (`openat`/`unlinkat` with `O_NOFOLLOW`), so a
//! symlink inside a tree is removed, never followed, and no path string
//! grows with the depth of the tree. A read-only directory (store paths are
//! `0555`) is made writable through its descriptor before its entries go.
//!
//! At most 64 directories are held open: below that depth the
//! walk goes back up through `..`, and checks that the directory it reaches
//! is the one it came from (same device and inode), so a tree that another
//! process moves meanwhile is never mistaken for its old parent.
//!
//! Deleting what is already gone is not an error: two collectors (or a
//! collector and a process finishing a half-deleted path) may remove the
//! same tree at once.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags};

use crate::store::StoreError;

/// Directories held open at once while descending.
const MAX_OPEN: usize = 64;

/// Remove the file, symlink or tree at `path`. A missing path is not an
/// error. Returns the number of bytes the removed regular files held.
pub fn remove_tree(path: &Path) -> Result<u64, StoreError> {
    let err = |e: io::Error| StoreError::Io {
        action: "removing",
        path: path.to_path_buf(),
        source: e,
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in path")))?;
    let stat = match rustix::fs::statat(CWD, &c_path, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(rustix::io::Errno::NOENT) => return Ok(0),
        Err(e) => return Err(err(e.into())),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        let size = regular_size(&stat);
        return match rustix::fs::unlink(&c_path) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(size),
            Err(e) => Err(err(e.into())),
        };
    }
    let dir = match open_dir(CWD, &c_path) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(err(e)),
    };
    let freed = empty_tree(dir).map_err(err)?;
    match rustix::fs::unlinkat(CWD, &c_path, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(freed),
        Err(e) => Err(err(e.into())),
    }
}

fn regular_size(stat: &rustix::fs::Stat) -> u64 {
    // A file with other links (`kiln store optimise`'s `.links`) frees
    // nothing when one of its names goes.
    if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile && stat.st_nlink == 1 {
        stat.st_size as u64
    } else {
        0
    }
}

/// One directory on the way down.
struct Level {
    /// Its name in its parent (empty for the top).
    name: CString,
    dev: u64,
    ino: u64,
    /// `None` once closed to stay under [`MAX_OPEN`].
    dir: Option<(OwnedFd, Dir)>,
}

fn open_dir<Fd: AsFd>(parent: Fd, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Make an open directory writable (if it is not) and start reading it.
fn enter(fd: OwnedFd, name: CString) -> io::Result<Level> {
    let stat = rustix::fs::fstat(&fd)?;
    if stat.st_mode & 0o700 != 0o700 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700 | (stat.st_mode & 0o777)))?;
    }
    let dir = Dir::read_from(&fd)?;
    Ok(Level {
        name,
        dev: stat.st_dev,
        ino: stat.st_ino,
        dir: Some((fd, dir)),
    })
}

/// Delete everything inside the directory `top` (not `top` itself).
fn empty_tree(top: OwnedFd) -> io::Result<u64> {
    let mut freed = 0u64;
    let mut stack = vec![enter(top, CString::default())?];
    while let Some(level) = stack.last_mut() {
        let (fd, dir) = level.dir.as_mut().expect("the deepest level is open");
        let Some(entry) = dir.read() else {
            // Emptied: remove it from its parent, then continue there.
            let done = stack.pop().expect("a level");
            let Some(parent) = stack.last_mut() else {
                return Ok(freed);
            };
            if parent.dir.is_none() {
                reopen_from_child(parent, &done)?;
            }
            let (parent_fd, _) = parent.dir.as_ref().expect("reopened");
            ignore_missing(rustix::fs::unlinkat(
                parent_fd,
                &done.name,
                AtFlags::REMOVEDIR,
            ))?;
            continue;
        };
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let mut file_type = entry.file_type();
        let mut size = 0;
        if file_type == FileType::Unknown || file_type == FileType::RegularFile {
            match rustix::fs::statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => {
                    file_type = FileType::from_raw_mode(stat.st_mode);
                    size = regular_size(&stat);
                }
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if file_type != FileType::Directory {
            ignore_missing(rustix::fs::unlinkat(&*fd, name, AtFlags::empty()))?;
            freed += size;
            continue;
        }
        let name = name.to_owned();
        let child = match open_dir(&*fd, &name) {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let child = enter(child, name)?;
        stack.push(child);
        let open = stack.iter().filter(|l| l.dir.is_some()).count();
        if open > MAX_OPEN
            && let Some(oldest) = stack.iter_mut().find(|l| l.dir.is_some())
        {
            oldest.dir = None;
        }
    }
    Ok(freed)
}

/// Reopen `parent` (closed to save descriptors) through `..` of `child`,
/// which is still open, and check it is the same directory.
fn reopen_from_child(parent: &mut Level, child: &Level) -> io::Result<()> {
    let (child_fd, _) = child.dir.as_ref().expect("the child is open");
    let fd = open_dir(child_fd, c"..")?;
    let stat = rustix::fs::fstat(&fd)?;
    if stat.st_dev != parent.dev || stat.st_ino != parent.ino {
        return Err(io::Error::other(
            "a directory being deleted was moved meanwhile; stopped",
        ));
    }
    let dir = Dir::read_from(&fd)?;
    parent.dir = Some((fd, dir));
    Ok(())
}

fn ignore_missing(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn removes_read_only_trees_and_counts_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"12345").unwrap();
        fs::write(root.join("g"), b"123").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/link")).unwrap();
        for dir in ["a/b", "a", ""] {
            fs::set_permissions(root.join(dir), fs::Permissions::from_mode(0o555)).unwrap();
        }
        assert_eq!(remove_tree(&root).unwrap(), 8);
        assert!(!root.exists());
        assert!(Path::new("/etc/passwd").exists());
        assert_eq!(remove_tree(&root).unwrap(), 0, "a missing path is fine");
    }

    #[test]
    fn removes_a_tree_deeper_than_the_open_directory_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("deep");
        fs::create_dir(&root).unwrap();
        // Built relative to each new directory so no path grows long.
        let mut fd = open_dir(CWD, &CString::new(root.as_os_str().as_bytes()).unwrap()).unwrap();
        for i in 0..(4 * MAX_OPEN + 7) {
            rustix::fs::mkdirat(&fd, c"d", Mode::from_raw_mode(0o755)).unwrap();
            let file = rustix::fs::openat(
                &fd,
                c"f",
                OFlags::CREATE | OFlags::WRONLY,
                Mode::from_raw_mode(0o444),
            )
            .unwrap();
            rustix::io::write(&file, &[i as u8]).unwrap();
            let next = open_dir(&fd, c"d").unwrap();
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o555)).unwrap();
            fd = next;
        }
        assert_eq!(remove_tree(&root).unwrap(), 4 * MAX_OPEN as u64 + 7);
        assert!(!root.exists());
    }

    #[test]
    fn a_single_file_or_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"xy").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
        assert_eq!(remove_tree(&file).unwrap(), 2);
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert_eq!(remove_tree(&link).unwrap(), 0);
        assert!(tmp.path().exists());
    }
}
