//! Turning what a builder left behind into store path contents.
//!
//! After the builder exits 0, for each declared output, in this order:
//!
//! 1. it must exist (as a file, directory or symlink) at its logical path in
//!    the scratch store;
//! 2. it is canonicalised (mtime 1, 0444/0555, no setuid/setgid, no group or
//!    world write);
//! 3. its references are found by scanning for the hash parts of the input
//!    closure and of the derivation's own outputs ([`crate::scan`]);
//! 4. it is NAR-hashed (sha256); a fixed output's declared hash is checked
//!    (flat: the file's contents; recursive: the NAR), and it may not refer
//!    to any store path;
//! 5. `allowedReferences`, `disallowedReferences`, `allowedRequisites` and
//!    `disallowedRequisites` are enforced. Their items are store paths or
//!    names of this derivation's outputs.
//!
//! Moving into the store and registering is [`crate::register`]'s job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kiln_store::derivation::{Derivation, DerivationOutput};
use kiln_store::{FileIngestionMethod, Hash, HashAlgo, StoreDir, StorePath};
use rustc_hash::FxHashMap;

use crate::error::{BuildError, HashMismatch};

/// Computes the closure (requisites) of a set of valid paths.
pub type Requisites<'a> =
    &'a dyn Fn(&BTreeSet<StorePath>) -> Result<BTreeSet<StorePath>, BuildError>;
use crate::scan::{HashPart, RefScanner, hash_part};

/// One output, checked and ready to move into the store.
#[derive(Debug, Clone)]
pub struct ProducedOutput {
    pub name: String,
    pub path: StorePath,
    /// Where it is now, in the scratch store.
    pub scratch: PathBuf,
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub references: BTreeSet<StorePath>,
    /// Content address of a fixed output (`fixed:r:sha256:…`).
    pub ca: Option<String>,
}

/// The output paths of a derivation, or an error for the kinds kiln cannot
/// build yet (floating content-addressed and deferred outputs).
pub fn output_paths(
    drv_path: &str,
    drv: &Derivation,
) -> Result<BTreeMap<String, StorePath>, BuildError> {
    drv.outputs
        .iter()
        .map(|(name, out)| match out.path() {
            Some(path) => Ok((name.clone(), path.clone())),
            None => Err(BuildError::Unsupported {
                drv: drv_path.to_string(),
                what: "content-addressed outputs whose path is known only after the build",
            }),
        })
        .collect()
}

/// The SHA-256 NAR hash and NAR size of an output.
fn nar_hash(path: &Path) -> Result<(Hash, u64), kiln_store::NarError> {
    kiln_store::nar::hash_path(path, HashAlgo::Sha256)
}

/// Steps 1–5 above for every output of `drv`. `closure` is the input
/// closure (every store path the build could see).
pub fn process_outputs(
    store_dir: &StoreDir,
    drv_path: &str,
    drv: &Derivation,
    scratch_store: &Path,
    closure: &BTreeSet<StorePath>,
    requisites_of: Requisites<'_>,
) -> Result<Vec<ProducedOutput>, BuildError> {
    let outputs = output_paths(drv_path, drv)?;
    let mut by_hash: FxHashMap<HashPart, StorePath> = FxHashMap::default();
    for path in closure.iter().chain(outputs.values()) {
        if let Some(h) = hash_part(path.hash_part_str()) {
            by_hash.insert(h, path.clone());
        }
    }

    let mut produced = Vec::with_capacity(outputs.len());
    for (name, path) in &outputs {
        let scratch = scratch_store.join(path.to_string());
        if std::fs::symlink_metadata(&scratch).is_err() {
            return Err(BuildError::MissingOutput {
                drv: drv_path.to_string(),
                output: name.clone(),
                path: store_dir.display(path),
            });
        }
        // A fixed output's builder had the network and may have passed a
        // descriptor of its files to someone else: what is checked and
        // registered is a copy in fresh inodes that nobody else can hold.
        let scratch = if matches!(drv.outputs[name], DerivationOutput::Fixed { .. }) {
            let copy = scratch_store.with_file_name(format!("fixed-copy-{name}"));
            kiln_store::canonicalise::copy_tree(&scratch, &copy)
                .map_err(|e| BuildError::store(format!("copying output {name}"), e))?;
            copy
        } else {
            scratch
        };
        kiln_store::canonicalise::canonicalise_tree(&scratch)
            .map_err(|e| BuildError::store(format!("canonicalising output {name}"), e))?;

        let mut scanner = RefScanner::new(by_hash.keys().copied());
        scanner
            .scan_path(&scratch)
            .map_err(|e| BuildError::store(format!("scanning output {name} for references"), e))?;
        let references: BTreeSet<StorePath> = scanner
            .found()
            .iter()
            .filter_map(|h| by_hash.get(h).cloned())
            .collect();

        let (nar_hash, nar_size) = nar_hash(&scratch)
            .map_err(|e| BuildError::store(format!("hashing output {name}"), e))?;

        let ca = match &drv.outputs[name] {
            DerivationOutput::Fixed { hash, .. } => {
                let actual = match hash.method {
                    FileIngestionMethod::Flat => flat_hash(&scratch, hash.hash.algo())?,
                    FileIngestionMethod::Recursive if hash.hash.algo() == HashAlgo::Sha256 => {
                        nar_hash
                    }
                    FileIngestionMethod::Recursive => {
                        kiln_store::nar::hash_path(&scratch, hash.hash.algo())
                            .map_err(|e| BuildError::store(format!("hashing output {name}"), e))?
                            .0
                    }
                };
                if actual != hash.hash {
                    return Err(BuildError::HashMismatch(Box::new(HashMismatch {
                        drv: drv_path.to_string(),
                        path: store_dir.display(path),
                        expected: hash.hash,
                        actual,
                    })));
                }
                if let Some(r) = references.iter().next() {
                    return Err(BuildError::FixedOutputReferences {
                        drv: drv_path.to_string(),
                        reference: store_dir.display(r),
                    });
                }
                let method = match hash.method {
                    FileIngestionMethod::Flat => "",
                    FileIngestionMethod::Recursive => "r:",
                };
                Some(format!("fixed:{method}{}", hash.hash.to_typed_nix32()))
            }
            _ => None,
        };
        produced.push(ProducedOutput {
            name: name.clone(),
            path: path.clone(),
            scratch,
            nar_hash,
            nar_size,
            references,
            ca,
        });
    }
    check_reference_rules(store_dir, drv_path, drv, &outputs, &produced, requisites_of)?;
    Ok(produced)
}

/// The hash of a flat fixed output: the output must be a regular file.
fn flat_hash(path: &Path, algo: HashAlgo) -> Result<Hash, BuildError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| BuildError::io(path, e))?;
    if !meta.is_file() {
        return Err(BuildError::Other(format!(
            "{}: a flat fixed-output derivation must produce a regular file",
            path.display()
        )));
    }
    let mut file = std::fs::File::open(path).map_err(|e| BuildError::io(path, e))?;
    let mut hasher = kiln_store::Hasher::new(algo);
    std::io::copy(&mut file, &mut hasher).map_err(|e| BuildError::io(path, e))?;
    Ok(hasher.finish())
}

#[derive(Clone, Copy, PartialEq)]
enum Rule {
    Allowed,
    Disallowed,
}

fn check_reference_rules(
    store_dir: &StoreDir,
    drv_path: &str,
    drv: &Derivation,
    outputs: &BTreeMap<String, StorePath>,
    produced: &[ProducedOutput],
    requisites_of: Requisites<'_>,
) -> Result<(), BuildError> {
    let rules = [
        ("allowedReferences", Rule::Allowed, false),
        ("disallowedReferences", Rule::Disallowed, false),
        ("allowedRequisites", Rule::Allowed, true),
        ("disallowedRequisites", Rule::Disallowed, true),
    ];
    for (attr, rule, transitive) in rules {
        let Some(spec) = drv.env.get(attr) else {
            continue;
        };
        let mut listed = BTreeSet::new();
        for item in spec.split_whitespace() {
            if let Some(path) = outputs.get(item) {
                listed.insert(path.clone());
            } else {
                let path = store_dir.parse_path(item).map_err(|e| {
                    BuildError::Other(format!(
                        "{drv_path}: {attr} item {item:?} is neither an output name nor a store path: {e}"
                    ))
                })?;
                listed.insert(path);
            }
        }
        for out in produced {
            let checked = if transitive {
                own_requisites(out, produced, requisites_of)?
            } else {
                out.references.clone()
            };
            for r in &checked {
                let present = listed.contains(r);
                if (rule == Rule::Allowed && !present) || (rule == Rule::Disallowed && present) {
                    return Err(BuildError::ReferenceRule {
                        drv: drv_path.to_string(),
                        output: out.name.clone(),
                        attr,
                        reference: store_dir.display(r),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Everything `out` depends on, itself included: its references, the
/// requisites of those in the store, and (through self-references between
/// outputs) the other new outputs' references.
fn own_requisites(
    out: &ProducedOutput,
    produced: &[ProducedOutput],
    requisites_of: Requisites<'_>,
) -> Result<BTreeSet<StorePath>, BuildError> {
    let new: BTreeMap<&StorePath, &ProducedOutput> =
        produced.iter().map(|p| (&p.path, p)).collect();
    let mut seen = BTreeSet::from([out.path.clone()]);
    let mut stack = vec![out];
    let mut external = BTreeSet::new();
    while let Some(o) = stack.pop() {
        for r in &o.references {
            if let Some(other) = new.get(r) {
                if seen.insert(r.clone()) {
                    stack.push(other);
                }
            } else {
                external.insert(r.clone());
            }
        }
    }
    seen.extend(requisites_of(&external)?);
    Ok(seen)
}
