//! Canonical form of a store path's files, and making them durable.
//!
//! A store path's files carry no information beyond what its NAR records:
//! the tree shape, file contents, the owner-executable bit and symlink
//! targets. Everything else is normalised so that the same NAR always gives
//! the same files on disk, and so that nothing a builder set survives:
//!
//! - every mtime (symlinks included) is 1 (1970-01-01T00:00:01Z), as in Nix;
//! - directories and executables are `0555`, other files `0444`: read-only,
//!   never setuid/setgid/sticky, never group- or world-writable;
//! - every extended attribute is removed (a `security.capability` xattr
//!   would grant capabilities to whoever runs the file; a NAR records none);
//! - the owner is kiln's own user and group (when kiln runs as root, builds
//!   run as build users, and their files become root's).
//!
//! **Never following a symlink.** A tree may be under attack while it is
//! changed (an entry swapped for a symlink to a host file), so every step is
//! relative to an open directory: entries are opened with `O_NOFOLLOW`
//! (`O_PATH` for files, so no read permission is needed), checked to be the
//! inode that was listed, and changed through that descriptor
//! (`/proc/self/fd/N`); symlinks are changed with `AT_SYMLINK_NOFOLLOW`.
//! Callers still run it only where no sandbox can hold a descriptor of the
//! tree any more: a fixed output is first copied into fresh inodes
//! ([`copy_tree`]).
//!
//! [`sanitise_tree`] is the weaker form for a kept build directory (s-bits,
//! group/world write and xattrs removed, owner changed, modes and mtimes
//! otherwise kept); [`check_tree`] reports what is not canonical (used by
//! `kiln store verify`).
//!
//! Making the files durable is [`crate::durable`]'s job, deleting trees
//! [`crate::delete`]'s.

use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat, Timespec, Timestamps};

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

fn errno_at<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(rustix::io::Errno) -> CanonicaliseError + 'a {
    move |e| at(action, path)(e.into())
}

fn invalid(action: &'static str, path: &Path, what: &str) -> CanonicaliseError {
    CanonicaliseError {
        action,
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, what.to_string()),
    }
}

/// The mtime every store file gets (one second after the epoch, like Nix).
pub const CANONICAL_MTIME: i64 = 1;

/// Deeper trees are refused (each level holds a descriptor while its
/// entries are handled).
pub const MAX_DEPTH: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Store path contents: the canonical form of the module docs.
    Store,
    /// A kept build directory: dangerous bits and xattrs go, the rest stays.
    Kept,
}

/// Put the tree at `path` into canonical form (see the module docs) and
/// return how many files, directories and symlinks it holds. `path`'s
/// own final component is not followed either.
pub fn canonicalise_tree(path: &Path) -> Result<usize, CanonicaliseError> {
    walk_top(path, Policy::Store)
}

/// Make a kept build directory harmless: no setuid/setgid/sticky bit, no
/// group- or world-writable entry, no xattr, owned by kiln's user; other
/// modes, mtimes and special files (fifos, sockets) stay as they are.
pub fn sanitise_tree(path: &Path) -> Result<usize, CanonicaliseError> {
    walk_top(path, Policy::Kept)
}

/// The directory holding `path` (opened) and `path`'s last component.
fn open_parent(path: &Path) -> Result<(OwnedFd, CString), CanonicaliseError> {
    let name = path
        .file_name()
        .ok_or_else(|| invalid("opening", path, "no file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fd = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_at("opening directory", parent))?;
    let name = CString::new(name.as_bytes()).map_err(|_| invalid("opening", path, "NUL"))?;
    Ok((fd, name))
}

fn walk_top(path: &Path, policy: Policy) -> Result<usize, CanonicaliseError> {
    let (parent, name) = open_parent(path)?;
    let owner = Owner::current();
    fix_entry(parent.as_fd(), &name, path, policy, owner, 0, true)
}

/// The user and group that store files belong to: kiln's own.
#[derive(Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Owner {
    fn current() -> Owner {
        Owner {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }
}

fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Canonicalise the entry `name` of the open directory `dir` (whose path,
/// for messages, is `path`'s parent), returning the number of entries.
fn fix_entry(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    policy: Policy,
    owner: Owner,
    depth: usize,
    split_work: bool,
) -> Result<usize, CanonicaliseError> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno_at("inspecting", path))?;
    match file_type(&st) {
        FileType::Symlink => {
            fix_symlink(dir, name, path, &st, policy, owner)?;
            Ok(1)
        }
        FileType::RegularFile => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_at("opening", path))?;
            let st = same_inode(fd.as_fd(), &st, path)?;
            fix_inode(fd.as_fd(), &st, path, policy, owner)?;
            Ok(1)
        }
        FileType::Directory => {
            if depth >= MAX_DEPTH {
                return Err(invalid(
                    "canonicalising",
                    path,
                    "directories nested too deeply",
                ));
            }
            let fd = open_dir_at(dir, name, path, &st, owner)?;
            let st = same_inode(fd.as_fd(), &st, path)?;
            let children = list_dir(fd.as_fd(), path)?;
            let count = fix_children(
                fd.as_fd(),
                &children,
                path,
                policy,
                owner,
                depth,
                split_work,
            )?;
            fix_inode(fd.as_fd(), &st, path, policy, owner)?;
            Ok(count + 1)
        }
        _ if policy == Policy::Kept => {
            // A fifo or socket left in /build: only its owner changes.
            chown_if_needed(dir, name, path, &st, owner, AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(1)
        }
        _ => Err(invalid(
            "canonicalising",
            path,
            "not a regular file, directory or symlink",
        )),
    }
}

fn fix_children(
    dir: BorrowedFd<'_>,
    children: &[CString],
    path: &Path,
    policy: Policy,
    owner: Owner,
    depth: usize,
    split_work: bool,
) -> Result<usize, CanonicaliseError> {
    let work = |part: &[CString]| -> Result<usize, CanonicaliseError> {
        part.iter()
            .map(|child| {
                let child_path = path.join(OsStr::from_bytes(child.as_bytes()));
                fix_entry(dir, child, &child_path, policy, owner, depth + 1, false)
            })
            .sum()
    };
    // The top directory's entries are shared between two threads: for a
    // large tree this phase is a noticeable part of an add.
    if split_work && children.len() > 16 {
        let (first, second) = children.split_at(children.len() / 2);
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| work(second));
            let mine = work(first);
            let theirs = helper
                .join()
                .unwrap_or_else(|_| Err(invalid("canonicalising", path, "worker failed")));
            Ok(mine? + theirs?)
        })
    } else {
        work(children)
    }
}

/// Open a directory entry for listing, without following a symlink. A
/// directory its owner cannot read (mode 0000, when kiln is not root) is
/// made readable first, through an `O_PATH` descriptor.
fn open_dir_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    st: &Stat,
    owner: Owner,
) -> Result<OwnedFd, CanonicaliseError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::ACCESS) if st.st_uid == owner.uid => {
            let opath = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_at("opening directory", path))?;
            same_inode(opath.as_fd(), st, path)?;
            rustix::fs::chmod(proc_path(opath.as_fd()), Mode::from_raw_mode(0o700))
                .map_err(errno_at("making readable", path))?;
            rustix::fs::openat(dir, name, flags, Mode::empty())
                .map_err(errno_at("opening directory", path))
        }
        Err(e) => Err(at("opening directory", path)(e.into())),
    }
}

/// The names in an open directory, `.` and `..` left out.
fn list_dir(dir: BorrowedFd<'_>, path: &Path) -> Result<Vec<CString>, CanonicaliseError> {
    let mut names = Vec::new();
    let entries = rustix::fs::Dir::read_from(dir).map_err(errno_at("reading directory", path))?;
    for entry in entries {
        let entry = entry.map_err(errno_at("reading directory", path))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// The entry opened is the one that was listed (not swapped meanwhile).
fn same_inode(fd: BorrowedFd<'_>, listed: &Stat, path: &Path) -> Result<Stat, CanonicaliseError> {
    let st = rustix::fs::fstat(fd).map_err(errno_at("inspecting", path))?;
    if st.st_ino != listed.st_ino || st.st_dev != listed.st_dev {
        return Err(invalid(
            "canonicalising",
            path,
            "the file changed while it was being canonicalised",
        ));
    }
    Ok(st)
}

fn wanted_mode(st: &Stat, policy: Policy) -> u32 {
    let perm = st.st_mode & 0o7777;
    let is_dir = file_type(st) == FileType::Directory;
    match policy {
        Policy::Store if is_dir || perm & 0o100 != 0 => 0o555,
        Policy::Store => 0o444,
        // Owner keeps full access to a directory it must be able to delete.
        Policy::Kept if is_dir => (perm & 0o755) | 0o700,
        Policy::Kept => perm & 0o755,
    }
}

/// Owner, xattrs, mode and (for the store) mtime of the inode behind `fd`.
fn fix_inode(
    fd: BorrowedFd<'_>,
    st: &Stat,
    path: &Path,
    policy: Policy,
    owner: Owner,
) -> Result<(), CanonicaliseError> {
    let proc = proc_path(fd);
    if st.st_uid != owner.uid || st.st_gid != owner.gid {
        // Changing the owner also clears setuid/setgid bits.
        rustix::fs::chown(
            &proc,
            Some(rustix::fs::Uid::from_raw(owner.uid)),
            Some(rustix::fs::Gid::from_raw(owner.gid)),
        )
        .map_err(errno_at("changing the owner of", path))?;
    }
    strip_xattrs(&proc, false, path)?;
    // Always set after chown: the kernel may have changed the mode.
    let wanted = wanted_mode(st, policy);
    if st.st_mode & 0o7777 != wanted || st.st_uid != owner.uid || st.st_gid != owner.gid {
        rustix::fs::chmod(&proc, Mode::from_raw_mode(wanted))
            .map_err(errno_at("setting permissions of", path))?;
    }
    if policy == Policy::Store && (st.st_mtime != CANONICAL_MTIME || st.st_mtime_nsec != 0) {
        rustix::fs::utimensat(CWD, &proc, &canonical_times(), AtFlags::empty())
            .map_err(errno_at("setting mtime of", path))?;
    }
    Ok(())
}

fn fix_symlink(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    st: &Stat,
    policy: Policy,
    owner: Owner,
) -> Result<(), CanonicaliseError> {
    chown_if_needed(dir, name, path, st, owner, AtFlags::SYMLINK_NOFOLLOW)?;
    // The directory's descriptor, then the link's name, not followed.
    let link = format!("{}/{}", proc_path(dir), name.to_string_lossy());
    if name.to_bytes().contains(&b'/') {
        return Err(invalid("canonicalising", path, "bad file name"));
    }
    strip_xattrs(&link, true, path)?;
    if policy == Policy::Store && (st.st_mtime != CANONICAL_MTIME || st.st_mtime_nsec != 0) {
        rustix::fs::utimensat(dir, name, &canonical_times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno_at("setting mtime of", path))?;
    }
    Ok(())
}

fn chown_if_needed(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    st: &Stat,
    owner: Owner,
    flags: AtFlags,
) -> Result<(), CanonicaliseError> {
    if st.st_uid == owner.uid && st.st_gid == owner.gid {
        return Ok(());
    }
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(owner.uid)),
        Some(rustix::fs::Gid::from_raw(owner.gid)),
        flags,
    )
    .map_err(errno_at("changing the owner of", path))
}

fn canonical_times() -> Timestamps {
    let t = Timespec {
        tv_sec: CANONICAL_MTIME,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// The names of the extended attributes of `file` (a link itself when
/// `link`). A file system without xattrs has none.
fn xattr_names(file: &str, link: bool, path: &Path) -> Result<Vec<CString>, CanonicaliseError> {
    let mut buf = vec![0u8; 256];
    loop {
        let got = if link {
            rustix::fs::llistxattr(file, &mut buf[..])
        } else {
            rustix::fs::listxattr(file, &mut buf[..])
        };
        match got {
            Ok(n) => {
                return Ok(buf[..n]
                    .split(|b| *b == 0)
                    .filter(|n| !n.is_empty())
                    .filter_map(|n| CString::new(n).ok())
                    .collect());
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 20 => {
                buf.resize(buf.len() * 4, 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(at("listing the xattrs of", path)(e.into())),
        }
    }
}

fn strip_xattrs(file: &str, link: bool, path: &Path) -> Result<(), CanonicaliseError> {
    for name in xattr_names(file, link, path)? {
        let removed = if link {
            rustix::fs::lremovexattr(file, &name)
        } else {
            rustix::fs::removexattr(file, &name)
        };
        match removed {
            Ok(()) | Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(at("removing an xattr of", path)(e.into())),
        }
    }
    Ok(())
}

/// Copy the tree at `from` to `to` (which must not exist) into fresh
/// inodes: regular files (contents and the owner-executable bit),
/// directories and symlinks, never following one. What a sandbox may still
/// hold a descriptor of stays behind; the copy is kiln's alone.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), CanonicaliseError> {
    let (src_dir, src_name) = open_parent(from)?;
    let (dst_dir, dst_name) = open_parent(to)?;
    copy_entry(
        src_dir.as_fd(),
        &src_name,
        dst_dir.as_fd(),
        &dst_name,
        from,
        0,
    )
}

fn copy_entry(
    src_dir: BorrowedFd<'_>,
    src_name: &CStr,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    path: &Path,
    depth: usize,
) -> Result<(), CanonicaliseError> {
    let st = rustix::fs::statat(src_dir, src_name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno_at("inspecting", path))?;
    match file_type(&st) {
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(src_dir, src_name, Vec::new())
                .map_err(errno_at("reading the symlink", path))?;
            rustix::fs::symlinkat(&target, dst_dir, dst_name)
                .map_err(errno_at("copying the symlink", path))
        }
        FileType::RegularFile => {
            let src = open_readable(src_dir, src_name, path, &st)?;
            same_inode(src.as_fd(), &st, path)?;
            let mode = if st.st_mode & 0o100 != 0 {
                0o700
            } else {
                0o600
            };
            let dst = rustix::fs::openat(
                dst_dir,
                dst_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            )
            .map_err(errno_at("creating a copy of", path))?;
            let mut src = fs::File::from(src);
            let mut dst = fs::File::from(dst);
            io::copy(&mut src, &mut dst).map_err(at("copying", path))?;
            Ok(())
        }
        FileType::Directory => {
            if depth >= MAX_DEPTH {
                return Err(invalid("copying", path, "directories nested too deeply"));
            }
            let src = open_dir_at(src_dir, src_name, path, &st, Owner::current())?;
            same_inode(src.as_fd(), &st, path)?;
            rustix::fs::mkdirat(dst_dir, dst_name, Mode::from_raw_mode(0o700))
                .map_err(errno_at("creating a copy of", path))?;
            let dst = rustix::fs::openat(
                dst_dir,
                dst_name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_at("opening the copy of", path))?;
            for child in list_dir(src.as_fd(), path)? {
                let child_path = path.join(OsStr::from_bytes(child.as_bytes()));
                copy_entry(
                    src.as_fd(),
                    &child,
                    dst.as_fd(),
                    &child,
                    &child_path,
                    depth + 1,
                )?;
            }
            Ok(())
        }
        _ => Err(invalid(
            "copying",
            path,
            "not a regular file, directory or symlink",
        )),
    }
}

/// Open a regular file for reading without following a symlink (or
/// blocking on a fifo swapped in); one its owner cannot read is made
/// readable first.
fn open_readable(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    st: &Stat,
) -> Result<OwnedFd, CanonicaliseError> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::ACCESS) if st.st_uid == Owner::current().uid => {
            let opath = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_at("opening", path))?;
            same_inode(opath.as_fd(), st, path)?;
            rustix::fs::chmod(proc_path(opath.as_fd()), Mode::from_raw_mode(0o400))
                .map_err(errno_at("making readable", path))?;
            rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(errno_at("opening", path))
        }
        Err(e) => Err(at("opening", path)(e.into())),
    }
}

/// One way a store path's files differ from their canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonCanonical {
    /// The file, relative to the checked path (empty for the path itself).
    pub file: PathBuf,
    pub problem: String,
}

/// What is not canonical in the tree at `path` (mode, mtime, xattrs),
/// without changing anything. At most `limit` findings are returned.
pub fn check_tree(path: &Path, limit: usize) -> Result<Vec<NonCanonical>, CanonicaliseError> {
    check_tree_owned(path, limit, None)
}

/// [`check_tree`], and with `owner` also that every entry belongs to that
/// user id (the store's owner).
pub fn check_tree_owned(
    path: &Path,
    limit: usize,
    owner: Option<u32>,
) -> Result<Vec<NonCanonical>, CanonicaliseError> {
    let (parent, name) = open_parent(path)?;
    let mut found = Vec::new();
    check_entry(
        parent.as_fd(),
        &name,
        path,
        Path::new(""),
        0,
        Check { limit, owner },
        &mut found,
    )?;
    Ok(found)
}

/// What [`check_entry`] looks for.
#[derive(Clone, Copy)]
struct Check {
    limit: usize,
    owner: Option<u32>,
}

fn check_entry(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    rel: &Path,
    depth: usize,
    check: Check,
    found: &mut Vec<NonCanonical>,
) -> Result<(), CanonicaliseError> {
    let limit = check.limit;
    if found.len() >= limit {
        return Ok(());
    }
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno_at("inspecting", path))?;
    let mut problem = |what: String| {
        if found.len() < limit {
            found.push(NonCanonical {
                file: rel.to_path_buf(),
                problem: what,
            });
        }
    };
    let kind = file_type(&st);
    if st.st_mtime != CANONICAL_MTIME {
        problem(format!("mtime is {}, not {CANONICAL_MTIME}", st.st_mtime));
    }
    let link_name = format!("{}/{}", proc_path(dir), name.to_string_lossy());
    let xattrs = xattr_names(&link_name, true, path)?;
    if !xattrs.is_empty() {
        let names: Vec<_> = xattrs.iter().map(|n| n.to_string_lossy()).collect();
        problem(format!("has extended attributes ({})", names.join(", ")));
    }
    if let Some(uid) = check.owner
        && st.st_uid != uid
    {
        problem(format!("owner is uid {}, not {uid}", st.st_uid));
    }
    let perm = st.st_mode & 0o7777;
    match kind {
        FileType::Symlink => {}
        FileType::RegularFile | FileType::Directory => {
            let wanted = wanted_mode(&st, Policy::Store);
            if perm != wanted {
                problem(format!("mode is {perm:04o}, not {wanted:04o}"));
            }
        }
        _ => problem("is not a regular file, directory or symlink".to_string()),
    }
    if kind == FileType::Directory {
        if depth >= MAX_DEPTH {
            return Err(invalid("checking", path, "directories nested too deeply"));
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_at("opening directory", path))?;
        for child in list_dir(fd.as_fd(), path)? {
            let os = OsStr::from_bytes(child.as_bytes());
            check_entry(
                fd.as_fd(),
                &child,
                &path.join(os),
                &rel.join(os),
                depth + 1,
                check,
                found,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

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
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = canonicalise_tree(&fifo).unwrap_err();
        assert!(err.to_string().contains("fifo"), "{err}");
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn xattrs_and_setuid_bits_are_removed_and_owner_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        fs::create_dir_all(root.join("sub")).unwrap();
        let tool = root.join("sub/tool");
        fs::write(&tool, b"#!").unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o6755)).unwrap();
        // Not every file system takes user xattrs; where one does, it must go.
        let has_xattr = rustix::fs::setxattr(
            &tool,
            "user.kiln-test",
            b"1",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok();
        if is_root() {
            rustix::fs::chown(
                &tool,
                Some(rustix::fs::Uid::from_raw(4242)),
                Some(rustix::fs::Gid::from_raw(4242)),
            )
            .unwrap();
            fs::set_permissions(&tool, fs::Permissions::from_mode(0o6755)).unwrap();
        }
        let findings = check_tree(&root, 10).unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f.file == Path::new("sub/tool") && f.problem.contains("6755")),
            "{findings:?}"
        );
        if has_xattr {
            assert!(
                findings
                    .iter()
                    .any(|f| f.problem.contains("user.kiln-test")),
                "{findings:?}"
            );
        }

        canonicalise_tree(&root).unwrap();

        assert_eq!(mode(&tool), 0o555);
        let meta = fs::symlink_metadata(&tool).unwrap();
        assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
        assert_eq!(
            rustix::fs::listxattr(&tool, &mut [0u8; 64][..]).unwrap_or(0),
            0
        );
        assert_eq!(check_tree(&root, 10).unwrap(), Vec::new());
    }

    #[test]
    fn a_symlink_to_an_outside_file_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("host-file");
        fs::write(&outside, b"secret").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
        let root = tmp.path().join("tree");
        fs::create_dir(&root).unwrap();
        symlink(&outside, root.join("link")).unwrap();
        // The top itself a symlink: canonicalised as a link, not its target.
        let top_link = tmp.path().join("top-link");
        symlink(&outside, &top_link).unwrap();

        canonicalise_tree(&root).unwrap();
        canonicalise_tree(&top_link).unwrap();

        assert_eq!(mode(&outside), 0o600);
        assert_ne!(mtime(&outside), CANONICAL_MTIME);
        assert_eq!(mtime(&root.join("link")), CANONICAL_MTIME);
        assert_eq!(mtime(&top_link), CANONICAL_MTIME);
    }

    #[test]
    fn kept_directories_lose_dangerous_bits_but_keep_their_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("kept");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("suid"), b"x").unwrap();
        fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4777)).unwrap();
        fs::write(root.join("plain"), b"x").unwrap();
        fs::set_permissions(root.join("plain"), fs::Permissions::from_mode(0o640)).unwrap();
        sanitise_tree(&root).unwrap();
        assert_eq!(mode(&root.join("suid")), 0o755);
        assert_eq!(mode(&root.join("plain")), 0o640);
        assert_ne!(mtime(&root.join("plain")), CANONICAL_MTIME);
    }

    #[test]
    fn copies_are_fresh_inodes_with_the_same_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        fs::create_dir_all(from.join("d")).unwrap();
        fs::write(from.join("d/exe"), b"#!x").unwrap();
        fs::set_permissions(from.join("d/exe"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(from.join("f"), b"data").unwrap();
        symlink("/etc/passwd", from.join("l")).unwrap();
        let to = tmp.path().join("to");
        copy_tree(&from, &to).unwrap();
        assert_eq!(fs::read(to.join("f")).unwrap(), b"data");
        assert_eq!(
            fs::read_link(to.join("l")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(mode(&to.join("d/exe")) & 0o100, 0o100);
        assert_eq!(mode(&to.join("f")) & 0o100, 0);
        let ino = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
        assert_ne!(ino(&from.join("f")), ino(&to.join("f")));
        assert_eq!(
            crate::nar::hash_path(&from, crate::HashAlgo::Sha256).unwrap(),
            crate::nar::hash_path(&to, crate::HashAlgo::Sha256).unwrap()
        );
    }
}
