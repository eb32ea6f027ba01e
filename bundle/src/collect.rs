//! What the store knows about a closure, gathered once for export: path
//! infos, the derivations the paths were built from, their `meta`, their
//! build records, their upstream sources, and the build inputs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kiln_builder::record::{BuildRecord, read_record};
use kiln_store::derivation::{Derivation, DerivationOutput};
use kiln_store::store::{Store, ValidPathInfo};
use kiln_store::{StoreDir, StorePath};
use serde_json::Value;

use crate::BundleError;

/// An upstream source: where it was fetched from and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub url: String,
    pub algo: String,
    pub hex: String,
}

/// Everything an SBOM says about one path.
#[derive(Debug, Clone)]
pub struct Component {
    pub path: StorePath,
    pub name: String,
    pub version: Option<String>,
    pub nar_sha256: String,
    pub nar_size: u64,
    pub deriver: Option<StorePath>,
    /// `spdxId`s, or names of licenses without one.
    pub licenses: Vec<License>,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub sources: Vec<Source>,
    /// Runtime references (itself excluded).
    pub references: Vec<StorePath>,
    /// The inputs of its derivation that the SBOM also describes.
    pub build_inputs: Vec<StorePath>,
    /// A build-time input only (`--include-build-deps`).
    pub build_only: bool,
    pub is_root: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum License {
    Spdx(String),
    Named(String),
}

/// A closure and what is known about it.
pub struct Collected {
    pub store_dir: StoreDir,
    pub roots: Vec<StorePath>,
    /// The runtime closure, references first.
    pub runtime: Vec<ValidPathInfo>,
    /// `--with-build-closure`: derivations, sources and fixed outputs the
    /// runtime closure was built from, not in it; references first.
    pub build: Vec<ValidPathInfo>,
    /// `--include-build-deps`: inputs of the derivations, not in the runtime closure.
    pub build_deps: Vec<ValidPathInfo>,
    /// Every valid derivation the runtime paths came from, and their inputs'.
    pub derivations: BTreeMap<StorePath, Derivation>,
    pub meta: BTreeMap<StorePath, Value>,
    pub records: BTreeMap<StorePath, BuildRecord>,
    /// Every build input (derivations, sources, input outputs and their
    /// closures) with its NAR sha256, sorted.
    pub resolved: Vec<(StorePath, String)>,
}

/// Read a valid `.drv`.
pub fn read_derivation(store: &Store, drv: &StorePath) -> Result<Derivation, BundleError> {
    let real = store.real_path(drv);
    let bytes = std::fs::read(&real)
        .map_err(|e| BundleError::invalid(format!("reading {}: {e}", real.display())))?;
    Derivation::parse(store.store_dir(), &bytes).map_err(|e| {
        BundleError::invalid(format!(
            "{} is not a derivation: {e}",
            store.print_path(drv)
        ))
    })
}

/// The paths a derivation's build sees as inputs (sources and the used
/// outputs of input derivations).
pub fn inputs_of(
    drv: &Derivation,
    derivations: &BTreeMap<StorePath, Derivation>,
) -> BTreeSet<StorePath> {
    let mut out = drv.input_srcs.clone();
    for (input, outputs) in &drv.input_drvs {
        if let Some(input) = derivations.get(input) {
            for name in outputs {
                if let Some(p) = input.outputs.get(name).and_then(DerivationOutput::path) {
                    out.insert(p.clone());
                }
            }
        }
    }
    out
}

fn infos(store: &Store, paths: &BTreeSet<StorePath>) -> Result<Vec<ValidPathInfo>, BundleError> {
    store
        .topo_sort(paths)?
        .iter()
        .map(|p| {
            store.path_info(p)?.ok_or_else(|| {
                BundleError::Refused(format!("{} is not valid", store.print_path(p)))
            })
        })
        .collect()
}

fn valid_closure(
    store: &Store,
    paths: &BTreeSet<StorePath>,
) -> Result<BTreeSet<StorePath>, BundleError> {
    let list: Vec<StorePath> = paths.iter().cloned().collect();
    let valid = store.valid_among(&list)?;
    let present: Vec<StorePath> = list
        .into_iter()
        .zip(valid)
        .filter_map(|(p, v)| v.then_some(p))
        .collect();
    Ok(store.closure(&present)?)
}

pub fn collect(
    store: &Store,
    roots: &[StorePath],
    with_build_closure: bool,
    include_build_deps: bool,
) -> Result<Collected, BundleError> {
    let runtime_set = store.closure(roots)?;
    let runtime = infos(store, &runtime_set)?;

    // The derivation graph behind the runtime closure.
    let mut derivations = BTreeMap::new();
    let mut queue: VecDeque<StorePath> = runtime.iter().filter_map(|i| i.deriver.clone()).collect();
    while let Some(drv) = queue.pop_front() {
        if derivations.contains_key(&drv) || !store.is_valid(&drv)? {
            continue;
        }
        let parsed = read_derivation(store, &drv)?;
        queue.extend(parsed.input_drvs.keys().cloned());
        derivations.insert(drv, parsed);
    }
    let mut all_inputs = BTreeSet::new();
    let mut fixed_outputs = BTreeSet::new();
    for (path, drv) in &derivations {
        all_inputs.insert(path.clone());
        all_inputs.extend(inputs_of(drv, &derivations));
        for out in drv.outputs.values() {
            if let DerivationOutput::Fixed { path, .. } = out {
                fixed_outputs.insert(path.clone());
            }
        }
    }
    let resolved_set = valid_closure(store, &all_inputs)?;
    let mut resolved = Vec::new();
    for p in &resolved_set {
        if let Some(info) = store.path_info(p)? {
            resolved.push((p.clone(), info.nar_hash.to_base16()));
        }
    }

    let build = if with_build_closure {
        let mut wanted: BTreeSet<StorePath> = derivations.keys().cloned().collect();
        wanted.extend(fixed_outputs.iter().cloned());
        let set: BTreeSet<StorePath> = valid_closure(store, &wanted)?
            .difference(&runtime_set)
            .cloned()
            .collect();
        infos(store, &set)?
    } else {
        Vec::new()
    };
    let build_deps = if include_build_deps {
        let set: BTreeSet<StorePath> = resolved_set
            .iter()
            .filter(|p| !runtime_set.contains(*p) && !p.name().ends_with(".drv"))
            .cloned()
            .collect();
        let mut list = Vec::new();
        for p in &set {
            list.extend(store.path_info(p)?);
        }
        list
    } else {
        Vec::new()
    };

    let mut meta = BTreeMap::new();
    let mut records = BTreeMap::new();
    for drv in derivations.keys() {
        if let Some(json) = store.derivation_meta(drv)?
            && let Ok(value) = serde_json::from_str::<Value>(&json)
        {
            meta.insert(drv.clone(), value);
        }
        if let Some(record) = read_record(store, drv) {
            records.insert(drv.clone(), record);
        }
    }
    Ok(Collected {
        store_dir: store.store_dir().clone(),
        roots: roots.to_vec(),
        runtime,
        build,
        build_deps,
        derivations,
        meta,
        records,
        resolved,
    })
}

/// Nix's `parseDrvName`: the name ends at the first `-` not followed by a
/// letter, the version is the rest.
pub fn split_name(name: &str) -> (String, Option<String>) {
    let bytes = name.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (name[..i].to_string(), Some(name[i + 1..].to_string()));
        }
    }
    (name.to_string(), None)
}

impl Collected {
    /// The components an SBOM lists: the runtime closure, then the build
    /// dependencies.
    pub fn components(&self) -> Vec<Component> {
        let described: BTreeSet<&StorePath> = self
            .runtime
            .iter()
            .chain(&self.build_deps)
            .map(|i| &i.path)
            .collect();
        let roots: BTreeSet<&StorePath> = self.roots.iter().collect();
        let mut out = Vec::new();
        for (info, build_only) in self
            .runtime
            .iter()
            .map(|i| (i, false))
            .chain(self.build_deps.iter().map(|i| (i, true)))
        {
            let drv = info.deriver.as_ref().and_then(|d| self.derivations.get(d));
            let meta = info.deriver.as_ref().and_then(|d| self.meta.get(d));
            let (name, mut version) = split_name(info.path.name());
            let text = |field: &str| {
                meta.and_then(|m| m.get(field))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            if let Some(v) = text("version") {
                version = Some(v);
            }
            let licenses = meta
                .and_then(|m| m.get("licenses"))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|l| {
                            if let Some(id) = l.get("spdxId").and_then(Value::as_str) {
                                Some(License::Spdx(id.to_string()))
                            } else {
                                l.get("name")
                                    .and_then(Value::as_str)
                                    .map(|n| License::Named(n.to_string()))
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut sources = Vec::new();
            let mut build_inputs = Vec::new();
            if let Some(drv) = drv {
                // A fixed output is itself a source: where it came from.
                sources.extend(fixed_source(drv));
                for input_drv in drv.input_drvs.keys() {
                    if let Some(input) = self.derivations.get(input_drv) {
                        sources.extend(fixed_source(input));
                    }
                }
                build_inputs = inputs_of(drv, &self.derivations)
                    .into_iter()
                    .filter(|p| described.contains(p) && *p != info.path)
                    .collect();
            }
            sources.dedup();
            out.push(Component {
                path: info.path.clone(),
                name,
                version,
                nar_sha256: info.nar_hash.to_base16(),
                nar_size: info.nar_size,
                deriver: info.deriver.clone(),
                licenses,
                description: text("description"),
                homepage: text("homepage"),
                sources,
                references: info
                    .references
                    .iter()
                    .filter(|r| **r != info.path)
                    .cloned()
                    .collect(),
                build_inputs,
                build_only,
                is_root: roots.contains(&info.path),
            });
        }
        out
    }

    /// The earliest start and latest end among the roots' build records.
    pub fn build_times(&self) -> (Option<i64>, Option<i64>) {
        let records: Vec<&BuildRecord> = self.root_records();
        (
            records.iter().map(|r| r.started).min(),
            records.iter().map(|r| r.finished).max(),
        )
    }

    pub fn root_records(&self) -> Vec<&BuildRecord> {
        let mut out: Vec<&BuildRecord> = Vec::new();
        for root in &self.roots {
            if let Some(info) = self.runtime.iter().find(|i| &i.path == root)
                && let Some(d) = &info.deriver
                && let Some(r) = self.records.get(d)
                && !out.iter().any(|o| o.drv == r.drv)
            {
                out.push(r);
            }
        }
        out
    }
}

/// The URL and hash of a fixed-output derivation with a `url`/`urls`.
fn fixed_source(drv: &Derivation) -> Option<Source> {
    let out = drv.outputs.get("out")?;
    let DerivationOutput::Fixed { hash, .. } = out else {
        return None;
    };
    let url = drv.env.get("url").cloned().or_else(|| {
        drv.env
            .get("urls")
            .and_then(|u| u.split_whitespace().next().map(str::to_string))
    })?;
    Some(Source {
        url,
        algo: hash.hash.algo().name().to_string(),
        hex: hash.hash.to_base16(),
    })
}
