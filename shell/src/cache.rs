//! From an expression to one derivation, with an evaluation cache.
//!
//! Evaluation goes through `Recorder`, an [`EvalIO`] around the real file
//! system that notes, for every path the evaluator touched, what it asked
//! (the bytes of a file, the type of a path, a directory's listing, a
//! canonical path, a tree handed to the store) and a fingerprint of the
//! answer it got: the sha256 of the bytes, the type, the sorted listing, the
//! path, a hash of the whole tree (names, types, executable bits, contents,
//! symlink targets).
//!
//! The cache entry (`STATE/shell-cache/<key>.json`) is keyed by a hash of
//! everything else evaluation depends on: the file or expression, the
//! attribute paths, every `--arg`/`--argstr`, the search path, the base
//! directory, the system, the store dir and the kiln binary itself. It
//! holds the fingerprints and the result (the `.drv` path and the output
//! named). A lookup recomputes each fingerprint; when every one matches and
//! the `.drv` is still in the store, the result is used without evaluating.
//!
//! Not seen by the cache (as with any evaluation cache): `builtins.getEnv`,
//! `currentTime` and other impure builtins. `--no-cache` (the CLI's) skips
//! the lookup.

use std::cell::RefCell;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use kiln_eval::eval_io::FileKind;
use kiln_eval::get_drvs::DrvFinder;
use kiln_eval::{AutoArg, EvalIO, EvalOptions, EvalStore, Evaluation, KilnEvalStore, RealIO};
use kiln_store::store::{Store, StoreConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ShellError;

/// What to evaluate.
#[derive(Debug, Clone)]
pub enum Expression {
    /// A file (a directory means its `default.nix`).
    File(PathBuf),
    /// An expression's text (`-E`, or the one `-p` makes).
    Text(String),
}

/// An expression and how to get one derivation from it.
#[derive(Debug, Clone)]
pub struct Source {
    pub expression: Expression,
    /// Attribute paths (`-A`); the whole value if empty.
    pub attrs: Vec<String>,
    pub auto_args: Vec<(String, AutoArg)>,
    pub options: EvalOptions,
}

/// The derivation an expression gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The `.drv` path, logical.
    pub drv_path: String,
    /// The output the value named (`out` unless selected).
    pub output: String,
}

/// How a lookup went, for `-v` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    /// No entry, or a fingerprint that differs: evaluated.
    Miss,
    /// Asked not to look.
    Skipped,
}

const CACHE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    inputs: Vec<Input>,
    resolved: Resolved,
}

/// One path evaluation touched, what it asked and what it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Input {
    path: PathBuf,
    access: Access,
    fingerprint: String,
    /// For contents (a file read, a tree added): the inode numbers, sizes
    /// and change times seen with them. While they are the same the
    /// contents are not hashed again (as git's index does); when they
    /// differ, the contents decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stat: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Access {
    Read,
    Kind,
    SymlinkKind,
    List,
    Canonical,
    Added,
}

/// The evaluator's file system, recording what it was asked and saw.
#[derive(Default)]
struct Recorder {
    real: RealIO,
    seen: RefCell<Vec<Input>>,
}

impl Recorder {
    fn note(&self, path: &Path, access: Access, fingerprint: String) {
        self.note_with_stat(path, access, fingerprint, None);
    }

    /// `stat`: the metadata print taken before the contents were read, kept
    /// only when it is still the same after (nothing changed meanwhile).
    fn note_with_stat(
        &self,
        path: &Path,
        access: Access,
        fingerprint: String,
        stat: Option<String>,
    ) {
        let stat = stat.filter(|before| stat_print(path, access).as_ref() == Some(before));
        let mut seen = self.seen.borrow_mut();
        let input = Input {
            path: path.to_path_buf(),
            access,
            fingerprint,
            stat,
        };
        if !seen
            .iter()
            .any(|i| i.path == input.path && i.access == input.access)
        {
            seen.push(input);
        }
    }
}

fn error_print(err: &io::Error) -> String {
    format!("error:{:?}", err.kind())
}

fn kind_print<T>(result: &io::Result<T>, f: impl Fn(&T) -> String) -> String {
    match result {
        Ok(v) => f(v),
        Err(e) => error_print(e),
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn listing_print(entries: &[(std::ffi::OsString, FileKind)]) -> String {
    let mut names: Vec<String> = entries
        .iter()
        .map(|(n, k)| format!("{}\0{}", n.to_string_lossy(), k.as_str()))
        .collect();
    names.sort();
    hex_sha256(names.join("\n").as_bytes())
}

impl EvalIO for Recorder {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let before = stat_print(path, Access::Read);
        let result = self.real.read_file(path);
        let print = kind_print(&result, |b| hex_sha256(b));
        self.note_with_stat(path, Access::Read, print, before);
        result
    }

    fn symlink_kind(&self, path: &Path) -> io::Result<FileKind> {
        let result = self.real.symlink_kind(path);
        let print = kind_print(&result, |k| k.as_str().to_owned());
        self.note(path, Access::SymlinkKind, print);
        result
    }

    fn kind(&self, path: &Path) -> io::Result<FileKind> {
        let result = self.real.kind(path);
        self.note(
            path,
            Access::Kind,
            kind_print(&result, |k| k.as_str().to_owned()),
        );
        result
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(std::ffi::OsString, FileKind)>> {
        let result = self.real.read_dir(path);
        self.note(
            path,
            Access::List,
            kind_print(&result, |e| listing_print(e)),
        );
        result
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let result = self.real.canonicalize(path);
        let print = kind_print(&result, |p| p.to_string_lossy().into_owned());
        self.note(path, Access::Canonical, print);
        result
    }

    fn adding(&self, path: &Path) {
        self.real.adding(path);
        let before = stat_print(path, Access::Added);
        let print = tree_print(path);
        self.note_with_stat(path, Access::Added, print, before);
    }

    fn accessed(&self) -> Vec<PathBuf> {
        self.real.accessed()
    }
}

/// The fingerprint `access` of `path` has now.
fn fingerprint(path: &Path, access: Access) -> String {
    match access {
        Access::Read => kind_print(&std::fs::read(path), |b| hex_sha256(b)),
        Access::Kind => kind_print(&RealIO::default().kind(path), |k| k.as_str().to_owned()),
        Access::SymlinkKind => kind_print(&RealIO::default().symlink_kind(path), |k| {
            k.as_str().to_owned()
        }),
        Access::List => kind_print(&RealIO::default().read_dir(path), |e| listing_print(e)),
        Access::Canonical => kind_print(&std::fs::canonicalize(path), |p| {
            p.to_string_lossy().into_owned()
        }),
        Access::Added => tree_print(path),
    }
}

/// The metadata print of what `access` read at `path` (see
/// [`Input::stat`]); `None` when it is not about contents or cannot be had.
fn stat_print(path: &Path, access: Access) -> Option<String> {
    match access {
        Access::Read => {
            let meta = std::fs::metadata(path).ok()?;
            meta.is_file().then(|| meta_print(&meta))
        }
        Access::Added => {
            let mut hasher = Sha256::new();
            stat_tree(path, &mut hasher).ok()?;
            Some(hex(&hasher.finalize()))
        }
        _ => None,
    }
}

fn meta_print(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{}:{}:{}:{:o}:{}.{}:{}.{}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mode(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

fn stat_tree(path: &Path, hasher: &mut Sha256) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    hasher.update(meta_print(&meta).as_bytes());
    if meta.is_dir() {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            hasher.update(name.as_encoded_bytes());
            hasher.update([0]);
            stat_tree(&path.join(&name), hasher)?;
        }
    }
    hasher.update(b")");
    Ok(())
}

/// A hash of a whole tree as the store would add it.
fn tree_print(path: &Path) -> String {
    let mut hasher = Sha256::new();
    match hash_tree(path, &mut hasher) {
        Ok(()) => hex(&hasher.finalize()),
        Err(e) => error_print(&e),
    }
}

fn hash_tree(path: &Path, hasher: &mut Sha256) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        hasher.update(b"l");
        hasher.update(std::fs::read_link(path)?.as_os_str().as_encoded_bytes());
        hasher.update([0]);
    } else if kind.is_dir() {
        hasher.update(b"d");
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            hasher.update(name.as_encoded_bytes());
            hasher.update([0]);
            hash_tree(&path.join(&name), hasher)?;
        }
        hasher.update(b")");
    } else {
        let exec = meta.permissions().mode() & 0o111 != 0;
        hasher.update(if exec { b"x" } else { b"f" });
        hasher.update(meta.len().to_le_bytes());
        let mut file = std::fs::File::open(path)?;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(())
}

impl Source {
    /// The cache key: everything evaluation depends on besides the files
    /// it reads.
    fn key(&self, config: &StoreConfig) -> String {
        let mut hasher = Sha256::new();
        let mut part = |label: &str, text: &str| {
            hasher.update(label.as_bytes());
            hasher.update([0]);
            hasher.update(text.len().to_le_bytes());
            hasher.update(text.as_bytes());
        };
        part("version", &CACHE_VERSION.to_string());
        part("kiln", &binary_identity());
        match &self.expression {
            Expression::File(file) => part("file", &absolute(file).to_string_lossy()),
            Expression::Text(text) => part("text", text),
        }
        for attr in &self.attrs {
            part("attr", attr);
        }
        for (name, arg) in &self.auto_args {
            part("arg", &format!("{name}={arg:?}"));
        }
        part("search", &format!("{:?}", self.options.search_path));
        part("base", &self.options.base_dir.to_string_lossy());
        part("system", &self.options.current_system);
        part("store", config.store_dir.as_str());
        part("root", &config.root.to_string_lossy());
        hex(&hasher.finalize()[..20])
    }
}

/// The kiln executable (path, size, modification time): a new kiln may
/// evaluate differently.
fn binary_identity() -> String {
    use std::os::unix::fs::MetadataExt;
    match std::env::current_exe().and_then(|exe| Ok((std::fs::metadata(&exe)?, exe))) {
        Ok((meta, exe)) => format!(
            "{}:{}:{}.{}:{}",
            exe.display(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            env!("CARGO_PKG_VERSION")
        ),
        Err(_) => env!("CARGO_PKG_VERSION").to_owned(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `STATE/shell-cache`.
pub fn cache_dir(config: &StoreConfig) -> PathBuf {
    config.state_dir().join("shell-cache")
}

/// The derivation `source` names: from the cache when every file and
/// argument is as it was (and `use_cache`), by evaluating otherwise (and
/// the cache entry is written).
pub fn resolve(
    config: &StoreConfig,
    source: &Source,
    use_cache: bool,
) -> Result<(Resolved, CacheOutcome), ShellError> {
    let key = source.key(config);
    let file = cache_dir(config).join(format!("{key}.json"));
    if use_cache && let Some(resolved) = lookup(config, &file) {
        tracing::info!("evaluation cache hit: {}", file.display());
        return Ok((resolved, CacheOutcome::Hit));
    }
    let job = source.clone();
    let job_config = config.clone();
    let (resolved, inputs) = kiln_eval::run_with_big_stack(move || evaluate(&job_config, &job))?;
    let entry = Entry {
        version: CACHE_VERSION,
        inputs,
        resolved: resolved.clone(),
    };
    if let Err(err) = write_entry(&file, &entry) {
        tracing::warn!(
            "could not write the evaluation cache {}: {err}",
            file.display()
        );
    }
    let outcome = if use_cache {
        CacheOutcome::Miss
    } else {
        CacheOutcome::Skipped
    };
    Ok((resolved, outcome))
}

fn lookup(config: &StoreConfig, file: &Path) -> Option<Resolved> {
    let bytes = std::fs::read(file).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    if entry.version != CACHE_VERSION {
        return None;
    }
    for input in &entry.inputs {
        if input.stat.is_some() && stat_print(&input.path, input.access) == input.stat {
            continue;
        }
        let now = fingerprint(&input.path, input.access);
        if now != input.fingerprint {
            tracing::info!(
                "evaluation cache: {} changed ({:?})",
                input.path.display(),
                input.access
            );
            return None;
        }
    }
    // The .drv must still be there (a collection may have taken it).
    let drv = config.store_dir.parse_path(&entry.resolved.drv_path).ok()?;
    let real = config.physical_store_dir().join(drv.base_name());
    real.is_file().then_some(entry.resolved)
}

fn write_entry(file: &Path, entry: &Entry) -> io::Result<()> {
    let dir = file.parent().expect("cache files are in a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(entry).map_err(io::Error::other)?)?;
    std::fs::rename(&tmp, file)
}

/// Evaluate on this (big-stack) thread: the one derivation, and what
/// evaluation read.
fn evaluate(config: &StoreConfig, source: &Source) -> Result<(Resolved, Vec<Input>), ShellError> {
    let opened =
        Store::open(config.clone()).map_err(|e| ShellError::store("opening the store", e))?;
    let store = Rc::new(KilnEvalStore::writing(opened));
    let mut session = Evaluation::with_store(source.options.clone(), store.clone());
    let recorder = Rc::new(Recorder::default());
    session.set_io(recorder.clone());
    let found =
        find(&mut session, source).map_err(|err| ShellError::Eval(session.failure(&err)))?;
    store
        .flush()
        .map_err(|e| ShellError::Other(format!("writing the derivations: {e}")))?;
    session.end_without_freeing();
    let resolved = match found.as_slice() {
        [one] => Resolved {
            drv_path: one.drv_path.clone(),
            output: one.output.clone(),
        },
        [] => return Err(ShellError::NoDerivation),
        many => {
            return Err(ShellError::ManyDerivations(
                many.iter().map(|d| d.drv_path.clone()).collect(),
            ));
        }
    };
    let inputs = recorder.seen.borrow().clone();
    Ok((resolved, inputs))
}

fn find(
    session: &mut Evaluation,
    source: &Source,
) -> kiln_eval::EvalResult<Vec<kiln_eval::get_drvs::Instantiated>> {
    let root = match &source.expression {
        Expression::File(file) => session.eval_file(file)?,
        Expression::Text(text) => session.eval_expr(text)?,
    };
    let attr_paths: Vec<&str> = if source.attrs.is_empty() {
        vec![""]
    } else {
        source.attrs.iter().map(String::as_str).collect()
    };
    let mut finder = DrvFinder::default();
    for attr_path in attr_paths {
        let value = session.select_path(root.clone(), attr_path, &source.auto_args)?;
        finder.search(session, &value, &source.auto_args)?;
    }
    finder.instantiate(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_what_was_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.nix");
        std::fs::write(&file, "1").unwrap();
        let recorder = Recorder::default();
        recorder.read_file(&file).unwrap();
        recorder.kind(&dir.path().join("missing")).unwrap_err();
        recorder.adding(dir.path());
        let seen = recorder.seen.borrow().clone();
        assert_eq!(seen.len(), 3);
        for input in &seen {
            assert_eq!(fingerprint(&input.path, input.access), input.fingerprint);
            assert_eq!(stat_print(&input.path, input.access), input.stat);
        }
        assert!(seen[0].stat.is_some() && seen[1].stat.is_none() && seen[2].stat.is_some());
        std::fs::write(&file, "2").unwrap();
        assert_ne!(
            fingerprint(&seen[0].path, seen[0].access),
            seen[0].fingerprint
        );
        // The tree changed too.
        assert_ne!(
            fingerprint(&seen[2].path, seen[2].access),
            seen[2].fingerprint
        );
        // Appearing counts as a change.
        std::fs::write(dir.path().join("missing"), "").unwrap();
        assert_ne!(
            fingerprint(&seen[1].path, seen[1].access),
            seen[1].fingerprint
        );
    }
}
