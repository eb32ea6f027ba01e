//! The GC root of a developer shell, tied to its project file.
//!
//! ```text
//! STATE/gcroots/shells/<nix32 sha1 of the project file>-<selection>/
//!   project        -> the project file (shell.nix, default.nix, the
//!                     directory of a `-p` shell)
//!   <hash>-<name>  -> ROOT/<store dir>/<hash>-<name>   one per path kept:
//!                     the .drv and every input the shell uses
//! ```
//!
//! The store's collector holds every link in `gcroots/shells/` as a shell
//! root, and treats a directory whose `project` link leads nowhere (the
//! file was deleted or moved) as stale: not a root, and removed
//! (`store/src/gc/roots.rs`). `kiln shell --drop-root` removes the
//! directories of a project file.

use std::path::{Path, PathBuf};

use kiln_store::StorePath;
use kiln_store::hash::{Hash, HashAlgo};
use kiln_store::store::Store;

use crate::error::ShellError;

/// The root directory of one shell: a project file and what was selected
/// in it (attribute paths, arguments, packages).
pub fn root_dir(store: &Store, project: &Path, selection: &str) -> PathBuf {
    let file = Hash::digest(HashAlgo::Sha1, project.as_os_str().as_encoded_bytes()).to_nix32();
    let sel = Hash::digest(HashAlgo::Sha1, selection.as_bytes()).to_nix32();
    store
        .shell_roots_dir()
        .join(format!("{file}-{}", &sel[..8]))
}

/// Make `dir` hold exactly `paths` for `project`. Cheap when it already
/// does (links are read, nothing written). Each new link is made by
/// `Store::add_root`: the path is a temp root first and must be valid.
pub fn ensure_root(
    store: &Store,
    dir: &Path,
    project: &Path,
    paths: &[StorePath],
) -> Result<(), ShellError> {
    let project_link = dir.join("project");
    if std::fs::read_link(&project_link).ok().as_deref() != Some(project) {
        std::fs::create_dir_all(dir).map_err(ShellError::io("creating", dir))?;
        let _ = std::fs::remove_file(&project_link);
        std::os::unix::fs::symlink(project, &project_link)
            .map_err(ShellError::io("creating", &project_link))?;
    }
    let mut wanted = std::collections::BTreeSet::new();
    for path in paths {
        let link = dir.join(path.base_name());
        wanted.insert(link.clone());
        let real = store.real_path(path);
        if std::fs::read_link(&link).ok().as_deref() != Some(real.as_path()) {
            store
                .add_root(path, &link)
                .map_err(|e| ShellError::store("registering the shell's GC root", e))?;
        }
    }
    // Links of an earlier version of the shell go.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let link = entry.path();
            if link != project_link && !wanted.contains(&link) {
                let _ = std::fs::remove_file(&link);
            }
        }
    }
    Ok(())
}

/// Remove every shell root of `project`; how many there were.
pub fn drop_roots(store: &Store, project: &Path) -> Result<usize, ShellError> {
    let shells = store.shell_roots_dir();
    let Ok(entries) = std::fs::read_dir(&shells) else {
        return Ok(0);
    };
    let mut dropped = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        if std::fs::read_link(dir.join("project")).ok().as_deref() == Some(project) {
            std::fs::remove_dir_all(&dir).map_err(ShellError::io("removing", &dir))?;
            dropped += 1;
        }
    }
    Ok(dropped)
}
