//! `kiln setup`: make a root's store visible at the logical store dir for
//! the whole system, once, as root; after it `./result/bin/app` runs
//! directly and `kiln run` needs no namespace.
//!
//! - `--symlink` (the default): `/kiln/store` becomes a symlink to
//!   `ROOT/kiln/store`. Survives reboots; nothing else to do.
//! - `--bind`: `/kiln/store` becomes a directory with the physical store
//!   bind-mounted on it. Programs see a real directory (some tools resolve
//!   symlinks and would print the physical path); it lasts until reboot
//!   unless the printed `/etc/fstab` line is added.
//!
//! `--undo` removes the symlink or the mount and the directories setup
//! made, when empty.

use std::path::{Path, PathBuf};

use kiln_store::store::StoreConfig;

use crate::error::ShellError;
use crate::view::store_visible;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Symlink,
    Bind,
}

/// What was done, one line each, for the CLI to print.
pub fn setup(config: &StoreConfig, method: Method, undo: bool) -> Result<Vec<String>, ShellError> {
    let logical = PathBuf::from(config.store_dir.as_str());
    let physical = config.physical_store_dir();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ShellError::Usage(format!(
            "kiln setup changes {} for every user of this machine: run it as root \
             (sudo kiln setup --root {}); without it, `kiln run` and `kiln shell` see the \
             store in a namespace of their own",
            logical.display(),
            config.root.display()
        )));
    }
    if undo {
        return undo_setup(&logical, &physical);
    }
    if !physical.is_dir() {
        return Err(ShellError::Usage(format!(
            "there is no store at {}: check --root (or build something first)",
            physical.display()
        )));
    }
    if store_visible(&logical, &physical) {
        return Ok(vec![format!(
            "{} already shows the store at {}: nothing to do",
            logical.display(),
            physical.display()
        )]);
    }
    match std::fs::symlink_metadata(&logical) {
        Err(_) => {}
        Ok(meta) if meta.is_dir() && is_empty_dir(&logical) && method == Method::Bind => {}
        Ok(_) => {
            return Err(ShellError::Usage(format!(
                "{} exists and is not this store ({}): remove it first, or `kiln setup --undo` \
                 with the --root it was set up for",
                logical.display(),
                physical.display()
            )));
        }
    }
    let parent = logical.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(ShellError::io("creating", parent))?;
    let mut done = Vec::new();
    match method {
        Method::Symlink => {
            std::os::unix::fs::symlink(&physical, &logical)
                .map_err(ShellError::io("creating", &logical))?;
            done.push(format!(
                "{} -> {} (a symlink; `kiln setup --undo` removes it)",
                logical.display(),
                physical.display()
            ));
        }
        Method::Bind => {
            std::fs::create_dir_all(&logical).map_err(ShellError::io("creating", &logical))?;
            bind(&physical, &logical)?;
            done.push(format!(
                "{} is bound on {} until reboot; to keep it, add to /etc/fstab:\n  {} {} none bind 0 0",
                physical.display(),
                logical.display(),
                physical.display(),
                logical.display()
            ));
        }
    }
    Ok(done)
}

fn undo_setup(logical: &Path, physical: &Path) -> Result<Vec<String>, ShellError> {
    let mut done = Vec::new();
    match std::fs::symlink_metadata(logical) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if std::fs::read_link(logical).ok().as_deref() != Some(physical) {
                return Err(ShellError::Usage(format!(
                    "{} is a symlink to somewhere else than {}: not removing it",
                    logical.display(),
                    physical.display()
                )));
            }
            std::fs::remove_file(logical).map_err(ShellError::io("removing", logical))?;
            done.push(format!("removed the symlink {}", logical.display()));
        }
        Ok(meta) if meta.is_dir() => {
            if store_visible(logical, physical) {
                let c = std::ffi::CString::new(logical.as_os_str().as_encoded_bytes())
                    .map_err(|_| ShellError::Usage("a store dir with a NUL byte".into()))?;
                // SAFETY: a NUL-terminated path.
                if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
                    return Err(ShellError::io("unmounting", logical)(
                        std::io::Error::last_os_error(),
                    ));
                }
                done.push(format!("unmounted {}", logical.display()));
            }
            if !is_empty_dir(logical) {
                return Err(ShellError::Usage(format!(
                    "{} is not empty (another store?): not removing it",
                    logical.display()
                )));
            }
        }
        Ok(_) => {
            return Err(ShellError::Usage(format!(
                "{} is not what kiln setup makes: not touching it",
                logical.display()
            )));
        }
        Err(_) => done.push(format!("{} was not set up", logical.display())),
    }
    // The directories setup made, while empty.
    let mut dir = Some(logical);
    while let Some(d) = dir {
        if d == Path::new("/") {
            break;
        }
        match std::fs::remove_dir(d) {
            Ok(()) => done.push(format!("removed the empty directory {}", d.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => break,
        }
        dir = d.parent();
    }
    Ok(done)
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none())
}

fn bind(src: &Path, dst: &Path) -> Result<(), ShellError> {
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| ShellError::Usage("a path with a NUL byte".into()))
    };
    let (s, d) = (c(src)?, c(dst)?);
    // SAFETY: NUL-terminated paths; a bind mount needs no data.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(ShellError::io("bind-mounting on", dst)(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
