//! `kiln store verify`: does the store hold what its database says?
//!
//! For each path in `ValidPaths`:
//!
//! - its files must exist at the physical location;
//! - they must be canonical ([`crate::canonicalise::check_tree_owned`]:
//!   modes 0444/0555, mtime 1, no xattrs, no s-bits, owned by the store's
//!   owner);
//! - with `check_contents`, the sha256 of their NAR serialisation must be
//!   the recorded `nar_hash` and its length the recorded size;
//! - each of its references must have its files (a reference deleted by
//!   hand breaks its referrers too).
//!
//! Reference edges to paths that are not valid (impossible with foreign
//! keys on; a damaged database) are reported too.
//!
//! Entries of the store directory that are not valid paths are *strays*:
//! temp dirs of dead processes, unregistered leftovers of killed builds,
//! files that are not store paths at all. They are reported but are not
//! damage: nothing valid depends on them, the next install of that path
//! replaces them, and the garbage collector removes them. Temp dirs whose
//! owner still runs and the `.links` directory of `kiln store optimise`
//! are not strays.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::canonicalise::{NonCanonical, check_tree_owned};
use crate::hash::{Hash, HashAlgo};
use crate::nar::hash_path;
use crate::store::lock::PathLock;
use crate::store::temp::TEMP_PREFIX;
use crate::store::{Store, StoreError};
use crate::store_path::StorePath;

/// The directory of `kiln store optimise`'s content-addressed links.
pub const LINKS_DIR: &str = ".links";

/// At most this many non-canonical files are listed per path.
const NON_CANONICAL_LIMIT: usize = 20;

/// What is wrong with one valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Registered, but there are no files.
    Missing,
    /// The files do not hash to the recorded NAR hash or size.
    Modified {
        expected: Hash,
        actual: Hash,
        expected_size: u64,
        actual_size: u64,
    },
    /// Files whose metadata is not canonical (at most a few are listed).
    NonCanonical(Vec<NonCanonical>),
    /// A reference whose files are missing.
    ReferenceMissing(StorePath),
    /// A reference edge to a database id that is not a valid path.
    ReferenceNotValid(i64),
    /// The files could not be read.
    Unreadable(String),
}

impl Problem {
    /// A short machine-readable name (the `--json` `problem` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::Modified { .. } => "modified",
            Problem::NonCanonical(_) => "non-canonical",
            Problem::ReferenceMissing(_) => "reference-missing",
            Problem::ReferenceNotValid(_) => "reference-not-valid",
            Problem::Unreadable(_) => "unreadable",
        }
    }

    /// Whether the files themselves are bad (rebuilding the path fixes
    /// it), as opposed to a problem elsewhere.
    pub fn is_in_contents(&self) -> bool {
        matches!(
            self,
            Problem::Missing | Problem::Modified { .. } | Problem::NonCanonical(_)
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing => write!(f, "registered as valid but missing from disk"),
            Problem::Modified {
                expected,
                actual,
                expected_size,
                actual_size,
            } => write!(
                f,
                "contents changed: NAR hash {} (size {actual_size}), expected {} (size {expected_size})",
                actual.to_typed_nix32(),
                expected.to_typed_nix32()
            ),
            Problem::NonCanonical(files) => {
                write!(f, "metadata not canonical:")?;
                for (i, file) in files.iter().enumerate() {
                    let name = if file.file.as_os_str().is_empty() {
                        ".".into()
                    } else {
                        file.file.display().to_string()
                    };
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{name}: {}", file.problem)?;
                }
                Ok(())
            }
            Problem::ReferenceMissing(reference) => {
                write!(f, "its reference {reference} is missing from disk")
            }
            Problem::ReferenceNotValid(id) => write!(
                f,
                "the database records a reference to path id {id}, which is not valid"
            ),
            Problem::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Why an entry of the store directory is a stray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrayKind {
    /// A temp dir whose owner is gone.
    DeadTempDir,
    /// A store path name that is not valid (a killed build or add left it).
    Unregistered,
    /// A name no store path has.
    NotAStorePath,
}

impl std::fmt::Display for StrayKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StrayKind::DeadTempDir => "temporary directory of a process that is gone",
            StrayKind::Unregistered => "not a valid path (left by a killed build or add)",
            StrayKind::NotAStorePath => "not a store path",
        })
    }
}

/// An entry of the store directory that no valid path accounts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    pub name: String,
    pub path: PathBuf,
    pub kind: StrayKind,
}

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Hash every path's files and compare with the recorded NAR hash.
    pub check_contents: bool,
}

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// How many valid paths were checked.
    pub checked: usize,
    /// Damage, in path order (a path may have several problems).
    pub problems: Vec<(Option<StorePath>, Problem)>,
    /// Store dir entries that are not valid paths.
    pub strays: Vec<Stray>,
}

impl VerifyReport {
    /// Whether something is damaged (strays are not damage).
    pub fn is_damaged(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// Check every valid path of `store`.
pub fn verify_store(store: &Store, options: VerifyOptions) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let store_dir = store.physical_store_dir();
    let owner = std::fs::metadata(store_dir)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .map_err(StoreError::io("reading", store_dir))?;
    let valid = store.all_valid_paths()?;
    for path in &valid {
        let Some(info) = store.path_info(path)? else {
            continue; // deleted meanwhile (a concurrent GC)
        };
        report.checked += 1;
        let mut push = |problem| report.problems.push((Some(path.clone()), problem));
        if !store.files_exist(path) {
            push(Problem::Missing);
            continue;
        }
        let real = store.real_path(path);
        match check_tree_owned(&real, NON_CANONICAL_LIMIT, Some(owner)) {
            Ok(found) if found.is_empty() => {}
            Ok(found) => push(Problem::NonCanonical(found)),
            Err(e) => push(Problem::Unreadable(e.to_string())),
        }
        if options.check_contents {
            match hash_path(&real, HashAlgo::Sha256) {
                Ok((actual, size)) if actual == info.nar_hash && size == info.nar_size => {}
                Ok((actual, actual_size)) => push(Problem::Modified {
                    expected: info.nar_hash,
                    actual,
                    expected_size: info.nar_size,
                    actual_size,
                }),
                Err(e) => push(Problem::Unreadable(e.to_string())),
            }
        }
        for reference in &info.references {
            if reference != path && !store.files_exist(reference) {
                push(Problem::ReferenceMissing(reference.clone()));
            }
        }
    }
    for (referrer, id) in store.dangling_references()? {
        report
            .problems
            .push((referrer, Problem::ReferenceNotValid(id)));
    }
    report.strays = find_strays(store, &valid.into_iter().collect())?;
    Ok(report)
}

/// The entries of the store directory that are not valid paths.
fn find_strays(store: &Store, valid: &BTreeSet<StorePath>) -> Result<Vec<Stray>, StoreError> {
    let dir = store.physical_store_dir();
    let entries = std::fs::read_dir(dir).map_err(StoreError::io("reading", dir))?;
    let mut strays = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io("reading", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = if name == LINKS_DIR {
            continue;
        } else if name.starts_with(TEMP_PREFIX) {
            let lock = store.state_dir().join(format!("temp/{name}.lock"));
            match PathLock::try_acquire(&lock) {
                Ok(Some(_free)) => StrayKind::DeadTempDir,
                // In use, or we cannot tell (a store we cannot write).
                Ok(None) | Err(_) => continue,
            }
        } else {
            match StorePath::from_base_name(&name) {
                Ok(path) if valid.contains(&path) => continue,
                // Registered after the list was read: not a stray.
                Ok(path) if store.is_valid(&path)? => continue,
                Ok(_) => StrayKind::Unregistered,
                Err(_) => StrayKind::NotAStorePath,
            }
        };
        strays.push(Stray {
            name,
            path: entry.path(),
            kind,
        });
    }
    strays.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(strays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;
    use crate::store_path::StoreDir;
    use std::os::unix::fs::PermissionsExt;

    fn store(dir: &std::path::Path) -> Store {
        Store::open(StoreConfig {
            root: dir.join("root"),
            store_dir: StoreDir::new("/kiln/store").unwrap(),
        })
        .unwrap()
    }

    fn kinds(report: &VerifyReport) -> Vec<(String, &'static str)> {
        let mut kinds: Vec<(String, &'static str)> = report
            .problems
            .iter()
            .map(|(p, problem)| {
                let name = p.as_ref().map(|p| p.name().to_string()).unwrap_or_default();
                (name, problem.kind())
            })
            .collect();
        kinds.sort();
        kinds
    }

    const ALL: VerifyOptions = VerifyOptions {
        check_contents: true,
    };

    #[test]
    fn finds_missing_modified_and_non_canonical_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let src = dir.path().join("src");
        std::fs::write(&src, "hello").unwrap();
        let a = store.add_path(&src, "a").unwrap();
        std::fs::write(&src, "other").unwrap();
        let b = store.add_path(&src, "b").unwrap();
        std::fs::write(&src, "third").unwrap();
        let c = store.add_path(&src, "c").unwrap();
        let report = verify_store(&store, ALL).unwrap();
        assert_eq!(report.checked, 3);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.strays.is_empty(), "{:?}", report.strays);

        // Tamper with a (made writable first), remove b, make c writable.
        let real_a = store.real_path(&a);
        std::fs::set_permissions(&real_a, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&real_a, "HELLO").unwrap();
        std::fs::set_permissions(&real_a, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::remove_file(store.real_path(&b)).unwrap();
        std::fs::set_permissions(store.real_path(&c), std::fs::Permissions::from_mode(0o666))
            .unwrap();

        // Without hashing, the changed contents of a go unnoticed (its
        // mtime is not 1 any more, though).
        let quick = verify_store(&store, VerifyOptions::default()).unwrap();
        assert!(!kinds(&quick).contains(&("a".into(), "modified")));
        let report = verify_store(&store, ALL).unwrap();
        assert_eq!(
            kinds(&report),
            vec![
                ("a".to_string(), "modified"),
                ("a".to_string(), "non-canonical"),
                ("b".to_string(), "missing"),
                ("c".to_string(), "non-canonical"),
            ]
        );
        let text = report
            .problems
            .iter()
            .find(|(p, _)| p.as_ref() == Some(&c))
            .unwrap()
            .1
            .to_string();
        assert!(text.contains("mode is 0666, not 0444"), "{text}");
    }

    #[test]
    fn finds_strays_and_broken_references() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let src = dir.path().join("dep");
        std::fs::write(&src, "dep").unwrap();
        let dep = store.add_path(&src, "dep").unwrap();
        let text = format!("uses {}", store.print_path(&dep));
        let user = store
            .add_text("user", text.as_bytes(), &BTreeSet::from([dep.clone()]))
            .unwrap();
        let store_dir = store.physical_store_dir().to_path_buf();
        std::fs::write(store_dir.join("junk"), "x").unwrap();
        let leftover = "0c6kzph7l0dcbfmjap64f0czdafn3b7x-leftover";
        std::fs::create_dir(store_dir.join(leftover)).unwrap();
        let live = store.temp_dir().unwrap();

        std::fs::remove_file(store.real_path(&dep)).unwrap();
        let report = verify_store(&store, ALL).unwrap();
        assert_eq!(
            kinds(&report),
            vec![
                ("dep".to_string(), "missing"),
                ("user".to_string(), "reference-missing")
            ]
        );
        let strays: Vec<(&str, StrayKind)> = report
            .strays
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            strays,
            vec![
                (leftover, StrayKind::Unregistered),
                ("junk", StrayKind::NotAStorePath)
            ]
        );
        drop(live);

        // A database with an edge to a path that is gone.
        store.damage_database_for_test(&format!(
            "DELETE FROM ValidPaths WHERE path = '{}'",
            store.print_path(&dep)
        ));
        let report = verify_store(&store, ALL).unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|(p, problem)| p.as_ref() == Some(&user)
                    && matches!(problem, Problem::ReferenceNotValid(_))),
            "{:?}",
            report.problems
        );
    }
}
