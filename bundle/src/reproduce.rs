//! `kiln bundle reproduce`: rebuild a bundle's outputs from its build
//! closure and sign what reproduced.
//!
//! The bundle (made with `--with-build-closure`) is checked and its build
//! closure imported: every `.drv`, source and seed path, but none of the
//! outputs its derivations produce. Then every derivation behind the
//! runtime closure is built in the sandbox, offline, and each output's NAR
//! hash compared with the manifest's. For a mismatch the bundle's NAR is
//! restored beside it and the two trees compared file by file (as
//! `kiln build --check` does). The result is an in-toto statement with a
//! SLSA Verification Summary (VSA v1) predicate in a DSSE envelope: its
//! subjects are the paths that reproduced, `verificationResult` is
//! `PASSED` only if all did.

use std::collections::BTreeSet;
use std::io::BufRead;

use kiln_builder::check::compare_trees;
use kiln_builder::{RealiseOptions, realise};
use kiln_store::StorePath;
use kiln_store::signing::{SecretKey, TrustedKeys};
use kiln_store::store::Store;
use serde_json::{Value, json};

use crate::BundleError;
use crate::attest::{STATEMENT_TYPE, VSA_TYPE, descriptor, envelope};
use crate::import::{ImportOptions, Selection, import};
use crate::manifest::{Closure, PathEntry};
use crate::read::{ReadOptions, Sink, read_bundle};

pub struct ReproduceOptions<'a> {
    pub trusted: &'a TrustedKeys,
    pub check_sigs: bool,
    pub key: Option<SecretKey>,
    pub jobs: usize,
    pub cores: u32,
    /// The bundle's name as the VSA's `resourceUri` gives it.
    pub resource_uri: String,
}

/// One output and what its rebuild gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub path: String,
    pub expected_sha256: String,
    /// `None` when the build failed.
    pub rebuilt_sha256: Option<String>,
    /// Per-file differences (empty when it reproduced or did not build).
    pub differences: Vec<String>,
    pub error: Option<String>,
}

impl Outcome {
    pub fn reproduced(&self) -> bool {
        self.rebuilt_sha256.as_deref() == Some(self.expected_sha256.as_str())
    }
}

pub struct Reproduced {
    pub outcomes: Vec<Outcome>,
    /// The signed VSA envelope.
    pub vsa: Value,
}

impl Reproduced {
    pub fn all(&self) -> bool {
        self.outcomes.iter().all(Outcome::reproduced)
    }
}

/// Restores the NARs of chosen paths into a temp dir.
struct RestoreSome<'a> {
    want: &'a BTreeSet<StorePath>,
    dir: &'a std::path::Path,
}

impl Sink for RestoreSome<'_> {
    fn nar(&mut self, entry: &PathEntry, data: &mut dyn BufRead) -> Result<(), BundleError> {
        if self.want.contains(&entry.path) {
            kiln_store::nar::restore(&mut &mut *data, &self.dir.join(entry.path.base_name()))
                .map(|_| ())
                .map_err(|e| crate::read::nar_error(entry, e))
        } else {
            crate::read::Validate.nar(entry, data)
        }
    }
}

pub fn reproduce(
    store: &Store,
    file: &std::path::Path,
    options: &ReproduceOptions,
) -> Result<Reproduced, BundleError> {
    let open = || std::fs::File::open(file).map_err(BundleError::read);
    let report = import(
        store,
        open()?,
        &ImportOptions {
            trusted: options.trusted,
            check_sigs: options.check_sigs,
            select: Selection::ForRebuild,
        },
    )?;
    let manifest = &report.checked.manifest;
    if !manifest.paths.iter().any(|p| p.closure == Closure::Build) {
        return Err(BundleError::Refused(
            "the bundle has no build closure: export it with --with-build-closure to reproduce it"
                .into(),
        ));
    }
    let in_bundle: BTreeSet<&StorePath> = manifest.paths.iter().map(|p| &p.path).collect();
    let derived: Vec<&PathEntry> = manifest
        .paths
        .iter()
        .filter(|p| {
            p.closure == Closure::Runtime
                && p.ca.is_none()
                && p.deriver.as_ref().is_some_and(|d| in_bundle.contains(d))
        })
        .collect();
    // An output valid here already would be compared as it is, not rebuilt.
    for entry in &derived {
        if store.is_valid(&entry.path)? {
            return Err(BundleError::Refused(format!(
                "{} is valid in this store already, so it would not be rebuilt: reproduce in a fresh root (--root DIR)",
                store.print_path(&entry.path)
            )));
        }
    }
    let drvs: BTreeSet<StorePath> = derived.iter().filter_map(|p| p.deriver.clone()).collect();
    let drvs: Vec<StorePath> = drvs.into_iter().collect();
    let realised = realise(
        store,
        &drvs,
        &RealiseOptions {
            jobs: options.jobs.max(1),
            cores: options.cores.max(1),
            keep_going: true,
            ..RealiseOptions::default()
        },
        &kiln_builder::events::Silent,
    )?;
    let failures: Vec<(String, String)> = realised
        .failures
        .iter()
        .map(|(drv, f)| {
            let why = match f {
                kiln_builder::Failure::Build(e) => e.to_string(),
                kiln_builder::Failure::Dependency(d) => format!("its dependency {d} failed"),
                kiln_builder::Failure::NotStarted => "not started".into(),
            };
            (drv.clone(), why)
        })
        .collect();

    let mut outcomes = Vec::new();
    let mut differing = BTreeSet::new();
    for entry in &derived {
        let printed = store.print_path(&entry.path);
        let info = store.path_info(&entry.path)?;
        let error = info.is_none().then(|| {
            let drv = entry
                .deriver
                .as_ref()
                .map(|d| store.print_path(d))
                .unwrap_or_default();
            failures
                .iter()
                .find(|(d, _)| *d == drv)
                .map(|(_, why)| why.clone())
                .unwrap_or_else(|| "the output was not built".into())
        });
        let rebuilt = info.map(|i| i.nar_hash.to_base16());
        if rebuilt.as_ref().is_some_and(|h| *h != entry.nar_sha256()) {
            differing.insert(entry.path.clone());
        }
        outcomes.push(Outcome {
            path: printed,
            expected_sha256: entry.nar_sha256(),
            rebuilt_sha256: rebuilt,
            differences: Vec::new(),
            error,
        });
    }
    if !differing.is_empty() {
        let temp = store.temp_dir()?;
        read_bundle(
            open()?,
            &ReadOptions {
                trusted: options.trusted,
                check_sigs: options.check_sigs,
            },
            &mut RestoreSome {
                want: &differing,
                dir: temp.path(),
            },
        )?;
        for (outcome, entry) in outcomes.iter_mut().zip(&derived) {
            if differing.contains(&entry.path) {
                let diffs = compare_trees(
                    &temp.path().join(entry.path.base_name()),
                    &store.real_path(&entry.path),
                )?;
                outcome.differences = diffs
                    .iter()
                    .map(|d| {
                        format!(
                            "{}: bundle has {}, rebuild has {}",
                            d.path.display(),
                            d.valid,
                            d.rebuilt
                        )
                    })
                    .collect();
            }
        }
    }

    let passed = outcomes.iter().all(Outcome::reproduced);
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": outcomes.iter().filter(|o| o.reproduced()).map(|o| descriptor(&o.path, &o.expected_sha256)).collect::<Vec<_>>(),
        "predicateType": VSA_TYPE,
        "predicate": {
            "verifier": {
                "id": kiln_builder::record::builder_id(),
                "version": {"kiln": kiln_builder::record::KILN_VERSION},
            },
            "timeVerified": crate::time::rfc3339(kiln_builder::record::wall_now()),
            "resourceUri": options.resource_uri,
            "policy": {"uri": "https://kiln.dev/slsa/policies/reproduce/v1"},
            "inputAttestations": [{
                "uri": crate::PROVENANCE,
                "digest": {"sha256": crate::sha256_hex(&report.checked.envelope)},
            }],
            "verificationResult": if passed { "PASSED" } else { "FAILED" },
            "verifiedLevels": if passed { vec!["SLSA_BUILD_LEVEL_1"] } else { vec!["FAILED"] },
            "slsaVersion": "1.0",
        },
    });
    let payload = serde_json::to_vec(&statement).expect("JSON");
    Ok(Reproduced {
        outcomes,
        vsa: envelope(&payload, options.key.as_ref()),
    })
}
