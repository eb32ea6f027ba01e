//! The evaluator's one door to the file system.
//!
//! Every file an evaluation reads (`import`, `readFile`, `hashFile`),
//! every path it stats (`pathExists`, `import` of a directory, `<...>`
//! lookups) or lists (`readDir`, `builtins.path`'s filter), and every path
//! it hands to the store to add (`"${./src}"`, `builtins.path`) goes through
//! [`EvalIO`]. [`RealIO`] is the real file system; it records each path
//! it was asked about, in order, once: [`EvalIO::accessed`]. An evaluation
//! depends on exactly those paths, so developer shells can key a cache of
//! it on them.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashSet;

/// The type of a file, as `readDir` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Unknown,
}

impl FileKind {
    fn of(t: std::fs::FileType) -> FileKind {
        if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Directory
        } else if t.is_file() {
            FileKind::Regular
        } else {
            FileKind::Unknown
        }
    }

    /// The name `readDir` and path filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Regular => "regular",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Unknown => "unknown",
        }
    }
}

/// What evaluation may ask of the file system.
pub trait EvalIO {
    /// The whole contents of a file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The type of `path` itself (a final symlink is not followed).
    fn symlink_kind(&self, path: &Path) -> io::Result<FileKind>;
    /// The type of what `path` leads to (symlinks followed).
    fn kind(&self, path: &Path) -> io::Result<FileKind>;
    /// The entries of a directory (unsorted), each with its own type.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(std::ffi::OsString, FileKind)>>;
    /// The absolute path without symlinks or `..`.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// `path` (a file or tree) is about to be added to the store, which
    /// reads it itself.
    fn adding(&self, path: &Path);
    /// Every path read, stat'ed, listed or added so far, in order, once.
    fn accessed(&self) -> Vec<PathBuf>;
}

/// The real file system, recording what was asked.
#[derive(Default)]
pub struct RealIO {
    accessed: RefCell<(Vec<PathBuf>, FxHashSet<PathBuf>)>,
}

impl RealIO {
    fn record(&self, path: &Path) {
        let mut accessed = self.accessed.borrow_mut();
        let (order, seen) = &mut *accessed;
        if !seen.contains(path) {
            seen.insert(path.to_path_buf());
            order.push(path.to_path_buf());
        }
    }
}

impl EvalIO for RealIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.record(path);
        std::fs::read(path)
    }

    fn symlink_kind(&self, path: &Path) -> io::Result<FileKind> {
        self.record(path);
        Ok(FileKind::of(std::fs::symlink_metadata(path)?.file_type()))
    }

    fn kind(&self, path: &Path) -> io::Result<FileKind> {
        self.record(path);
        Ok(FileKind::of(std::fs::metadata(path)?.file_type()))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(std::ffi::OsString, FileKind)>> {
        self.record(path);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let kind = entry.file_type().map_or(FileKind::Unknown, FileKind::of);
            out.push((entry.file_name(), kind));
        }
        Ok(out)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.record(path);
        std::fs::canonicalize(path)
    }

    fn adding(&self, path: &Path) {
        self.record(path);
    }

    fn accessed(&self) -> Vec<PathBuf> {
        self.accessed.borrow().0.clone()
    }
}

#[cfg(test)]
mod tests {
    use crate::{EvalOptions, Evaluation};

    #[test]
    fn every_file_an_evaluation_touches_is_recorded_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("lib.nix"), "x: x + 1").unwrap();
        std::fs::write(root.join("data.txt"), "41").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/default.nix"), "2").unwrap();
        std::fs::write(root.join("src"), "source").unwrap();
        let main = root.join("main.nix");
        std::fs::write(
            &main,
            r#"let
                 f = import ./lib.nix;
                 n = builtins.fromJSON (builtins.readFile ./data.txt);
               in [
                 (f n)
                 (import ./sub)
                 (builtins.pathExists ./missing)
                 (builtins.attrNames (builtins.readDir ./sub))
                 (builtins.hashFile "sha256" ./data.txt)
                 "${./src}"
               ]"#,
        )
        .unwrap();
        let mut session = Evaluation::new(EvalOptions::default());
        let value = session.eval_file(&main).expect("evaluates");
        session
            .render(&value, crate::OutputFormat::Nix, true)
            .expect("renders");
        let accessed = session.accessed_paths();
        for name in [
            "main.nix",
            "lib.nix",
            "data.txt",
            "sub",
            "sub/default.nix",
            "missing",
            "src",
        ] {
            let path = root.join(name);
            let count = accessed.iter().filter(|p| **p == path).count();
            assert_eq!(count, 1, "{name} in {accessed:?}");
        }
        assert!(
            accessed.iter().all(|p| p.starts_with(&root)),
            "{accessed:?}"
        );
    }
}
