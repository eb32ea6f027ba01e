//! Writing a bundle: [`export`] gathers a closure from the store and
//! [`assemble`] writes the archive (also used by tests to build bundles
//! with hand-made NARs).
//!
//! The file is written to a temp name beside the target, synced and
//! renamed, so a killed export never leaves a partial bundle under the
//! target's name. The zstd stream is multi-threaded; zstd's multi-threaded
//! output does not depend on the number of workers, so the same closure
//! and key give the same bytes on any machine.

use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_store::nar::dump_path;
use kiln_store::signing::SecretKey;
use kiln_store::store::Store;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::attest::{ProvenanceInput, envelope, provenance_statement};
use crate::collect::collect;
use crate::manifest::{Closure, Manifest, PathEntry};
use crate::sbom::{SbomInput, cyclonedx, spdx};
use crate::{BundleError, json_bytes};

/// zstd level and long-distance window of every bundle.
pub const ZSTD_LEVEL: i32 = 3;
pub const ZSTD_WINDOW_LOG: u32 = 27;
/// Bytes of input per zstd worker job.
pub const ZSTD_JOB_SIZE: u32 = 8 << 20;

pub struct ExportOptions {
    pub key: Option<SecretKey>,
    pub with_build_closure: bool,
    pub include_build_deps: bool,
    /// What was asked for (expression, attributes), for the provenance.
    pub external_parameters: Value,
    /// zstd workers (at least 1).
    pub threads: u32,
}

#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub paths: usize,
    pub nar_bytes: u64,
    pub file_bytes: u64,
}

/// Export the closure of `roots` to `out`.
pub fn export(
    store: &Store,
    roots: &[kiln_store::StorePath],
    options: &ExportOptions,
    out: &Path,
) -> Result<ExportSummary, BundleError> {
    let c = collect(
        store,
        roots,
        options.with_build_closure,
        options.include_build_deps,
    )?;
    let dir = c.store_dir.clone();
    let entry = |info: &kiln_store::store::ValidPathInfo, closure| PathEntry {
        path: info.path.clone(),
        closure,
        nar_hash: info.nar_hash,
        nar_size: info.nar_size,
        references: info.references.clone(),
        deriver: info.deriver.clone(),
        ca: info.ca.clone(),
        signatures: info.signatures.clone(),
    };
    let manifest = Manifest {
        store_dir: dir.clone(),
        roots: roots.to_vec(),
        paths: c
            .runtime
            .iter()
            .map(|i| entry(i, Closure::Runtime))
            .chain(c.build.iter().map(|i| entry(i, Closure::Build)))
            .collect(),
        build_deps: c
            .build_deps
            .iter()
            .map(|i| (i.path.clone(), i.nar_hash.to_base16()))
            .collect(),
    };
    let components = c.components();
    let (started, finished) = c.build_times();
    let sbom = SbomInput {
        store_dir: &dir,
        roots,
        components: &components,
        timestamp: finished.unwrap_or(0),
    };
    let records = c.root_records();
    let builds: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "derivation": r.drv,
                "startedOn": crate::time::rfc3339(r.started),
                "finishedOn": crate::time::rfc3339(r.finished),
                "builderId": r.builder_id,
                "kilnVersion": r.kiln_version,
                "sandbox": r.sandbox,
            })
        })
        .collect();
    let root_drvs: Vec<String> = roots
        .iter()
        .filter_map(|r| c.runtime.iter().find(|i| &i.path == r))
        .filter_map(|i| i.deriver.as_ref().map(|d| dir.display(d)))
        .collect();
    let provenance = ProvenanceInput {
        subjects: Vec::new(),
        external_parameters: options.external_parameters.clone(),
        internal_parameters: json!({
            "storeDir": dir.as_str(),
            "system": root_drvs.first().and_then(|d| {
                dir.parse_path(d).ok().and_then(|p| c.derivations.get(&p).map(|drv| drv.system.clone()))
            }),
            "builds": builds,
        }),
        resolved: c
            .resolved
            .iter()
            .map(|(p, h)| (dir.display(p), h.clone()))
            .collect(),
        builder_id: records
            .first()
            .map(|r| r.builder_id.clone())
            .unwrap_or_else(|| "urn:kiln:builder:unknown".to_string()),
        started,
        finished,
        invocation_id: root_drvs
            .first()
            .cloned()
            .unwrap_or_else(|| "urn:kiln:unknown".into()),
        byproducts: Vec::new(),
    };
    let store_ref = store;
    write_atomically(out, |file| {
        assemble(
            &manifest,
            &sbom,
            provenance,
            options.key.as_ref(),
            options.threads,
            file,
            &mut |entry, w| {
                let real = store_ref.real_path(&entry.path);
                let mut hashing = HashingWriter {
                    inner: w,
                    hasher: sha2::Sha256::new(),
                };
                dump_path(&real, &mut hashing).map_err(|e| {
                    BundleError::Refused(format!("reading {}: {e}", real.display()))
                })?;
                let got = hex::encode(hashing.hasher.finalize());
                if got != entry.nar_sha256() {
                    return Err(BundleError::Refused(format!(
                        "{} does not match its NAR hash in the database: the store is damaged (`kiln store verify --check-contents` names what; `kiln store repair` may fix it)",
                        store_ref.print_path(&entry.path)
                    )));
                }
                Ok(())
            },
        )
    })
}

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: sha2::Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write `out` through a temp file beside it, synced then renamed.
pub fn write_atomically(
    out: &Path,
    write: impl FnOnce(&mut WriteBack) -> Result<ExportSummary, BundleError>,
) -> Result<ExportSummary, BundleError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile_in(&dir, out)?;
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(BundleError::write)?;
        let mut file = WriteBack {
            file,
            started: 0,
            written: 0,
        };
        let summary = write(&mut file)?;
        file.file.sync_all().map_err(BundleError::write)?;
        std::fs::rename(&tmp, out).map_err(BundleError::write)?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A file whose write-back starts every 16 MiB
/// (`sync_file_range`), so the final `fsync` has little left to wait for:
/// the disk writes while zstd compresses.
pub struct WriteBack {
    file: std::fs::File,
    started: u64,
    written: u64,
}

const WRITE_BACK_CHUNK: u64 = 16 << 20;

impl Write for WriteBack {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_BACK_CHUNK {
            use std::os::fd::AsRawFd as _;
            // SAFETY: a plain syscall on a file descriptor this struct
            // owns; a failure only means the write-back starts later.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as i64,
                    (self.written - self.started) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn tempfile_in(dir: &Path, out: &Path) -> Result<PathBuf, BundleError> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(dir.join(format!(".{name}.tmp-{}", std::process::id())))
}

/// Write a whole bundle: the metadata entries, then each path's NAR as
/// `nar` writes it. `provenance`'s subjects and byproducts are filled in
/// here from the manifest and SBOMs.
pub fn assemble(
    manifest: &Manifest,
    sbom: &SbomInput,
    mut provenance: ProvenanceInput,
    key: Option<&SecretKey>,
    threads: u32,
    out: &mut dyn Write,
    nar: &mut dyn FnMut(&PathEntry, &mut dyn Write) -> Result<(), BundleError>,
) -> Result<ExportSummary, BundleError> {
    let dir = &manifest.store_dir;
    let manifest_bytes = json_bytes(&manifest.to_json());
    let cdx = json_bytes(&cyclonedx(sbom));
    let spdx_bytes = json_bytes(&spdx(sbom));
    let by_path = manifest.by_path();
    provenance.subjects = manifest
        .roots
        .iter()
        .map(|r| (dir.display(r), by_path[r].nar_sha256()))
        .collect();
    provenance.byproducts = vec![
        (
            crate::MANIFEST.to_string(),
            crate::sha256_hex(&manifest_bytes),
        ),
        (crate::SBOM_CDX.to_string(), crate::sha256_hex(&cdx)),
        (crate::SBOM_SPDX.to_string(), crate::sha256_hex(&spdx_bytes)),
    ];
    let statement = serde_json::to_vec(&provenance_statement(&provenance)).expect("JSON");
    let env = json_bytes(&envelope(&statement, key));
    let sums = manifest.sums(&manifest_bytes, &cdx, &spdx_bytes);

    let mut counting = CountingWriter {
        inner: out,
        count: 0,
    };
    let mut encoder =
        zstd::stream::write::Encoder::new(&mut counting, ZSTD_LEVEL).map_err(BundleError::write)?;
    encoder
        .multithread(threads.max(1))
        .map_err(BundleError::write)?;
    encoder.include_checksum(true).map_err(BundleError::write)?;
    encoder
        .long_distance_matching(true)
        .map_err(BundleError::write)?;
    encoder
        .window_log(ZSTD_WINDOW_LOG)
        .map_err(BundleError::write)?;
    let mut tar =
        crate::archive::TarWriter::new(std::io::BufWriter::with_capacity(1 << 20, encoder));
    tar.entry(crate::MANIFEST, &manifest_bytes)?;
    tar.entry(crate::SBOM_CDX, &cdx)?;
    tar.entry(crate::SBOM_SPDX, &spdx_bytes)?;
    tar.entry(crate::PROVENANCE, &env)?;
    tar.entry(crate::SUMS, sums.as_bytes())?;
    let mut nar_bytes = 0;
    for entry in &manifest.paths {
        tar.begin(&entry.entry_name(), entry.nar_size)?;
        nar(entry, &mut tar)?;
        tar.end()?;
        nar_bytes += entry.nar_size;
    }
    let buffered = tar.finish()?;
    let encoder = buffered
        .into_inner()
        .map_err(|e| BundleError::write(e.into_error()))?;
    encoder.finish().map_err(BundleError::write)?;
    Ok(ExportSummary {
        paths: manifest.paths.len(),
        nar_bytes,
        file_bytes: counting.count,
    })
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
