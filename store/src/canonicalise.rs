//! Canonical form of a store path's files, and making them durable.
//!
//! A store path's files carry no information beyond what its NAR records:
//! the tree shape, file contents, the owner-executable bit and symlink
//! targets. Everything else is normalised so that the same NAR always gives
//! the same files on disk:
//!
//! - every mtime (symlinks included) is 1 (1970-01-01T00:00:01Z), as in Nix;
//! - directories and executables are `0555`, other files `0444`: read-only,
//!   never setuid/setgid/sticky, never group- or world-writable.
//!
//! Making the files durable is [`crate::durable`]'s job, deleting trees
//! [`crate::delete`]'s.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file system error at a named path.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct CanonicaliseError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CanonicaliseError + 'a {
    move |source| CanonicaliseError {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The mtime every store file gets (one second after the epoch, like Nix).
pub const CANONICAL_MTIME: i64 = 1;

/// Put the tree at `path` into canonical form (see the module docs) and
/// return how many files, directories and symlinks it holds.
///
/// Children are handled before their directory, so a directory is made
/// read-only only after nothing more needs to change inside it. Entries
/// are changed relative to an open directory (short lookups), and the
/// subdirectories of the top directory are shared between two threads:
/// for a large tree this phase is a noticeable part of an add.
pub fn canonicalise_tree(path: &Path) -> Result<usize, CanonicaliseError> {
    let meta = fs::symlink_metadata(path).map_err(at("inspecting", path))?;
    let file_type = meta.file_type();
    if file_type.is_dir() {
        let count = canonicalise_dir(path, true)?;
        set_mode(path, &meta, 0o555)?;
        set_mtime_no_follow(path, CANONICAL_MTIME)?;
        return Ok(count + 1);
    }
    if file_type.is_file() {
        let mode = if meta.mode() & 0o100 != 0 {
            0o555
        } else {
            0o444
        };
        set_mode(path, &meta, mode)?;
    } else if !file_type.is_symlink() {
        return Err(not_storable(path));
    }
    set_mtime_no_follow(path, CANONICAL_MTIME)?;
    Ok(1)
}

fn not_storable(path: &Path) -> CanonicaliseError {
    CanonicaliseError {
        action: "canonicalising",
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file, directory or symlink",
        ),
    }
}

/// Canonicalise everything inside the directory `dir` (not `dir` itself),
/// returning the number of entries below it.
fn canonicalise_dir(dir: &Path, split_work: bool) -> Result<usize, CanonicaliseError> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir).map_err(at("reading directory", dir))? {
        let entry = entry.map_err(at("reading directory", dir))?;
        let file_type = entry.file_type().map_err(at("inspecting", &entry.path()))?;
        children.push((entry.file_name(), file_type));
    }
    let subdirs: Vec<PathBuf> = children
        .iter()
        .filter(|(_, t)| t.is_dir())
        .map(|(name, _)| dir.join(name))
        .collect();

    // The subdirectories' contents first; on two threads when the top
    // directory has several.
    let work = |part: &[PathBuf]| -> Result<usize, CanonicaliseError> {
        part.iter().map(|sub| canonicalise_dir(sub, false)).sum()
    };
    let mut count = if split_work && subdirs.len() > 1 {
        let (first, second) = subdirs.split_at(subdirs.len() / 2);
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| work(second));
            let mine = work(first);
            let theirs = helper.join().unwrap_or_else(|_| Err(not_storable(dir)));
            Ok::<_, CanonicaliseError>(mine? + theirs?)
        })?
    } else {
        work(&subdirs)?
    };

    let handle = fs::File::open(dir).map_err(at("opening directory", dir))?;
    let dir_fd = std::os::fd::AsRawFd::as_raw_fd(&handle);
    for (name, file_type) in &children {
        let path = || dir.join(name);
        let c_name = std::ffi::CString::new(name.as_bytes()).map_err(|_| not_storable(&path()))?;
        if file_type.is_dir() {
            chmod_at(dir_fd, &c_name, 0o555)
                .map_err(|e| at("setting permissions of", &path())(e))?;
        } else if file_type.is_file() {
            let mode = stat_mode_at(dir_fd, &c_name).map_err(|e| at("inspecting", &path())(e))?;
            let wanted = if mode & 0o100 != 0 { 0o555 } else { 0o444 };
            if mode & 0o7777 != wanted {
                chmod_at(dir_fd, &c_name, wanted)
                    .map_err(|e| at("setting permissions of", &path())(e))?;
            }
        } else if !file_type.is_symlink() {
            return Err(not_storable(&path()));
        }
        mtime_at(dir_fd, &c_name, CANONICAL_MTIME)
            .map_err(|e| at("setting mtime of", &path())(e))?;
        count += 1;
    }
    Ok(count)
}

fn chmod_at(dir_fd: i32, name: &std::ffi::CStr, mode: u32) -> io::Result<()> {
    // SAFETY: a valid fd and a NUL-terminated name.
    let rc = unsafe { libc::fchmodat(dir_fd, name.as_ptr(), mode as libc::mode_t, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn stat_mode_at(dir_fd: i32, name: &std::ffi::CStr) -> io::Result<u32> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid fd, a NUL-terminated name and a buffer to fill.
    let rc = unsafe {
        libc::fstatat(
            dir_fd,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded, so the buffer is initialised.
    Ok(unsafe { st.assume_init() }.st_mode)
}

/// Set atime and mtime of `name` in `dir_fd`, not following a symlink.
fn mtime_at(dir_fd: i32, name: &std::ffi::CStr, secs: i64) -> io::Result<()> {
    let time = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [time, time];
    // SAFETY: a valid fd, a NUL-terminated name and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            dir_fd,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_mode(path: &Path, meta: &fs::Metadata, mode: u32) -> Result<(), CanonicaliseError> {
    // `mode()` includes the file type bits; compare only the permission part.
    if meta.mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(at("setting permissions of", path))?;
    }
    Ok(())
}

/// Set atime and mtime without following a final symlink (`lutimes`).
fn set_mtime_no_follow(path: &Path, secs: i64) -> Result<(), CanonicaliseError> {
    let c_path = c_string(path).map_err(at("setting mtime of", path))?;
    let time = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [time, time];
    // SAFETY: c_path is a valid NUL-terminated string and `times` has the
    // two entries utimensat reads.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(at("setting mtime of", path)(io::Error::last_os_error()));
    }
    Ok(())
}

fn c_string(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn mtime(path: &Path) -> i64 {
        fs::symlink_metadata(path).unwrap().mtime()
    }

    #[test]
    fn canonical_modes_and_mtimes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("plain"), b"x").unwrap();
        fs::write(root.join("sub/tool"), b"#!").unwrap();
        fs::set_permissions(root.join("plain"), fs::Permissions::from_mode(0o6666)).unwrap();
        fs::set_permissions(root.join("sub/tool"), fs::Permissions::from_mode(0o4775)).unwrap();
        fs::set_permissions(root.join("sub"), fs::Permissions::from_mode(0o777)).unwrap();
        symlink("plain", root.join("link")).unwrap();

        canonicalise_tree(&root).unwrap();

        assert_eq!(mode(&root), 0o555);
        assert_eq!(mode(&root.join("sub")), 0o555);
        assert_eq!(mode(&root.join("plain")), 0o444);
        assert_eq!(mode(&root.join("sub/tool")), 0o555);
        for p in ["", "sub", "plain", "sub/tool", "link"] {
            assert_eq!(mtime(&root.join(p)), CANONICAL_MTIME, "mtime of {p:?}");
        }
        // The symlink itself was touched, not its target's mode.
        assert_eq!(
            fs::read_link(root.join("link")).unwrap(),
            Path::new("plain")
        );

        crate::durable::sync_tree(&root).unwrap();
        crate::delete::remove_tree(&root).unwrap();
        assert!(!root.exists());
    }

    #[test]
    fn special_files_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        let c = c_string(&fifo).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = canonicalise_tree(&fifo).unwrap_err();
        assert!(err.to_string().contains("fifo"), "{err}");
    }
}
