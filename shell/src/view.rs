//! The logical store dir showing the physical store, for one process tree.
//!
//! Outputs refer to their dependencies by logical path (`/kiln/store/…`).
//! With a `--root DIR` store, or a non-root user's default root, the files
//! are at `ROOT/kiln/store/…` and the logical path does not exist on the
//! host. A program run from such a store gets a user namespace (where it
//! keeps its own uid and gid, mapped to themselves) and a mount namespace
//! in which the physical store is bound at the logical path; nothing else
//! changes: the host's files, network, user and processes stay as they are.
//!
//! - When the logical store dir exists on the host as a directory (an empty
//!   mount point, as `kiln setup --bind` leaves one), the physical store is
//!   bound on it: one mount.
//! - Otherwise the logical path's missing directories cannot be created on
//!   the host (not even in a user namespace: `/` belongs to the real root).
//!   A tmpfs becomes the new `/`: every entry of the host's `/` is bound
//!   into it (directories and files recursively, symlinks copied), the
//!   missing directories are made on the tmpfs, the physical store is bound
//!   at the logical path, and the process changes root into it and returns
//!   to its working directory. Along the logical path, directories that do
//!   exist on the host are mirrored the same way, one level down.
//!
//! Everything is planned in the parent ([`MountPlan::new`]): the child only
//! makes system calls with prepared arguments ([`MountPlan::enter`]), which
//! is what may run between `fork` and `exec`.
//!
//! As root, only the mount namespace is made (no user namespace). Mounts are
//! made private first, so nothing propagates back to the host.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Whether `logical` already shows the physical store on this host: the
/// same directory (a root `/` store, or after `kiln setup`).
pub fn store_visible(logical: &Path, physical: &Path) -> bool {
    match (std::fs::metadata(logical), std::fs::metadata(physical)) {
        (Ok(l), Ok(p)) => l.dev() == p.dev() && l.ino() == p.ino(),
        _ => false,
    }
}

/// One mount-namespace step, with its arguments prepared.
#[derive(Debug)]
enum Op {
    Tmpfs(CString),
    Mkdir(CString),
    /// An empty regular file, as the mount point of a bound file.
    File(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Bind {
        src: CString,
        dst: CString,
    },
}

/// What a child does to see the physical store at the logical path.
#[derive(Debug)]
pub struct MountPlan {
    /// Ordinary user: a user namespace with these one-line id maps.
    id_maps: Option<(Vec<u8>, Vec<u8>)>,
    ops: Vec<Op>,
    /// Change root into this directory (the tmpfs), then go to `cwd`.
    new_root: Option<CString>,
    cwd: CString,
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

impl MountPlan {
    /// Plan binding `physical` (the store's directory) at `logical`.
    /// `scratch` is an empty directory that exists on the host (the new
    /// root's mount point, used in the child's namespace only; any number
    /// of processes can share it). `cwd` is where the child starts.
    pub fn new(
        logical: &Path,
        physical: &Path,
        scratch: &Path,
        cwd: &Path,
    ) -> io::Result<MountPlan> {
        // SAFETY: getuid and getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let id_maps = (uid != 0).then(|| {
            (
                format!("{uid} {uid} 1\n").into_bytes(),
                format!("{gid} {gid} 1\n").into_bytes(),
            )
        });
        let physical = std::fs::canonicalize(physical)?;
        let mut ops = Vec::new();
        let logical_is_dir = std::fs::symlink_metadata(logical).is_ok_and(|m| m.is_dir());
        let new_root = if logical_is_dir {
            ops.push(Op::Bind {
                src: cpath(&physical)?,
                dst: cpath(logical)?,
            });
            None
        } else {
            let parts: Vec<&std::ffi::OsStr> = logical
                .components()
                .filter_map(|c| match c {
                    Component::Normal(name) => Some(name),
                    _ => None,
                })
                .collect();
            if parts.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the store dir cannot be /",
                ));
            }
            ops.push(Op::Tmpfs(cpath(scratch)?));
            mirror(Path::new("/"), scratch, &parts, &physical, &mut ops)?;
            Some(cpath(scratch)?)
        };
        Ok(MountPlan {
            id_maps,
            ops,
            new_root,
            cwd: cpath(cwd)?,
        })
    }

    /// Make the namespaces and the mounts, in the calling process. Meant
    /// for a child between `fork` and `exec` (`CommandExt::pre_exec`):
    /// system calls only, no allocation.
    ///
    /// # Safety
    ///
    /// The process must be single-threaded (a freshly forked child is).
    pub unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY: plain system calls on prepared, NUL-terminated strings.
        unsafe {
            match &self.id_maps {
                Some((uid_map, gid_map)) => {
                    check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
                    write_file(c"/proc/self/setgroups", b"deny")?;
                    write_file(c"/proc/self/uid_map", uid_map)?;
                    write_file(c"/proc/self/gid_map", gid_map)?;
                }
                None => check(libc::unshare(libc::CLONE_NEWNS))?,
            }
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for op in &self.ops {
                match op {
                    Op::Tmpfs(dir) => check(libc::mount(
                        c"tmpfs".as_ptr(),
                        dir.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        c"mode=0755".as_ptr().cast(),
                    ))?,
                    Op::Mkdir(dir) => check(libc::mkdir(dir.as_ptr(), 0o755))?,
                    Op::File(file) => {
                        let fd = libc::open(
                            file.as_ptr(),
                            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                            0o644,
                        );
                        check(fd)?;
                        libc::close(fd);
                    }
                    Op::Symlink { target, link } => {
                        check(libc::symlink(target.as_ptr(), link.as_ptr()))?
                    }
                    Op::Bind { src, dst } => check(libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?,
                }
            }
            if let Some(root) = &self.new_root {
                check(libc::chdir(root.as_ptr()))?;
                check(libc::chroot(c".".as_ptr()))?;
                if libc::chdir(self.cwd.as_ptr()) != 0 {
                    check(libc::chdir(c"/".as_ptr()))?;
                }
            }
        }
        Ok(())
    }
}

/// Plan a copy of `host` (a directory) at `new` (a directory on the
/// tmpfs): its entries bound or copied, except `rest[0]`, which leads to
/// the store.
fn mirror(
    host: &Path,
    new: &Path,
    rest: &[&std::ffi::OsStr],
    physical: &Path,
    ops: &mut Vec<Op>,
) -> io::Result<()> {
    let next = rest[0];
    if let Ok(entries) = std::fs::read_dir(host) {
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if name == next {
                continue;
            }
            let from = host.join(&name);
            let to = new.join(&name);
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                ops.push(Op::Symlink {
                    target: cpath(&std::fs::read_link(&from)?)?,
                    link: cpath(&to)?,
                });
            } else {
                ops.push(if kind.is_dir() {
                    Op::Mkdir(cpath(&to)?)
                } else {
                    Op::File(cpath(&to)?)
                });
                ops.push(Op::Bind {
                    src: cpath(&from)?,
                    dst: cpath(&to)?,
                });
            }
        }
    }
    let host_next = host.join(next);
    let new_next = new.join(next);
    ops.push(Op::Mkdir(cpath(&new_next)?));
    if rest.len() == 1 {
        ops.push(Op::Bind {
            src: cpath(physical)?,
            dst: cpath(&new_next)?,
        });
        return Ok(());
    }
    // A real directory on the host is mirrored one level down; anything
    // else (missing, a symlink, a file) is replaced by the path to the store.
    let real_dir = std::fs::symlink_metadata(&host_next).is_ok_and(|m| m.is_dir());
    let host_dir = if real_dir {
        host_next
    } else {
        PathBuf::from("/nonexistent-kiln-mirror")
    };
    mirror(&host_dir, &new_next, &rest[1..], physical, ops)
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// # Safety
///
/// System calls only; `path` is NUL-terminated.
unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: valid pointers for the calls; the fd is closed once.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_logical_dir_is_mirrored_from_the_root() {
        let scratch = Path::new("/tmp/scratch");
        let plan = MountPlan::new(
            Path::new("/kiln-test-does-not-exist/store"),
            Path::new("/tmp"),
            scratch,
            Path::new("/"),
        )
        .unwrap();
        assert!(plan.new_root.is_some());
        let text = format!("{:?}", plan.ops);
        assert!(
            text.contains("\"/tmp/scratch/kiln-test-does-not-exist/store\""),
            "{text}"
        );
        // The host's /etc is visible in the new root.
        assert!(
            text.contains("src: \"/etc\", dst: \"/tmp/scratch/etc\""),
            "{text}"
        );
        assert!(matches!(plan.ops[0], Op::Tmpfs(_)));
    }

    #[test]
    fn an_existing_logical_dir_is_bound_over() {
        let dir = tempfile::tempdir().unwrap();
        let plan = MountPlan::new(
            dir.path(),
            Path::new("/tmp"),
            Path::new("/x"),
            Path::new("/"),
        )
        .unwrap();
        assert!(plan.new_root.is_none());
        assert_eq!(plan.ops.len(), 1);
    }

    #[test]
    fn visibility_is_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(store_visible(&link, dir.path()));
        assert!(!store_visible(Path::new("/nonexistent-kiln"), dir.path()));
        assert!(!store_visible(Path::new("/"), dir.path()));
    }
}
