//! One output of a derivation and the kinds Nix 2.8 knows.
//!
//! In the ATerm an output is four strings `(name, path, hashAlgo, hash)`:
//!
//! | kind            | path         | hashAlgo              | hash         |
//! |-----------------|--------------|-----------------------|--------------|
//! | input-addressed | `/store/…`   | `""`                  | `""`         |
//! | fixed           | `/store/…`   | `[r:]algo`            | base16 hash  |
//! | floating CA     | `""`         | `[r:]algo`            | `""`         |
//! | deferred        | `""`         | `""`                  | `""`         |
//!
//! `r:` marks a recursive (NAR) hash; without it the hash is over the flat
//! file. Deferred outputs belong to input-addressed derivations whose paths
//! cannot be known yet because an input is floating content-addressed.

use std::collections::BTreeSet;

use crate::error::StorePathError;
use crate::hash::{Hash, HashAlgo};
use crate::store_path::{FileIngestionMethod, StoreDir, StorePath, make_fixed_output_path};

/// The declared content hash of a fixed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedOutputHash {
    pub method: FileIngestionMethod,
    pub hash: Hash,
}

impl FixedOutputHash {
    /// `r:sha256`, `sha1`, …: the ATerm's hashAlgo field.
    pub fn method_algo(&self) -> String {
        method_algo(self.method, self.hash.algo())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivationOutput {
    /// The path follows from the derivation's hash modulo.
    InputAddressed { path: StorePath },
    /// The content is declared up front; the path follows from the hash.
    Fixed {
        path: StorePath,
        hash: FixedOutputHash,
    },
    /// Content-addressed with the hash known only after the build.
    Floating {
        method: FileIngestionMethod,
        algo: HashAlgo,
    },
    /// Input-addressed, but the path is not known yet.
    Deferred,
}

impl DerivationOutput {
    /// A fixed output of derivation `drv_name` with its path computed from
    /// the hash, as `derivationStrict` does.
    pub fn fixed(
        dir: &StoreDir,
        drv_name: &str,
        output_name: &str,
        hash: FixedOutputHash,
    ) -> Result<DerivationOutput, StorePathError> {
        let path = fixed_output_path(dir, drv_name, output_name, &hash)?;
        Ok(DerivationOutput::Fixed { path, hash })
    }

    /// The output path, when it is known before building.
    pub fn path(&self) -> Option<&StorePath> {
        match self {
            DerivationOutput::InputAddressed { path } | DerivationOutput::Fixed { path, .. } => {
                Some(path)
            }
            DerivationOutput::Floating { .. } | DerivationOutput::Deferred => None,
        }
    }

    /// The ATerm's hashAlgo field (also `hashAlgo` in the JSON form).
    pub fn hash_algo_field(&self) -> String {
        match self {
            DerivationOutput::Fixed { hash, .. } => hash.method_algo(),
            DerivationOutput::Floating { method, algo } => method_algo(*method, *algo),
            DerivationOutput::InputAddressed { .. } | DerivationOutput::Deferred => String::new(),
        }
    }

    /// The ATerm's hash field: base16 for fixed outputs, else empty.
    pub fn hash_field(&self) -> String {
        match self {
            DerivationOutput::Fixed { hash, .. } => hash.hash.to_base16(),
            _ => String::new(),
        }
    }
}

/// Name of output `output_name`'s path: the derivation name for `out`,
/// `{drv_name}-{output_name}` otherwise (Nix's `outputPathName`).
pub fn output_path_name(drv_name: &str, output_name: &str) -> String {
    if output_name == "out" {
        drv_name.to_owned()
    } else {
        format!("{drv_name}-{output_name}")
    }
}

/// The path of a fixed output, which depends only on its hash and name.
pub fn fixed_output_path(
    dir: &StoreDir,
    drv_name: &str,
    output_name: &str,
    hash: &FixedOutputHash,
) -> Result<StorePath, StorePathError> {
    make_fixed_output_path(
        dir,
        hash.method,
        &hash.hash,
        &output_path_name(drv_name, output_name),
        &BTreeSet::new(),
    )
}

fn method_algo(method: FileIngestionMethod, algo: HashAlgo) -> String {
    format!("{}{}", method.prefix(), algo.name())
}

/// Reads a hashAlgo field: `r:` for recursive, then an algorithm name.
/// Nix 2.8 knows no other prefix (`text:` came later).
pub fn parse_method_algo(field: &str) -> Option<(FileIngestionMethod, HashAlgo)> {
    let (method, algo) = match field.strip_prefix("r:") {
        Some(algo) => (FileIngestionMethod::Recursive, algo),
        None => (FileIngestionMethod::Flat, field),
    };
    // Only the exact lower-case names, so that writing gives the field back.
    let algo = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ]
    .into_iter()
    .find(|candidate| candidate.name() == algo)?;
    Some((method, algo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_algo_fields_round_trip() {
        for field in ["md5", "sha1", "sha256", "sha512", "r:md5", "r:sha256"] {
            let (method, algo) = parse_method_algo(field).expect(field);
            assert_eq!(method_algo(method, algo), field);
        }
        for bad in ["", "r:", "SHA256", "text:sha256", "sha3", "r:r:sha256"] {
            assert_eq!(parse_method_algo(bad), None, "{bad}");
        }
    }

    #[test]
    fn output_path_names() {
        assert_eq!(output_path_name("hello", "out"), "hello");
        assert_eq!(output_path_name("hello", "dev"), "hello-dev");
    }
}
