//! `kiln store optimise`: identical files of the store hard-linked
//! through `STORE/.links`, as Nix's optimiser does.
//!
//! # The rules (Nix's)
//!
//! - Only regular files are linked (directories are walked, symlinks are
//!   left alone). A writable regular file is skipped with a warning: the
//!   store's files are read-only, so something modified it.
//! - A file's key is the SHA-256 of its NAR serialisation, which includes
//!   the executable bit, so an executable and a plain file with the same
//!   bytes stay apart (their modes differ). `.links/<nix32 of that hash>`
//!   is the first such file seen, hard-linked there.
//! - A file that is already the `.links` entry's inode is skipped (without
//!   hashing when its inode is one of `.links`' and it has other links).
//! - Empty files are linked too; when a file system refuses more links to
//!   one inode (`EMLINK`), the file is left as it is.
//!
//! # Why it is safe beside readers, collectors and a kill
//!
//! - A duplicate is replaced by `rename`: a new link to the `.links`
//!   entry is made at `.links/.tmp-<pid>-<n>` (in `.links`, not beside the
//!   file: a kill there must not leave an extra file inside a store path,
//!   which would change its NAR hash), then renamed over the file. A
//!   reader opens either the old inode or the new one, both complete and
//!   with the same bytes.
//! - The directory holding the file is read-only (0555, mtime 1): it is
//!   made writable for the renames of that directory and then given back
//!   its mode and times. Before it is touched, its path is written to
//!   `STATE/optimise.pending`; a run killed in between leaves that file,
//!   and the next `kiln store optimise` restores the directory first
//!   (as does `kiln store verify --repair`, which canonicalises metadata).
//! - One optimiser at a time (`STATE/optimise.lock`), so the next run may
//!   remove the `.links/.tmp-*` names a killed one left.
//! - Every valid path is added as a temp root of this process before the
//!   walk (under the shared `gc.lock`, as any temp root): a collector
//!   running meanwhile keeps them, and paths it deleted before are no
//!   longer valid and are skipped. The collector removes `.links` entries
//!   whose link count is 1 (nothing in the store uses them) after a
//!   collection; if that happens between our check and our link, the
//!   `link` fails with `ENOENT` and the file is left for the next run.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, CWD, FlockOperation, Timespec, Timestamps};

use crate::gc::temp_roots::flock;
use crate::hash::HashAlgo;
use crate::nar::hash_path;
use crate::store::{Store, StoreError};
use crate::verify::LINKS_DIR;

/// Names of temporary links inside `.links` start with this.
const TMP_LINK_PREFIX: &str = ".tmp-";

/// What to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptimiseOptions {
    /// Only count what would be linked; change nothing.
    pub dry_run: bool,
}

/// What an optimisation did (or, dry, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptimiseReport {
    /// Valid paths walked.
    pub paths: u64,
    /// Regular files looked at.
    pub files: u64,
    /// Files replaced by a link to their `.links` entry.
    pub files_linked: u64,
    /// The sizes of the files replaced: the bytes no longer stored twice.
    pub bytes_saved: u64,
}

impl Store {
    /// Hard-link identical files of the valid paths through `.links` (see
    /// the module docs).
    pub fn optimise(&self, options: OptimiseOptions) -> Result<OptimiseReport, StoreError> {
        let state = self.state_dir();
        let _lock = OptimiseLock::take(&state)?;
        let links = self.physical_store_dir().join(LINKS_DIR);
        let pending = state.join("optimise.pending");
        if !options.dry_run {
            recover(&pending, &links)?;
            fs::create_dir_all(&links).map_err(StoreError::io("creating", &links))?;
        }
        let mut run = Run {
            links: links.clone(),
            pending,
            dry_run: options.dry_run,
            linked_inodes: link_inodes(&links)?,
            would_link: HashSet::new(),
            report: OptimiseReport::default(),
        };
        let all = self.all_valid_paths()?;
        self.add_temp_roots(&all)?;
        let valid = self.valid_among(&all)?;
        for (path, valid) in all.iter().zip(valid) {
            if !valid {
                continue; // collected meanwhile
            }
            run.report.paths += 1;
            let real = self.real_path(path);
            match fs::symlink_metadata(&real) {
                Ok(meta) if meta.is_dir() => run.directory(&real, meta)?,
                Ok(meta) if meta.is_file() => {
                    // A store path that is one file: its directory is the
                    // store's own, writable and not canonical.
                    let mut dups = Vec::new();
                    run.file(&real, &meta, &mut dups)?;
                    run.replace(self.physical_store_dir(), None, dups)?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::warn!("{} is valid but missing", real.display());
                }
                Err(e) => return Err(StoreError::io("reading", &real)(e)),
            }
        }
        Ok(run.report)
    }
}

/// `STATE/optimise.lock`, held exclusively for the whole run.
struct OptimiseLock {
    _file: File,
}

impl OptimiseLock {
    fn take(state: &Path) -> Result<OptimiseLock, StoreError> {
        let path = state.join("optimise.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(StoreError::io("opening", &path))?;
        flock(&file, FlockOperation::LockExclusive).map_err(StoreError::io("locking", &path))?;
        Ok(OptimiseLock { _file: file })
    }
}

/// Finish what a killed run left: the directory it had made writable, and
/// its temporary links.
fn recover(pending: &Path, links: &Path) -> Result<(), StoreError> {
    match fs::read(pending) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let mut lines = text.lines();
            if let (Some(dir), Some(mode), Some(sec), Some(nsec)) =
                (lines.next(), lines.next(), lines.next(), lines.next())
                && let (Ok(mode), Ok(sec), Ok(nsec)) =
                    (mode.parse::<u32>(), sec.parse::<i64>(), nsec.parse::<i64>())
            {
                let dir = Path::new(dir);
                if dir.is_dir() {
                    tracing::info!("restoring {} after an interrupted optimise", dir.display());
                    restore_dir(dir, mode, sec, nsec)?;
                }
            }
            let _ = fs::remove_file(pending);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("reading", pending)(e)),
    }
    let entries = match fs::read_dir(links) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("reading", links)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("reading", links))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TMP_LINK_PREFIX))
        {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The inodes of the `.links` entries.
fn link_inodes(links: &Path) -> Result<HashSet<u64>, StoreError> {
    let mut inodes = HashSet::new();
    let entries = match fs::read_dir(links) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(inodes),
        Err(e) => return Err(StoreError::io("reading", links)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("reading", links))?;
        if let Ok(meta) = entry.metadata() {
            inodes.insert(meta.ino());
        }
    }
    Ok(inodes)
}

/// Give a directory back its mode and times.
fn restore_dir(dir: &Path, mode: u32, sec: i64, nsec: i64) -> Result<(), StoreError> {
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(StoreError::io("restoring the mode of", dir))?;
    let time = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    rustix::fs::utimensat(
        CWD,
        dir,
        &Timestamps {
            last_access: time,
            last_modification: time,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| StoreError::io("restoring the times of", dir)(e.into()))
}

/// A file to replace by a link to its `.links` entry.
struct Duplicate {
    path: PathBuf,
    link: PathBuf,
    size: u64,
}

struct Run {
    links: PathBuf,
    pending: PathBuf,
    dry_run: bool,
    linked_inodes: HashSet<u64>,
    /// Dry run: the link names that would have been made.
    would_link: HashSet<String>,
    report: OptimiseReport,
}

impl Run {
    /// Walk a directory of a store path: its files first (the duplicates
    /// replaced with one mode change of the directory), then below.
    fn directory(&mut self, dir: &Path, meta: fs::Metadata) -> Result<(), StoreError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(StoreError::io("reading", dir))?
            .collect::<Result<_, _>>()
            .map_err(StoreError::io("reading", dir))?;
        names.sort_by_key(|e| e.file_name());
        let mut dups = Vec::new();
        let mut subdirs = Vec::new();
        for entry in names {
            let path = entry.path();
            let child = fs::symlink_metadata(&path).map_err(StoreError::io("reading", &path))?;
            if child.is_dir() {
                subdirs.push((path, child));
            } else if child.is_file() {
                self.file(&path, &child, &mut dups)?;
            }
        }
        self.replace(dir, Some(&meta), dups)?;
        for (path, child) in subdirs {
            self.directory(&path, child)?;
        }
        Ok(())
    }

    /// Decide about one regular file: link it into `.links` if it is the
    /// first of its contents, or queue it for replacement.
    fn file(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
        dups: &mut Vec<Duplicate>,
    ) -> Result<(), StoreError> {
        self.report.files += 1;
        if meta.mode() & 0o200 != 0 {
            tracing::warn!("skipping suspicious writable file {}", path.display());
            return Ok(());
        }
        if meta.nlink() > 1 && self.linked_inodes.contains(&meta.ino()) {
            return Ok(()); // linked already
        }
        let (hash, _) = hash_path(path, HashAlgo::Sha256).map_err(StoreError::Nar)?;
        let name = hash.to_nix32();
        let link = self.links.join(&name);
        match fs::symlink_metadata(&link) {
            Ok(existing) => {
                if existing.ino() == meta.ino() {
                    return Ok(());
                }
                if existing.len() != meta.len() {
                    tracing::warn!(
                        "{} has the hash of {} but not its size: not linking",
                        link.display(),
                        path.display()
                    );
                    return Ok(());
                }
                dups.push(Duplicate {
                    path: path.to_path_buf(),
                    link,
                    size: meta.len(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.dry_run {
                    if !self.would_link.insert(name) {
                        self.report.files_linked += 1;
                        self.report.bytes_saved += meta.len();
                    }
                    return Ok(());
                }
                match fs::hard_link(path, &link) {
                    Ok(()) => {
                        self.linked_inodes.insert(meta.ino());
                    }
                    // Another process made it first: link to theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        dups.push(Duplicate {
                            path: path.to_path_buf(),
                            link,
                            size: meta.len(),
                        });
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {}
                    Err(e) => return Err(StoreError::io("linking into .links", path)(e)),
                }
            }
            Err(e) => return Err(StoreError::io("reading", &link)(e)),
        }
        Ok(())
    }

    /// Replace the duplicates found in `dir`: each by a link to its
    /// `.links` entry, renamed over it. A directory of a store path
    /// (`meta`) is made writable for this and restored after.
    fn replace(
        &mut self,
        dir: &Path,
        meta: Option<&fs::Metadata>,
        dups: Vec<Duplicate>,
    ) -> Result<(), StoreError> {
        if dups.is_empty() {
            return Ok(());
        }
        if self.dry_run {
            for dup in &dups {
                self.report.files_linked += 1;
                self.report.bytes_saved += dup.size;
            }
            return Ok(());
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let mut made_writable = None;
        let mut result = Ok(());
        for dup in dups {
            let tmp = self.links.join(format!(
                "{TMP_LINK_PREFIX}{pid}-{}",
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::hard_link(&dup.link, &tmp) {
                Ok(()) => {}
                // Removed by a collector since we looked, or too many links.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::EMLINK) =>
                {
                    continue;
                }
                Err(e) => {
                    result = Err(StoreError::io("linking", &tmp)(e));
                    break;
                }
            }
            if made_writable.is_none()
                && let Some(meta) = meta
            {
                if let Err(e) = self.make_writable(dir, meta) {
                    let _ = fs::remove_file(&tmp);
                    result = Err(e);
                    break;
                }
                made_writable = Some(meta);
            }
            match fs::rename(&tmp, &dup.path) {
                Ok(()) => {
                    self.report.files_linked += 1;
                    self.report.bytes_saved += dup.size;
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    result = Err(StoreError::io("replacing", &dup.path)(e));
                    break;
                }
            }
        }
        if let Some(meta) = made_writable {
            restore_dir(dir, meta.mode(), meta.mtime(), meta.mtime_nsec())?;
            let _ = fs::remove_file(&self.pending);
        }
        result
    }

    /// Note `dir` in the pending file, then give its owner write access.
    fn make_writable(&self, dir: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
        if meta.mode() & 0o200 != 0 {
            return Ok(());
        }
        let note = format!(
            "{}\n{}\n{}\n{}\n",
            dir.display(),
            meta.mode(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        let tmp = self.pending.with_extension("pending.tmp");
        (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(note.as_bytes())?;
            fs::rename(&tmp, &self.pending)
        })()
        .map_err(StoreError::io("writing", &self.pending))?;
        fs::set_permissions(
            dir,
            fs::Permissions::from_mode((meta.mode() | 0o200) & 0o7777),
        )
        .map_err(StoreError::io("making writable", dir))
    }
}

impl Store {
    /// Remove the `.links` entries nothing in the store uses any more
    /// (link count 1); the bytes they held. Called by the collector.
    pub(crate) fn remove_unused_links(&self) -> u64 {
        let links = self.physical_store_dir().join(LINKS_DIR);
        let Ok(entries) = fs::read_dir(&links) else {
            return 0;
        };
        let mut freed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.starts_with(TMP_LINK_PREFIX))
            {
                continue; // an optimiser's, in use
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.nlink() == 1 && fs::remove_file(entry.path()).is_ok() {
                freed += meta.len();
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests;
