//! `kiln store verify`: does every valid path's content match the database?
//!
//! For each path in `ValidPaths`: its files must exist at the physical
//! location, and the sha256 of their NAR serialisation must equal the
//! recorded `nar_hash` (and the NAR size the recorded size). Anything else
//! in the store directory (unregistered leftovers of killed processes, temp
//! dirs) is not a problem: it is not valid, and the next build or add of
//! that path replaces it.

use crate::hash::{Hash, HashAlgo};
use crate::nar::hash_path;
use crate::store::{Store, StoreError};
use crate::store_path::StorePath;

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
    /// The files could not be read.
    Unreadable(String),
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
            Problem::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// How many valid paths were checked.
    pub checked: usize,
    pub problems: Vec<(StorePath, Problem)>,
}

/// Check every valid path of `store`.
pub fn verify_store(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    for path in store.all_valid_paths()? {
        report.checked += 1;
        let Some(info) = store.path_info(&path)? else {
            continue; // deleted meanwhile (a concurrent GC)
        };
        let real = store.real_path(&path);
        if std::fs::symlink_metadata(&real).is_err() {
            report.problems.push((path, Problem::Missing));
            continue;
        }
        match hash_path(&real, HashAlgo::Sha256) {
            Ok((actual, size)) if actual == info.nar_hash && size == info.nar_size => {}
            Ok((actual, actual_size)) => report.problems.push((
                path,
                Problem::Modified {
                    expected: info.nar_hash,
                    actual,
                    expected_size: info.nar_size,
                    actual_size,
                },
            )),
            Err(e) => report
                .problems
                .push((path, Problem::Unreadable(e.to_string()))),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;
    use crate::store_path::StoreDir;

    #[test]
    fn finds_missing_and_modified_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            root: dir.path().join("root"),
            store_dir: StoreDir::new("/kiln/store").unwrap(),
        })
        .unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "hello").unwrap();
        let a = store.add_path(&src, "a").unwrap();
        std::fs::write(&src, "other").unwrap();
        let b = store.add_path(&src, "b").unwrap();
        let report = verify_store(&store).unwrap();
        assert_eq!(report.checked, 2);
        assert!(report.problems.is_empty(), "{:?}", report.problems);

        // Tamper with a (made writable first), remove b.
        let real_a = store.real_path(&a);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real_a, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&real_a, "HELLO").unwrap();
        std::fs::remove_file(store.real_path(&b)).unwrap();
        let report = verify_store(&store).unwrap();
        let mut kinds: Vec<(String, bool)> = report
            .problems
            .iter()
            .map(|(p, problem)| (p.name().to_string(), matches!(problem, Problem::Missing)))
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            vec![("a".to_string(), false), ("b".to_string(), true)]
        );
    }
}
