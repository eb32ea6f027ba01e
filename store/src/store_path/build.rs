//! Computing store paths from content, as Nix's `makeStorePath` family does.
//!
//! # Fingerprint
//!
//! Every store path is `STORE_DIR/HASH-NAME` with
//!
//! ```text
//! HASH = nixbase32(fold20(sha256("TYPE:ALGO:HEX:STORE_DIR:NAME")))
//! ```
//!
//! where `ALGO:HEX` is the *inner hash* in typed base16 (always sha256 in
//! practice) and `fold20` XORs byte `i` of the 32-byte digest into byte
//! `i % 20` of the result. `TYPE` says what kind of object it is:
//!
//! - `text:REF1:REF2…` for text files (`builtins.toFile`, `.drv` files); the
//!   references are full store paths in base-name order;
//! - `source:REF1:REF2…` for NAR-hashed (recursive sha256) sources;
//! - `output:OUTPUT_NAME` for derivation outputs and other fixed outputs.
//!
//! Each function below states the exact string it hashes.

use std::collections::BTreeSet;

use crate::error::StorePathError;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::store_path::{HASH_BYTES, StoreDir, StorePath};

/// How a fixed-output path's content was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileIngestionMethod {
    /// The hash is over the file's bytes (regular files only).
    Flat,
    /// The hash is over the NAR serialisation of the tree.
    Recursive,
}

impl FileIngestionMethod {
    /// The prefix Nix writes before the algorithm in a fixed-output
    /// fingerprint and in a `.drv` output hash algo: `""` or `"r:"`.
    pub fn prefix(self) -> &'static str {
        match self {
            FileIngestionMethod::Flat => "",
            FileIngestionMethod::Recursive => "r:",
        }
    }
}

/// The general form. Hashes `"{ty}:{algo}:{hex}:{store_dir}:{name}"` with
/// sha256, where `algo:hex` is `inner_hash` in typed base16, and folds the
/// digest to 20 bytes.
pub fn make_store_path(
    dir: &StoreDir,
    ty: &str,
    inner_hash: &Hash,
    name: &str,
) -> Result<StorePath, StorePathError> {
    hash_store_path(dir, &[ty], None, inner_hash, name)
}

/// [`make_store_path`] with the type given in pieces (`type_parts`
/// concatenated, then `:{dir}/{ref}` for each of `refs`): everything is
/// hashed as it is written, without building the fingerprint string.
/// Computing paths is a large part of instantiating a derivation.
fn hash_store_path(
    dir: &StoreDir,
    type_parts: &[&str],
    refs: Option<&BTreeSet<StorePath>>,
    inner_hash: &Hash,
    name: &str,
) -> Result<StorePath, StorePathError> {
    let mut hasher = Hasher::new(HashAlgo::Sha256);
    for part in type_parts {
        hasher.update(part.as_bytes());
    }
    for reference in refs.into_iter().flatten() {
        hasher.update(b":");
        hasher.update(dir.as_str().as_bytes());
        hasher.update(b"/");
        hasher.update(reference.base_name().as_bytes());
    }
    let mut hex = [0; 128];
    for part in [
        ":",
        inner_hash.algo().name(),
        ":",
        inner_hash.base16_into(&mut hex),
        ":",
        dir.as_str(),
        ":",
        name,
    ] {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finish();
    StorePath::from_parts(&fold_to_20(digest.as_bytes()), name)
}

/// A text path (`builtins.toFile`, a `.drv`): type
/// `text:{dir}/{ref1}:{dir}/{ref2}…` over `sha256(contents)`, i.e. hashes
/// `"text[:REF…]:sha256:{hex}:{dir}:{name}"`.
pub fn make_text_path(
    dir: &StoreDir,
    name: &str,
    contents_sha256: &Hash,
    refs: &BTreeSet<StorePath>,
) -> Result<StorePath, StorePathError> {
    hash_store_path(dir, &["text"], Some(refs), contents_sha256, name)
}

/// A source path (`nix-store --add`, `builtins.path`): type
/// `source:{dir}/{ref1}…` over the NAR sha256, i.e. hashes
/// `"source[:REF…]:sha256:{hex}:{dir}:{name}"`.
pub fn make_source_path(
    dir: &StoreDir,
    name: &str,
    nar_sha256: &Hash,
    refs: &BTreeSet<StorePath>,
) -> Result<StorePath, StorePathError> {
    hash_store_path(dir, &["source"], Some(refs), nar_sha256, name)
}

/// A fixed-output path (`nix-store --add-fixed`, fixed-output derivations).
///
/// Recursive sha256 is a source path (see [`make_source_path`]). Every other
/// case has no references and hashes
/// `"output:out:sha256:{h}:{dir}:{name}"` where
/// `h = hex(sha256("fixed:out:{r:?}{algo}:{hex}:"))`.
pub fn make_fixed_output_path(
    dir: &StoreDir,
    method: FileIngestionMethod,
    hash: &Hash,
    name: &str,
    refs: &BTreeSet<StorePath>,
) -> Result<StorePath, StorePathError> {
    if method == FileIngestionMethod::Recursive && hash.algo() == HashAlgo::Sha256 {
        return make_source_path(dir, name, hash, refs);
    }
    if !refs.is_empty() {
        return Err(StorePathError::FixedOutputWithReferences {
            name: name.to_owned(),
        });
    }
    let inner = format!("fixed:out:{}{}:", method.prefix(), hash.to_typed_base16());
    let inner = Hash::digest(HashAlgo::Sha256, inner.as_bytes());
    make_store_path(dir, "output:out", &inner, name)
}

/// An input-addressed derivation output: hashes
/// `"output:{output_name}:sha256:{drv_hash}:{dir}:{path_name}"` where the
/// path name is `drv_name` for output `out` and `{drv_name}-{output_name}`
/// otherwise, and `drv_hash` is the derivation's hash modulo.
pub fn make_output_path(
    dir: &StoreDir,
    drv_hash: &Hash,
    output_name: &str,
    drv_name: &str,
) -> Result<StorePath, StorePathError> {
    let ty = ["output:", output_name];
    if output_name == "out" {
        hash_store_path(dir, &ty, None, drv_hash, drv_name)
    } else {
        let name = format!("{drv_name}-{output_name}");
        hash_store_path(dir, &ty, None, drv_hash, &name)
    }
}

/// XORs the digest into 20 bytes: byte `i` goes to position `i % 20`.
fn fold_to_20(digest: &[u8]) -> [u8; HASH_BYTES] {
    let mut out = [0_u8; HASH_BYTES];
    for (i, byte) in digest.iter().enumerate() {
        out[i % HASH_BYTES] ^= byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_path_of_fixed_txt() {
        // From the conformance vectors: `nix-store --add fixed.txt`.
        let dir = StoreDir::new("/nix/store").unwrap();
        let nar = Hash::parse(
            "sha256:37ccfcce3135809b5003d8cdb7d07399d208dcd18ee7d74ce1ef7e892515c31f",
            None,
        )
        .unwrap();
        let path = make_source_path(&dir, "fixed.txt", &nar, &BTreeSet::new()).unwrap();
        assert_eq!(
            path.to_string(),
            "g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-fixed.txt"
        );
        let same = make_fixed_output_path(
            &dir,
            FileIngestionMethod::Recursive,
            &nar,
            "fixed.txt",
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(same, path);
        let other_dir = StoreDir::new("/kiln/store").unwrap();
        assert_ne!(
            make_source_path(&other_dir, "fixed.txt", &nar, &BTreeSet::new()).unwrap(),
            path
        );
    }

    #[test]
    fn flat_fixed_output_cannot_have_references() {
        let dir = StoreDir::new("/nix/store").unwrap();
        let refs = BTreeSet::from([StorePath::from_base_name(
            "g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-fixed.txt",
        )
        .unwrap()]);
        let hash = Hash::digest(HashAlgo::Sha1, b"x");
        assert!(matches!(
            make_fixed_output_path(&dir, FileIngestionMethod::Flat, &hash, "x", &refs),
            Err(StorePathError::FixedOutputWithReferences { .. })
        ));
    }
}
