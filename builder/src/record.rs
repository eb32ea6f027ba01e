//! Build records: what provenance needs to know about a build, written
//! when the build happens.
//!
//! After a derivation's outputs are registered, the build writes
//! `STATE/build-records/<drv base name>.json`: the start and end time
//! (wall clock, Unix seconds), who built it (the builder identity, a URI),
//! kiln's version, the sandbox settings, and each output with its NAR hash.
//! A bundle's attestation (`kiln bundle export`) states these rather than
//! what the exporter assumes. The file is written to a temp name, synced
//! and renamed, so a reader sees a whole record or none; a later rebuild of
//! the same derivation (after a GC) replaces it.
//!
//! A path built elsewhere (imported, or built before records existed) has
//! no record, and its provenance says so by leaving the times out.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_store::StorePath;
use kiln_store::store::Store;
use serde_json::{Value, json};

use crate::build::BuildSettings;
use crate::error::BuildError;
use crate::outputs::ProducedOutput;

/// The version of kiln that builds (the workspace's version).
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a build recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    /// The derivation, as printed (`/kiln/store/…drv`).
    pub drv: String,
    /// Wall-clock start and end, Unix seconds.
    pub started: i64,
    pub finished: i64,
    /// Who built it: `urn:kiln:builder:<host>:<uid>`.
    pub builder_id: String,
    pub kiln_version: String,
    /// The sandbox settings, as JSON (`kind`, `network`, `seccomp`, …).
    pub sandbox: Value,
    /// Output name to (printed path, NAR hash `sha256:<nixbase32>`).
    pub outputs: BTreeMap<String, (String, String)>,
}

impl BuildRecord {
    pub fn to_json(&self) -> Value {
        let outputs: serde_json::Map<String, Value> = self
            .outputs
            .iter()
            .map(|(name, (path, hash))| (name.clone(), json!({"path": path, "narHash": hash})))
            .collect();
        json!({
            "version": 1,
            "drv": self.drv,
            "started": self.started,
            "finished": self.finished,
            "builderId": self.builder_id,
            "kilnVersion": self.kiln_version,
            "sandbox": self.sandbox,
            "outputs": outputs,
        })
    }

    pub fn from_json(value: &Value) -> Option<BuildRecord> {
        let outputs = value
            .get("outputs")?
            .as_object()?
            .iter()
            .map(|(name, o)| {
                Some((
                    name.clone(),
                    (
                        o.get("path")?.as_str()?.to_string(),
                        o.get("narHash")?.as_str()?.to_string(),
                    ),
                ))
            })
            .collect::<Option<_>>()?;
        Some(BuildRecord {
            drv: value.get("drv")?.as_str()?.to_string(),
            started: value.get("started")?.as_i64()?,
            finished: value.get("finished")?.as_i64()?,
            builder_id: value.get("builderId")?.as_str()?.to_string(),
            kiln_version: value.get("kilnVersion")?.as_str()?.to_string(),
            sandbox: value.get("sandbox")?.clone(),
            outputs,
        })
    }
}

/// `STATE/build-records`.
pub fn records_dir(store: &Store) -> PathBuf {
    store.state_dir().join("build-records")
}

fn record_path(store: &Store, drv: &StorePath) -> PathBuf {
    records_dir(store).join(format!("{drv}.json"))
}

/// Wall-clock seconds since the epoch.
pub fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// This machine's builder identity: `urn:kiln:builder:<host>:<uid>`.
pub fn builder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "localhost".to_string());
    let uid = rustix::process::getuid().as_raw();
    format!("urn:kiln:builder:{host}:{uid}")
}

/// The sandbox settings of a build, as a record states them.
pub fn sandbox_settings(settings: &BuildSettings, builtin: bool, network: bool) -> Value {
    json!({
        "kind": if builtin { "builtin" } else { "bubblewrap" },
        "network": network,
        "seccomp": !builtin,
        "buildUser": settings.build_users.is_some() && !builtin,
        "cores": settings.cores,
        "timeout": settings.limits.timeout.map(|d| d.as_secs()),
        "maxSilentTime": settings.limits.max_silent.map(|d| d.as_secs()),
    })
}

/// Write the record of a finished build (after its outputs are valid).
/// A failure to write is logged, not fatal: the build itself succeeded.
pub fn write_record(
    store: &Store,
    drv: &StorePath,
    started: i64,
    sandbox: Value,
    produced: &[ProducedOutput],
) {
    let record = BuildRecord {
        drv: store.print_path(drv),
        started,
        finished: wall_now().max(started),
        builder_id: builder_id(),
        kiln_version: KILN_VERSION.to_string(),
        sandbox,
        outputs: produced
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    (store.print_path(&o.path), o.nar_hash.to_typed_nix32()),
                )
            })
            .collect(),
    };
    if let Err(e) = write_atomically(&record_path(store, drv), &record.to_json()) {
        tracing::warn!("cannot write the build record of {drv}: {e}");
    }
}

fn write_atomically(path: &Path, value: &Value) -> Result<(), BuildError> {
    let dir = path.parent().expect("records live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| BuildError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(|e| BuildError::io(&tmp, e))?;
    let mut text = serde_json::to_vec_pretty(value).expect("JSON values serialise");
    text.push(b'\n');
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| BuildError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| BuildError::io(path, e))?;
    Ok(())
}

/// The record of `drv`'s build in this store, if there is one.
pub fn read_record(store: &Store, drv: &StorePath) -> Option<BuildRecord> {
    let bytes = std::fs::read(record_path(store, drv)).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    BuildRecord::from_json(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let record = BuildRecord {
            drv: "/kiln/store/aaaa-x.drv".into(),
            started: 10,
            finished: 12,
            builder_id: builder_id(),
            kiln_version: KILN_VERSION.into(),
            sandbox: json!({"kind": "bubblewrap", "network": false}),
            outputs: [(
                "out".to_string(),
                ("/kiln/store/b-x".to_string(), "sha256:0".to_string()),
            )]
            .into_iter()
            .collect(),
        };
        assert_eq!(BuildRecord::from_json(&record.to_json()), Some(record));
        assert!(builder_id().starts_with("urn:kiln:builder:"));
        assert_eq!(BuildRecord::from_json(&json!({"drv": 1})), None);
    }
}
