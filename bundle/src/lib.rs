//! kiln-bundle: a closure in one file, with SBOMs and signed provenance.
//!
//! A bundle is a zstd-compressed tar ([`archive`]) whose entries come in a
//! fixed order:
//!
//! 1. `manifest.json` ([`manifest`]): format version, store dir, roots, and
//!    every path with its NAR hash, size, references, deriver and ca;
//! 2. `sbom.cdx.json` and `sbom.spdx.json` ([`sbom`]): CycloneDX 1.6 and
//!    SPDX 2.3;
//! 3. `provenance.dsse.json` ([`attest`]): an in-toto Statement v1 with a
//!    SLSA Provenance v1 predicate in a DSSE envelope, signed with ed25519;
//! 4. `SHA256SUMS`: `sha256sum -c` input for every other entry but the
//!    envelope;
//! 5. `nar/<hash part>.nar` for every path, in manifest order.
//!
//! The chain of trust: the signature covers the statement; the statement
//! names the roots by NAR sha256 and the manifest and SBOMs by sha256; the
//! manifest names every NAR by sha256. [`read::read_bundle`] checks the
//! chain while it streams, and [`import`] registers nothing until every
//! byte was checked. `docs/bundle-format.md` is the specification.
//!
//! Code map: [`collect`] gathers what the store knows about a closure,
//! [`export`] writes a bundle, [`read`] verifies one, [`import`] installs
//! one through `Store::install`, [`reproduce`] rebuilds one and signs a
//! verification summary.

pub mod archive;
pub mod attest;
pub mod collect;
pub mod export;
pub mod import;
pub mod manifest;
pub mod read;
pub mod reproduce;
pub mod sbom;
pub mod time;

use kiln_store::store::StoreError;

/// Why a bundle could not be written, verified or imported.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle is damaged, changed or not a bundle.
    #[error("{0}")]
    Invalid(String),
    /// The signature is missing, unknown or wrong.
    #[error("{0}")]
    Untrusted(String),
    /// The request cannot be done with this store (wrong store dir, …).
    #[error("{0}")]
    Refused(String),
    #[error("reading the bundle: {0}")]
    Read(std::io::Error),
    #[error("writing the bundle: {0}")]
    Write(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] kiln_builder::BuildError),
}

impl BundleError {
    pub fn invalid(msg: String) -> BundleError {
        BundleError::Invalid(msg)
    }
    pub fn read(e: std::io::Error) -> BundleError {
        BundleError::Read(e)
    }
    pub fn write(e: std::io::Error) -> BundleError {
        BundleError::Write(e)
    }
}

/// Entry names, in archive order (the NARs follow).
pub const MANIFEST: &str = "manifest.json";
pub const SBOM_CDX: &str = "sbom.cdx.json";
pub const SBOM_SPDX: &str = "sbom.spdx.json";
pub const PROVENANCE: &str = "provenance.dsse.json";
pub const SUMS: &str = "SHA256SUMS";

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Serialise a JSON value as a bundle stores it: pretty, one final newline.
pub fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("JSON values serialise");
    out.push(b'\n');
    out
}
