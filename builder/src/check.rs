//! `--check`: compare a rebuilt output with the valid one, file by file.
//!
//! Both trees are canonical, so only what a NAR records can differ: the
//! set of entries, their types, file contents, the executable bit and
//! symlink targets. Each difference names the file (relative to the output)
//! with, for regular files, both sizes and sha256 hashes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kiln_store::{Hash, HashAlgo, Hasher};

use crate::error::BuildError;

/// What one side of a comparison has at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        size: u64,
        sha256: String,
        executable: bool,
    },
    Symlink(PathBuf),
    Directory,
    Missing,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::File {
                size,
                sha256,
                executable,
            } => write!(
                f,
                "{}file, {size} bytes, {sha256}",
                if *executable { "executable " } else { "" }
            ),
            Entry::Symlink(target) => write!(f, "symlink to {}", target.display()),
            Entry::Directory => write!(f, "directory"),
            Entry::Missing => write!(f, "absent"),
        }
    }
}

/// One file that differs between the valid output and the rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Relative to the output's root; empty for the root itself.
    pub path: PathBuf,
    pub valid: Entry,
    pub rebuilt: Entry,
}

/// All differences between the trees at `valid` and `rebuilt`.
pub fn compare_trees(valid: &Path, rebuilt: &Path) -> Result<Vec<Difference>, BuildError> {
    let mut diffs = Vec::new();
    compare_at(valid, rebuilt, PathBuf::new(), &mut diffs)?;
    Ok(diffs)
}

fn compare_at(
    valid: &Path,
    rebuilt: &Path,
    rel: PathBuf,
    diffs: &mut Vec<Difference>,
) -> Result<(), BuildError> {
    let a = entry(valid)?;
    let b = entry(rebuilt)?;
    if a == Entry::Directory && b == Entry::Directory {
        let names_a = dir_names(valid)?;
        let names_b = dir_names(rebuilt)?;
        let mut all: Vec<&OsString> = names_a.keys().chain(names_b.keys()).collect();
        all.sort();
        all.dedup();
        for name in all {
            compare_at(
                &valid.join(name),
                &rebuilt.join(name),
                rel.join(name),
                diffs,
            )?;
        }
    } else if a != b {
        diffs.push(Difference {
            path: rel,
            valid: a,
            rebuilt: b,
        });
    }
    Ok(())
}

fn dir_names(dir: &Path) -> Result<BTreeMap<OsString, ()>, BuildError> {
    let mut names = BTreeMap::new();
    for e in std::fs::read_dir(dir).map_err(|e| BuildError::io(dir, e))? {
        names.insert(e.map_err(|e| BuildError::io(dir, e))?.file_name(), ());
    }
    Ok(names)
}

fn entry(path: &Path) -> Result<Entry, BuildError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entry::Missing),
        Err(e) => return Err(BuildError::io(path, e)),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        Ok(Entry::Symlink(
            std::fs::read_link(path).map_err(|e| BuildError::io(path, e))?,
        ))
    } else if ft.is_dir() {
        Ok(Entry::Directory)
    } else {
        let mut file = std::fs::File::open(path).map_err(|e| BuildError::io(path, e))?;
        let mut hasher = Hasher::new(HashAlgo::Sha256);
        std::io::copy(&mut file, &mut hasher).map_err(|e| BuildError::io(path, e))?;
        let hash: Hash = hasher.finish();
        Ok(Entry::File {
            size: meta.len(),
            sha256: hash.to_sri(),
            executable: meta.permissions().mode() & 0o100 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_trees_have_no_differences() {
        let d = tempfile::tempdir().unwrap();
        for side in ["a", "b"] {
            std::fs::create_dir_all(d.path().join(side).join("sub")).unwrap();
            std::fs::write(d.path().join(side).join("sub/f"), "same").unwrap();
        }
        assert!(
            compare_trees(&d.path().join("a"), &d.path().join("b"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn lists_changed_added_and_removed_files() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("stamp"), "12:00").unwrap();
        std::fs::write(b.join("stamp"), "12:01:07").unwrap();
        std::fs::write(a.join("old"), "x").unwrap();
        std::fs::write(b.join("new"), "y").unwrap();
        let diffs = compare_trees(&a, &b).unwrap();
        let paths: Vec<_> = diffs.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(paths, vec!["new", "old", "stamp"]);
        assert_eq!(diffs[0].valid, Entry::Missing);
        assert_eq!(diffs[1].rebuilt, Entry::Missing);
        match (&diffs[2].valid, &diffs[2].rebuilt) {
            (Entry::File { size: 5, .. }, Entry::File { size: 8, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
