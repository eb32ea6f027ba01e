//! `manifest.json`: what a bundle holds.
//!
//! ```json
//! { "format": "kiln-bundle", "version": 1, "storeDir": "/kiln/store",
//!   "roots": ["/kiln/store/…-hello-2.12"],
//!   "paths": [ { "path": "…", "closure": "runtime" | "build",
//!                "narHash": "sha256:<nixbase32>", "narSha256": "<hex>",
//!                "narSize": 1234, "references": ["…"], "deriver": "…" | null,
//!                "ca": "…" | null, "signatures": ["name:base64"],
//!                "entry": "nar/<hash part>.nar" } ],
//!   "buildDependencies": [ { "path": "…", "narSha256": "<hex>" } ] }
//! ```
//!
//! Paths come references first (runtime closure, then the build closure of
//! `--with-build-closure`); `buildDependencies` (`--include-build-deps`)
//! are described by the SBOMs but not carried.

use std::collections::{BTreeMap, BTreeSet};

use kiln_store::hash::{Hash, HashAlgo};
use kiln_store::{StoreDir, StorePath};
use serde_json::{Value, json};

use crate::BundleError;

pub const FORMAT: &str = "kiln-bundle";
pub const VERSION: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Closure {
    /// In the roots' runtime closure.
    Runtime,
    /// Needed only to rebuild (`--with-build-closure`).
    Build,
}

impl Closure {
    pub fn as_str(self) -> &'static str {
        match self {
            Closure::Runtime => "runtime",
            Closure::Build => "build",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    pub path: StorePath,
    pub closure: Closure,
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub references: BTreeSet<StorePath>,
    pub deriver: Option<StorePath>,
    pub ca: Option<String>,
    pub signatures: Vec<String>,
}

impl PathEntry {
    pub fn entry_name(&self) -> String {
        format!("nar/{}.nar", self.path.hash_part())
    }
    pub fn nar_sha256(&self) -> String {
        self.nar_hash.to_base16()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub store_dir: StoreDir,
    pub roots: Vec<StorePath>,
    pub paths: Vec<PathEntry>,
    /// (path, NAR sha256 hex): build inputs the SBOMs describe.
    pub build_deps: Vec<(StorePath, String)>,
}

impl Manifest {
    pub fn to_json(&self) -> Value {
        let dir = &self.store_dir;
        let paths: Vec<Value> = self
            .paths
            .iter()
            .map(|p| {
                json!({
                    "path": dir.display(&p.path),
                    "closure": p.closure.as_str(),
                    "narHash": p.nar_hash.to_typed_nix32(),
                    "narSha256": p.nar_sha256(),
                    "narSize": p.nar_size,
                    "references": p.references.iter().map(|r| dir.display(r)).collect::<Vec<_>>(),
                    "deriver": p.deriver.as_ref().map(|d| dir.display(d)),
                    "ca": p.ca,
                    "signatures": p.signatures,
                    "entry": p.entry_name(),
                })
            })
            .collect();
        json!({
            "format": FORMAT,
            "version": VERSION,
            "storeDir": dir.as_str(),
            "roots": self.roots.iter().map(|r| dir.display(r)).collect::<Vec<_>>(),
            "paths": paths,
            "buildDependencies": self.build_deps.iter().map(|(p, h)| json!({
                "path": dir.display(p), "narSha256": h,
            })).collect::<Vec<_>>(),
        })
    }

    /// Parse and check a manifest: its fields, and that it is closed
    /// (every reference and root is one of its paths, each path once).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let bad = |why: String| BundleError::invalid(format!("{}: {why}", crate::MANIFEST));
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(bad("not a kiln bundle manifest".into()));
        }
        let version = v.get("version").and_then(Value::as_u64);
        if version != Some(VERSION) {
            return Err(bad(format!(
                "format version {version:?}; this kiln reads version {VERSION} (a newer kiln may read it)"
            )));
        }
        let dir = v
            .get("storeDir")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no storeDir".into()))?;
        let store_dir = StoreDir::new(dir).map_err(|e| bad(format!("storeDir: {e}")))?;
        let path = |v: Option<&Value>, what: &str| -> Result<StorePath, BundleError> {
            let text = v
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{what} is not a string")))?;
            store_dir
                .parse_path(text)
                .map_err(|e| bad(format!("{what} {text:?}: {e}")))
        };
        let strings = |v: Option<&Value>, what: &str| -> Result<Vec<Value>, BundleError> {
            v.and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| bad(format!("{what} is not a list")))
        };
        let roots = strings(v.get("roots"), "roots")?
            .iter()
            .map(|r| path(Some(r), "a root"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut paths = Vec::new();
        for p in strings(v.get("paths"), "paths")? {
            let store_path = path(p.get("path"), "a path")?;
            let at = store_dir.display(&store_path);
            let field = |name: &str| p.get(name);
            let closure = match field("closure").and_then(Value::as_str) {
                Some("runtime") => Closure::Runtime,
                Some("build") => Closure::Build,
                other => return Err(bad(format!("{at}: closure {other:?}"))),
            };
            let nar_hash = field("narHash")
                .and_then(Value::as_str)
                .and_then(|h| Hash::parse(h, Some(HashAlgo::Sha256)).ok())
                .ok_or_else(|| bad(format!("{at}: narHash is not a sha256 hash")))?;
            if field("narSha256").and_then(Value::as_str) != Some(nar_hash.to_base16().as_str()) {
                return Err(bad(format!("{at}: narSha256 and narHash disagree")));
            }
            let nar_size = field("narSize")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("{at}: narSize")))?;
            let references = strings(field("references"), "references")?
                .iter()
                .map(|r| path(Some(r), "a reference"))
                .collect::<Result<BTreeSet<_>, _>>()?;
            let deriver = match field("deriver") {
                Some(Value::Null) | None => None,
                d => Some(path(d, "a deriver")?),
            };
            let ca = match field("ca") {
                Some(Value::Null) | None => None,
                Some(Value::String(s)) => Some(s.clone()),
                _ => return Err(bad(format!("{at}: ca"))),
            };
            let signatures = strings(field("signatures"), "signatures")?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("{at}: signatures")))?;
            let entry = PathEntry {
                path: store_path,
                closure,
                nar_hash,
                nar_size,
                references,
                deriver,
                ca,
                signatures,
            };
            if field("entry").and_then(Value::as_str) != Some(entry.entry_name().as_str()) {
                return Err(bad(format!("{at}: entry is not {}", entry.entry_name())));
            }
            paths.push(entry);
        }
        let mut build_deps = Vec::new();
        for d in strings(v.get("buildDependencies"), "buildDependencies")? {
            let p = path(d.get("path"), "a build dependency")?;
            let h = d
                .get("narSha256")
                .and_then(Value::as_str)
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| bad("a build dependency's narSha256".into()))?;
            build_deps.push((p, h.to_string()));
        }
        let manifest = Manifest {
            store_dir,
            roots,
            paths,
            build_deps,
        };
        manifest.check_closed()?;
        if manifest.to_json() != v {
            return Err(bad("has fields kiln does not know".into()));
        }
        Ok(manifest)
    }

    fn check_closed(&self) -> Result<(), BundleError> {
        let dir = &self.store_dir;
        let bad = |why: String| BundleError::invalid(format!("{}: {why}", crate::MANIFEST));
        let mut seen = BTreeSet::new();
        let mut hash_parts = BTreeSet::new();
        for p in &self.paths {
            if !seen.insert(&p.path) || !hash_parts.insert(p.path.hash_part()) {
                return Err(bad(format!("{} is listed twice", dir.display(&p.path))));
            }
        }
        if self.roots.is_empty() {
            return Err(bad("no roots".into()));
        }
        for root in &self.roots {
            if !seen.contains(root) {
                return Err(bad(format!(
                    "the root {} is not in the bundle",
                    dir.display(root)
                )));
            }
        }
        for p in &self.paths {
            for r in &p.references {
                if !seen.contains(r) {
                    return Err(bad(format!(
                        "{} refers to {}, which is not in the bundle: the closure is not complete",
                        dir.display(&p.path),
                        dir.display(r)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Paths by store path.
    pub fn by_path(&self) -> BTreeMap<&StorePath, &PathEntry> {
        self.paths.iter().map(|p| (&p.path, p)).collect()
    }

    /// `SHA256SUMS`: one `HEX  NAME` line per entry but the envelope and
    /// itself, in archive order.
    pub fn sums(&self, manifest: &[u8], cdx: &[u8], spdx: &[u8]) -> String {
        let mut out = String::new();
        for (name, bytes) in [
            (crate::MANIFEST, manifest),
            (crate::SBOM_CDX, cdx),
            (crate::SBOM_SPDX, spdx),
        ] {
            out += &format!("{}  {name}\n", crate::sha256_hex(bytes));
        }
        for p in &self.paths {
            out += &format!("{}  {}\n", p.nar_sha256(), p.entry_name());
        }
        out
    }
}
