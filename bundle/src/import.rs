//! Importing a bundle: check everything, then register the closure in one
//! transaction through `Store::install`.
//!
//! The sequence: the bundle's metadata is checked ([`crate::read`]); every
//! path of the manifest becomes a temp GC root of this process; the paths
//! not yet valid are restored from their NARs into one temp dir of the
//! store as they stream past (the NAR reader creates only new entries, under
//! names without `/`, `.` or `..`, and never follows a symlink, so nothing
//! is written outside that dir); the paths already valid are only checked.
//! Only when the whole bundle checked out are the new paths handed to
//! `Store::install` as one batch: canonicalised, synced, renamed into place
//! and registered in one transaction. A failure or a kill before that
//! leaves at most a temp dir, which the next kiln removes.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::PathBuf;

use kiln_store::StorePath;
use kiln_store::signing::{TrustedKeys, fingerprint};
use kiln_store::store::temp::TempDir;
use kiln_store::store::{Locking, NewPath, Staged, Store, ValidPathInfo};

use crate::BundleError;
use crate::manifest::{Closure, PathEntry};
use crate::read::{Checked, ReadOptions, Sink, nar_error, read_bundle};

pub struct ImportOptions<'a> {
    pub trusted: &'a TrustedKeys,
    pub check_sigs: bool,
    /// Which paths to register (reproduce imports only what it cannot rebuild).
    pub select: Selection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every path of the bundle.
    All,
    /// The build closure plus runtime paths that no derivation in the
    /// bundle produces (sources): what a rebuild needs.
    ForRebuild,
}

#[derive(Debug, Clone)]
pub struct ImportReport {
    pub checked: Checked,
    /// Paths made valid now.
    pub new: Vec<StorePath>,
    /// Paths that were valid already.
    pub skipped: usize,
}

struct Importer<'a> {
    store: &'a Store,
    select: Selection,
    temp: Option<TempDir>,
    wanted: BTreeSet<StorePath>,
    staged: Vec<(PathEntry, PathBuf)>,
    skipped: usize,
}

impl Sink for Importer<'_> {
    fn manifest(&mut self, checked: &Checked) -> Result<(), BundleError> {
        let manifest = &checked.manifest;
        if manifest.store_dir != *self.store.store_dir() {
            return Err(BundleError::Refused(format!(
                "the bundle's paths are under {}, this store's under {}: open the store with --store-dir {}",
                manifest.store_dir.as_str(),
                self.store.store_dir().as_str(),
                manifest.store_dir.as_str()
            )));
        }
        let outputs_in_bundle: BTreeSet<&StorePath> = match self.select {
            Selection::All => BTreeSet::new(),
            Selection::ForRebuild => manifest
                .paths
                .iter()
                .filter(|p| {
                    p.closure == Closure::Runtime
                        && p.ca.is_none()
                        && p.deriver
                            .as_ref()
                            .is_some_and(|d| manifest.paths.iter().any(|q| &q.path == d))
                })
                .map(|p| &p.path)
                .collect(),
        };
        let paths: Vec<StorePath> = manifest
            .paths
            .iter()
            .map(|p| p.path.clone())
            .filter(|p| !outputs_in_bundle.contains(p))
            .collect();
        // Temp roots before asking what is valid (see store/src/gc).
        self.store.add_temp_roots(&paths)?;
        let valid = self.store.valid_among(&paths)?;
        for (path, valid) in paths.into_iter().zip(valid) {
            if valid {
                self.skipped += 1;
            } else {
                self.wanted.insert(path);
            }
        }
        if !self.wanted.is_empty() {
            self.temp = Some(self.store.temp_dir()?);
        }
        Ok(())
    }

    fn nar(&mut self, entry: &PathEntry, data: &mut dyn BufRead) -> Result<(), BundleError> {
        if !self.wanted.contains(&entry.path) {
            return crate::read::Validate.nar(entry, data);
        }
        let temp = self.temp.as_ref().expect("made with the manifest");
        let target = temp.path().join(entry.path.base_name());
        kiln_store::nar::restore(&mut &mut *data, &target).map_err(|e| nar_error(entry, e))?;
        self.staged.push((entry.clone(), target));
        Ok(())
    }
}

/// Check `input` completely, then register what it holds (module docs).
pub fn import(
    store: &Store,
    input: impl std::io::Read,
    options: &ImportOptions,
) -> Result<ImportReport, BundleError> {
    let mut importer = Importer {
        store,
        select: options.select,
        temp: None,
        wanted: BTreeSet::new(),
        staged: Vec::new(),
        skipped: 0,
    };
    let checked = read_bundle(
        input,
        &ReadOptions {
            trusted: options.trusted,
            check_sigs: options.check_sigs,
        },
        &mut importer,
    )?;
    let dir = store.store_dir();
    let now = kiln_store::clock::unix_now();
    let batch: Vec<NewPath> = importer
        .staged
        .iter()
        .map(|(entry, staged)| {
            // Keep only the path signatures a trusted key made.
            let refs: BTreeSet<String> = entry.references.iter().map(|r| dir.display(r)).collect();
            let fp = fingerprint(
                &dir.display(&entry.path),
                &entry.nar_hash,
                entry.nar_size,
                &refs,
            );
            let signatures = entry
                .signatures
                .iter()
                .filter(|s| options.trusted.verify(fp.as_bytes(), s).is_ok())
                .cloned()
                .collect();
            NewPath {
                info: ValidPathInfo {
                    path: entry.path.clone(),
                    nar_hash: entry.nar_hash,
                    nar_size: entry.nar_size,
                    deriver: entry.deriver.clone(),
                    references: entry.references.clone(),
                    registration_time: now,
                    ca: entry.ca.clone(),
                    signatures,
                },
                content: Staged::Tree {
                    path: staged.clone(),
                    canonical: false,
                },
            }
        })
        .collect();
    let installed = store.install(batch, Locking::Take)?;
    drop(importer.temp.take());
    Ok(ImportReport {
        checked,
        new: installed.new,
        skipped: importer.skipped,
    })
}
