//! Reading and checking a bundle in one streaming pass.
//!
//! [`read_bundle`] checks, in this order, and stops at the first fault
//! with an error naming it:
//!
//! 1. the archive's structure (entry names and order, canonical headers,
//!    zero padding, the end marker; the zstd checksum);
//! 2. the envelope: payload type, every signature by a trusted key (and,
//!    unless told not to, that there is one);
//! 3. the statement: its types, subjects = the manifest's roots with their
//!    NAR sha256, and the manifest's and SBOMs' sha256 among its byproducts;
//! 4. the manifest: its fields, and that it is closed under references;
//! 5. the SBOMs: each lists exactly the manifest's paths (and build
//!    dependencies) with the same hashes; `SHA256SUMS` is what the
//!    manifest implies;
//! 6. each NAR, as it streams past: its entry, size, syntax and sha256.
//!
//! A [`Sink`] sees the manifest after step 5 and each NAR during step 6;
//! import writes them to a temp dir and registers nothing until the whole
//! pass succeeded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use kiln_store::signing::TrustedKeys;
use serde_json::Value;
use sha2::Digest as _;

use crate::BundleError;
use crate::archive::TarReader;
use crate::attest::{PROVENANCE_TYPE, STATEMENT_TYPE, descriptors, open_envelope};
use crate::manifest::{Manifest, PathEntry};

pub struct ReadOptions<'a> {
    pub trusted: &'a TrustedKeys,
    /// Demand a signature by a trusted key (`--no-check-sigs` turns it off).
    pub check_sigs: bool,
}

/// What a checked bundle holds besides its NARs.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Manifest,
    pub signers: Vec<String>,
    pub unknown_signers: Vec<String>,
    pub statement: Value,
    pub cdx: Value,
    pub spdx: Value,
    /// The envelope's bytes (a VSA names them by digest).
    pub envelope: Vec<u8>,
}

pub trait Sink {
    /// Everything but the NARs checked out.
    fn manifest(&mut self, _checked: &Checked) -> Result<(), BundleError> {
        Ok(())
    }
    /// Consume one NAR (exactly its bytes); the caller checks its size and hash.
    fn nar(&mut self, entry: &PathEntry, data: &mut dyn BufRead) -> Result<(), BundleError>;
}

/// Checks every NAR's syntax without writing anything.
pub struct Validate;

impl Sink for Validate {
    fn nar(&mut self, entry: &PathEntry, data: &mut dyn BufRead) -> Result<(), BundleError> {
        kiln_store::nar::validate(&mut &mut *data)
            .map(|_| ())
            .map_err(|e| nar_error(entry, e))
    }
}

pub fn nar_error(entry: &PathEntry, e: impl std::fmt::Display) -> BundleError {
    BundleError::invalid(format!("{} ({}): {e}", entry.entry_name(), entry.path))
}

struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Read the whole bundle from `input`, checking everything (module docs).
pub fn read_bundle(
    input: impl Read,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<Checked, BundleError> {
    let decoder = zstd::stream::read::Decoder::new(input)
        .map_err(|e| BundleError::invalid(format!("not a zstd stream: {e}")))?;
    let mut tar = TarReader::new(ZstdErrors(decoder));
    let mut metadata = Vec::new();
    for want in [
        crate::MANIFEST,
        crate::SBOM_CDX,
        crate::SBOM_SPDX,
        crate::PROVENANCE,
        crate::SUMS,
    ] {
        match tar.next_entry()? {
            Some((name, _)) if name == want => metadata.push(tar.read_entry()?),
            Some((name, _)) => {
                return Err(BundleError::invalid(format!(
                    "entry {name:?} where {want} belongs: not a kiln bundle, or damaged"
                )));
            }
            None => {
                return Err(BundleError::invalid(format!(
                    "the archive ends where {want} belongs"
                )));
            }
        }
    }
    let [manifest_bytes, cdx_bytes, spdx_bytes, envelope, sums] =
        <[Vec<u8>; 5]>::try_from(metadata).expect("five entries");

    let opened = open_envelope(
        crate::PROVENANCE,
        &envelope,
        options.trusted,
        options.check_sigs,
    )?;
    // The envelope is the one entry no digest covers: it must be in the
    // exact form kiln writes, so no byte of it can change unnoticed.
    let canonical = serde_json::from_slice::<Value>(&envelope)
        .map(|v| crate::json_bytes(&v) == envelope)
        .unwrap_or(false);
    if !canonical {
        return Err(BundleError::invalid(format!(
            "{} is not in the form kiln writes (changed?)",
            crate::PROVENANCE
        )));
    }
    let bad = |why: String| BundleError::invalid(format!("{}: {why}", crate::PROVENANCE));
    let statement: Value = serde_json::from_slice(&opened.payload)
        .map_err(|e| bad(format!("the statement is not JSON ({e})")))?;
    if statement.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE)
        || statement.get("predicateType").and_then(Value::as_str) != Some(PROVENANCE_TYPE)
    {
        return Err(bad(
            "not an in-toto v1 statement of SLSA provenance v1".into()
        ));
    }
    let manifest = Manifest::parse(&manifest_bytes)?;
    let dir = &manifest.store_dir;
    let by_path = manifest.by_path();
    let subjects =
        descriptors(statement.get("subject")).ok_or_else(|| bad("no subjects".into()))?;
    let roots: Vec<(String, String)> = manifest
        .roots
        .iter()
        .map(|r| (dir.display(r), by_path[r].nar_sha256()))
        .collect();
    if subjects != roots {
        return Err(bad(
            "its subjects are not the manifest's roots with their NAR hashes".into(),
        ));
    }
    let byproducts = descriptors(statement.pointer("/predicate/runDetails/byproducts"))
        .ok_or_else(|| bad("no byproducts".into()))?;
    for (name, bytes) in [
        (crate::MANIFEST, &manifest_bytes),
        (crate::SBOM_CDX, &cdx_bytes),
        (crate::SBOM_SPDX, &spdx_bytes),
    ] {
        let digest = crate::sha256_hex(bytes);
        if !byproducts.iter().any(|(n, d)| n == name && *d == digest) {
            return Err(BundleError::invalid(format!(
                "{name} does not match the digest the signed statement gives it (changed?)"
            )));
        }
    }
    let mut described: BTreeMap<String, String> = manifest
        .paths
        .iter()
        .filter(|p| p.closure == crate::manifest::Closure::Runtime)
        .map(|p| (dir.display(&p.path), p.nar_sha256()))
        .collect();
    described.extend(
        manifest
            .build_deps
            .iter()
            .map(|(p, h)| (dir.display(p), h.clone())),
    );
    crate::sbom::check_cyclonedx(&cdx_bytes, &described)?;
    crate::sbom::check_spdx(&spdx_bytes, &described)?;
    if sums
        != manifest
            .sums(&manifest_bytes, &cdx_bytes, &spdx_bytes)
            .as_bytes()
    {
        return Err(BundleError::invalid(format!(
            "{} does not list the entries the manifest implies",
            crate::SUMS
        )));
    }
    let checked = Checked {
        cdx: serde_json::from_slice(&cdx_bytes).expect("checked above"),
        spdx: serde_json::from_slice(&spdx_bytes).expect("checked above"),
        manifest,
        signers: opened.signers,
        unknown_signers: opened.unknown,
        statement,
        envelope,
    };
    sink.manifest(&checked)?;

    for entry in &checked.manifest.paths {
        match tar.next_entry()? {
            Some((name, size)) if name == entry.entry_name() => {
                if size != entry.nar_size {
                    return Err(nar_error(
                        entry,
                        format!("{size} bytes, the manifest says {}", entry.nar_size),
                    ));
                }
            }
            Some((name, _)) => {
                return Err(BundleError::invalid(format!(
                    "entry {name:?} where {} belongs",
                    entry.entry_name()
                )));
            }
            None => {
                return Err(BundleError::invalid(format!(
                    "the archive ends where {} belongs",
                    entry.entry_name()
                )));
            }
        }
        let mut data = BufReader::with_capacity(
            256 << 10,
            Hashing {
                inner: &mut tar,
                hasher: sha2::Sha256::new(),
                count: 0,
            },
        );
        sink.nar(entry, &mut data)?;
        let extra = std::io::copy(&mut data, &mut std::io::sink()).map_err(BundleError::read)?;
        if extra != 0 {
            return Err(nar_error(
                entry,
                format!("{extra} bytes follow the end of the NAR"),
            ));
        }
        let hashing = data.into_inner();
        let digest = hex::encode(hashing.hasher.finalize());
        if digest != entry.nar_sha256() {
            return Err(nar_error(
                entry,
                format!(
                    "sha256 {digest}, the manifest says {} (changed?)",
                    entry.nar_sha256()
                ),
            ));
        }
    }
    if let Some((name, _)) = tar.next_entry()? {
        return Err(BundleError::invalid(format!(
            "entry {name:?} is not in the manifest"
        )));
    }
    Ok(checked)
}

/// zstd's errors are the bundle's damage, not an I/O failure.
struct ZstdErrors<R>(R);

impl<R: Read> Read for ZstdErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::Other || e.kind() == std::io::ErrorKind::InvalidData
            {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the zstd stream is damaged: {e}"),
                )
            } else {
                e
            }
        })
    }
}
