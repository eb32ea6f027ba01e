//! Finding the roots of the garbage collector, and adding permanent ones.
//!
//! ```text
//! STATE/gcroots/
//!   auto/<nix32 sha1 of LINK>  -> LINK        indirect roots: LINK (a `result`
//!                                             link anywhere) -> store path
//!   shells/<name>              -> store path  shell roots (developer shells)
//!   shells/<name>/project      -> a file      ... tied to a project file: when
//!                                             it is gone, the links beside it
//!                                             hold nothing (and a collector
//!                                             removes the directory)
//!   <anything else>            -> store path  direct roots (`kiln store add-root`
//!                                             with a link inside gcroots/)
//! STATE/temproots/<pid>-<n>                   temp roots of live processes
//! ```
//!
//! A symlink in `gcroots/` (at any depth) whose target is outside the
//! store is followed once more: if that is a symlink into the store, the
//! store path is a root held by it. So an indirect root is a link
//! registered in `auto/`; when the link is removed or points elsewhere,
//! the path is no longer held (and the collector deletes the stale
//! `auto/` entry). A target may be the logical path or the physical one
//! (`ROOT` + logical), and may name a file inside a store path.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::gc::temp_roots::read_temp_roots;
use crate::hash::{Hash, HashAlgo};
use crate::store::{Store, StoreError};
use crate::store_path::StorePath;

/// What kind of root holds a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RootKind {
    /// A link outside the state dir (a `result` link), registered in
    /// `gcroots/auto`.
    Indirect,
    /// A link inside `gcroots/`.
    Direct,
    /// A link in `gcroots/shells/`.
    Shell,
    /// Named by a live kiln process.
    Temp,
}

impl RootKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RootKind::Indirect => "indirect",
            RootKind::Direct => "direct",
            RootKind::Shell => "shell",
            RootKind::Temp => "temp",
        }
    }
}

/// Who holds a root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// A symlink: the `result` link of an indirect root, the entry in
    /// `gcroots/` of a direct or shell root.
    Link(PathBuf),
    /// A running kiln process.
    Process { pid: u32 },
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Link(link) => write!(f, "{}", link.display()),
            Holder::Process { pid } => match process_command(*pid) {
                Some(cmd) => write!(f, "process {pid} ({cmd})"),
                None => write!(f, "process {pid}"),
            },
        }
    }
}

/// One root: a store path (valid or not) and what holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Root {
    pub path: StorePath,
    pub kind: RootKind,
    pub holder: Holder,
}

impl Store {
    /// `STATE/gcroots`.
    pub fn gc_roots_dir(&self) -> PathBuf {
        self.state_dir().join("gcroots")
    }

    /// `STATE/gcroots/shells`: where developer shells put their roots.
    pub fn shell_roots_dir(&self) -> PathBuf {
        self.gc_roots_dir().join("shells")
    }

    /// Every root: permanent ones and the temp roots of live processes,
    /// sorted. Nothing is changed on disk.
    pub fn roots(&self) -> Result<Vec<Root>, StoreError> {
        self.find_roots(false)
    }

    /// The roots; with `remove_stale` (a collector, under the gc lock),
    /// stale `auto/` entries and temp roots files of dead processes are
    /// deleted.
    pub(crate) fn find_roots(&self, remove_stale: bool) -> Result<Vec<Root>, StoreError> {
        let mut roots = Vec::new();
        let top = self.gc_roots_dir();
        let mut dirs = vec![top.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("reading", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(StoreError::io("reading", &dir))?;
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if is_stale_shell_dir(&top, &path) {
                        if remove_stale {
                            tracing::info!(
                                "removing stale shell root {} (its project file is gone)",
                                path.display()
                            );
                            let _ = fs::remove_dir_all(&path);
                        }
                        continue;
                    }
                    dirs.push(path);
                } else if kind.is_symlink() {
                    let under = path.strip_prefix(&top).unwrap_or(&path);
                    let first = under.components().next();
                    let kind = match first {
                        Some(c) if c.as_os_str() == "auto" => RootKind::Indirect,
                        Some(c) if c.as_os_str() == "shells" => RootKind::Shell,
                        _ => RootKind::Direct,
                    };
                    self.root_from_link(&path, kind, remove_stale, &mut roots)?;
                }
            }
        }
        for process in read_temp_roots(&self.state_dir(), remove_stale)? {
            for printed in &process.paths {
                if let Ok(path) = self.store_dir().parse_path(printed) {
                    roots.push(Root {
                        path,
                        kind: RootKind::Temp,
                        holder: Holder::Process { pid: process.pid },
                    });
                }
            }
        }
        roots.sort();
        roots.dedup();
        Ok(roots)
    }

    /// The root an entry of `gcroots/` gives, if any.
    fn root_from_link(
        &self,
        entry: &Path,
        kind: RootKind,
        remove_stale: bool,
        roots: &mut Vec<Root>,
    ) -> Result<(), StoreError> {
        let Ok(target) = fs::read_link(entry) else {
            return Ok(());
        };
        let target = absolute_from(entry, &target);
        if let Some(path) = self.store_path_in(&target) {
            roots.push(Root {
                path,
                kind,
                holder: Holder::Link(entry.to_path_buf()),
            });
            return Ok(());
        }
        // One more hop: the link the entry points at.
        match fs::read_link(&target) {
            Ok(next) => {
                if let Some(path) = self.store_path_in(&absolute_from(&target, &next)) {
                    roots.push(Root {
                        path,
                        kind,
                        holder: Holder::Link(target),
                    });
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && kind == RootKind::Indirect
                    && remove_stale
                    && fs::symlink_metadata(&target).is_err() =>
            {
                tracing::info!(
                    "removing stale root registration {} (its link {} is gone)",
                    entry.display(),
                    target.display()
                );
                let _ = fs::remove_file(entry);
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// The store path `target` is or is inside, spelt logically or
    /// physically.
    pub fn store_path_in(&self, target: &Path) -> Option<StorePath> {
        let logical = Path::new(self.store_dir().as_str());
        let physical = self.physical_store_dir();
        let rest = target
            .strip_prefix(physical)
            .or_else(|_| target.strip_prefix(logical))
            .ok()?;
        match rest.components().next()? {
            Component::Normal(base) => StorePath::from_base_name(base.to_str()?).ok(),
            _ => None,
        }
    }

    /// Register `link` (a symlink outside the state dir pointing into the
    /// store, such as a `result` link) as an indirect root:
    /// `gcroots/auto/<nix32 sha1 of its absolute path>` points at it.
    pub fn add_indirect_root(&self, link: &Path) -> Result<(), StoreError> {
        let link = std::path::absolute(link).map_err(StoreError::io("resolving", link))?;
        let auto = self.gc_roots_dir().join("auto");
        fs::create_dir_all(&auto).map_err(StoreError::io("creating", &auto))?;
        let key = Hash::digest(HashAlgo::Sha1, link.as_os_str().as_encoded_bytes()).to_nix32();
        replace_symlink(&link, &auto.join(key))
    }

    /// Make `link` a symlink to `path` that holds it: a direct root when
    /// `link` is inside `gcroots/`, an indirect one (registered in `auto/`)
    /// anywhere else. `path` is made a temp root first and must be valid,
    /// so a collector running meanwhile cannot delete it in between. An
    /// existing symlink at `link` is replaced; anything else is refused.
    pub fn add_root(&self, path: &StorePath, link: &Path) -> Result<PathBuf, StoreError> {
        self.add_temp_roots(std::slice::from_ref(path))?;
        if !self.is_valid(path)? {
            return Err(StoreError::NotValid(self.print_path(path)));
        }
        let link = std::path::absolute(link).map_err(StoreError::io("resolving", link))?;
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(StoreError::io("creating", parent))?;
        }
        replace_symlink(&self.real_path(path), &link)?;
        let gcroots = std::path::absolute(self.gc_roots_dir())
            .map_err(StoreError::io("resolving", &self.gc_roots_dir()))?;
        if !link.starts_with(&gcroots) {
            self.add_indirect_root(&link)?;
        }
        Ok(link)
    }
}

/// A developer shell's root directory (`gcroots/shells/<name>/`) whose
/// `project` link names a file that is gone: its roots no longer hold.
fn is_stale_shell_dir(top: &Path, dir: &Path) -> bool {
    let in_shells = dir
        .strip_prefix(top)
        .is_ok_and(|rest| rest.parent() == Some(Path::new("shells")));
    if !in_shells {
        return false;
    }
    let project = dir.join("project");
    match fs::read_link(&project) {
        Ok(_) => matches!(fs::metadata(&project), Err(e) if e.kind() == io::ErrorKind::NotFound),
        Err(_) => false,
    }
}

/// `target` of the symlink `link`, made absolute against its directory.
fn absolute_from(link: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() {
        return target.to_path_buf();
    }
    let base = link.parent().unwrap_or(Path::new("/"));
    // Lexically: `..` drops a component, as the kernel would for a
    // directory that is not itself a symlink.
    let mut out = base.to_path_buf();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Create or atomically replace a symlink (never anything else).
pub(crate) fn replace_symlink(target: &Path, link: &Path) -> Result<(), StoreError> {
    if let Ok(meta) = fs::symlink_metadata(link)
        && !meta.file_type().is_symlink()
    {
        return Err(StoreError::NotASymlink(link.to_path_buf()));
    }
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(StoreError::io("creating", &tmp))?;
    fs::rename(&tmp, link).map_err(StoreError::io("creating", link))
}

/// A short form of a process's command line, for listings.
fn process_command(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let mut line = words.join(" ");
    if line.len() > 80 {
        let mut cut = 77;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    (!line.is_empty()).then_some(line)
}
