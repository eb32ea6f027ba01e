//! `kiln store verify --repair`: put back what rotted, when kiln can.
//!
//! For each valid path whose files are damaged (missing, changed, or with
//! non-canonical metadata):
//!
//! 1. Metadata only: the tree is canonicalised in place; if its NAR hash is
//!    then the recorded one, it is repaired.
//! 2. Otherwise the path is rebuilt from its deriver, if a `.drv` that
//!    declares it is valid and on disk: the damaged files are moved aside
//!    into a temp dir of the store (so the build sees the output as
//!    missing and `Store::install` puts the new one in place), the
//!    derivation is realised, and on failure the old files are moved back
//!    (damaged files are better than none).
//! 3. A path no derivation is known for (`kiln store add`, a `.drv`, a
//!    `toFile` file) cannot be rebuilt; the report says how to get it back.
//!
//! The store is verified again afterwards and that second report decides
//! the exit code.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use kiln_builder::events::Silent;
use kiln_builder::{RealiseOptions, realise};
use kiln_store::store::Store;
use kiln_store::verify::{Problem, VerifyReport};
use kiln_store::{HashAlgo, StorePath};

use crate::cli::config::derivers;
use crate::say;

/// What happened to one damaged path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fixed by canonicalising its metadata.
    Canonicalised,
    /// Rebuilt from this derivation.
    Rebuilt(String),
    /// Not repaired, and why (what to do next).
    Cannot(String),
}

/// Repair every damaged path of `report`; the outcomes by path.
pub fn repair(store: &Store, report: &VerifyReport) -> BTreeMap<StorePath, Outcome> {
    let mut damaged: BTreeMap<StorePath, Vec<&Problem>> = BTreeMap::new();
    for (path, problem) in &report.problems {
        if let Some(path) = path
            && problem.is_in_contents()
        {
            damaged.entry(path.clone()).or_default().push(problem);
        }
    }
    let mut outcomes = BTreeMap::new();
    for (path, problems) in damaged {
        let printed = store.print_path(&path);
        let only_metadata = problems
            .iter()
            .all(|p| matches!(p, Problem::NonCanonical(_)));
        if only_metadata && canonicalise(store, &path) {
            say!("repaired {printed}: metadata made canonical");
            outcomes.insert(path, Outcome::Canonicalised);
            continue;
        }
        let outcome = rebuild(store, &path);
        match &outcome {
            Outcome::Rebuilt(drv) => say!("repaired {printed}: rebuilt from {drv}"),
            Outcome::Cannot(why) => say!("error: cannot repair {printed}: {why}"),
            Outcome::Canonicalised => {}
        }
        outcomes.insert(path, outcome);
    }
    outcomes
}

/// Canonicalise `path`'s files; true if they then hash as recorded.
fn canonicalise(store: &Store, path: &StorePath) -> bool {
    let real = store.real_path(path);
    if kiln_store::canonicalise::canonicalise_tree(&real).is_err() {
        return false;
    }
    let Ok(Some(info)) = store.path_info(path) else {
        return false;
    };
    matches!(
        kiln_store::nar::hash_path(&real, HashAlgo::Sha256),
        Ok((hash, size)) if hash == info.nar_hash && size == info.nar_size
    )
}

/// Rebuild `path` from a derivation that declares it.
fn rebuild(store: &Store, path: &StorePath) -> Outcome {
    let drvs = match derivers(store, path) {
        Ok(drvs) => drvs,
        Err(e) => return Outcome::Cannot(format!("{e:#}")),
    };
    let Some(drv) = drvs
        .iter()
        .find(|d| store.is_present(d).unwrap_or(false))
        .cloned()
    else {
        return Outcome::Cannot(if drvs.is_empty() {
            if path.name().ends_with(".drv") {
                "no derivation builds it (it is a derivation: `kiln instantiate` of its expression writes it again)".into()
            } else {
                "no derivation is known to build it (if it was added with `kiln store add`, add the same files again)".into()
            }
        } else {
            format!(
                "its derivation {} is not in the store any more",
                store.print_path(&drvs[0])
            )
        });
    };
    let printed_drv = store.print_path(&drv);
    // Held against a collector while the files are aside and rebuilt.
    if let Err(e) = store.add_temp_roots(&[path.clone(), drv.clone()]) {
        return Outcome::Cannot(format!("recording a temporary GC root: {e}"));
    }
    let aside = match move_aside(store, path) {
        Ok(aside) => aside,
        Err(e) => return Outcome::Cannot(e),
    };
    let result = realise(store, &[drv], &RealiseOptions::default(), &Silent);
    let failed = match &result {
        Ok(realised) if realised.ok() && store.files_exist(path) => None,
        Ok(realised) => {
            for (drv, failure) in &realised.failures {
                crate::cli::build::report_failure(drv, failure);
            }
            Some(format!("rebuilding it from {printed_drv} failed"))
        }
        Err(e) => Some(format!("rebuilding it from {printed_drv} failed: {e}")),
    };
    match failed {
        None => Outcome::Rebuilt(printed_drv),
        Some(why) => {
            if let Some((_dir, old)) = &aside {
                move_back(store, path, old);
            }
            Outcome::Cannot(why)
        }
    }
}

/// Move `path`'s files (if any) into a fresh temp dir of the store, which
/// deletes them when dropped. `None` when there were no files.
fn move_aside(
    store: &Store,
    path: &StorePath,
) -> Result<Option<(kiln_store::store::temp::TempDir, std::path::PathBuf)>, String> {
    let real = store.real_path(path);
    let Ok(meta) = std::fs::symlink_metadata(&real) else {
        return Ok(None);
    };
    let dir = store
        .temp_dir()
        .map_err(|e| format!("making a temp dir: {e}"))?;
    let old = dir.path().join("damaged");
    // Moving a directory to a new parent rewrites its `..`: it must be
    // writable for that.
    if meta.is_dir() {
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("making {} writable: {e}", real.display()))?;
    }
    std::fs::rename(&real, &old).map_err(|e| format!("moving {} aside: {e}", real.display()))?;
    Ok(Some((dir, old)))
}

/// Put the damaged files back where nothing replaced them.
fn move_back(store: &Store, path: &StorePath, old: &std::path::Path) {
    let real = store.real_path(path);
    if std::fs::symlink_metadata(&real).is_ok() {
        return;
    }
    if std::fs::rename(old, &real).is_ok()
        && std::fs::symlink_metadata(&real).is_ok_and(|m| m.is_dir())
    {
        let _ = std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o555));
    }
}
