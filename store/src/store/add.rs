//! Making new paths valid: adding sources, fixed-output content, text files
//! and derivations, and registering paths built elsewhere.
//!
//! Each add assembles the content (in a temp dir, or in memory for a text
//! file), computes the path and hands both to [`Store::install`], the one
//! way into the store.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::clock::unix_now;
use crate::derivation::Derivation;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::store::ingest::copy_and_hash;
use crate::store::install::{Locking, NewPath, Staged};
use crate::store::temp::TempDir;
use crate::store::{Store, StoreError, ValidPathInfo};
use crate::store_path::{
    FileIngestionMethod, StorePath, check_name, make_fixed_output_path, make_text_path,
};

/// Name of the content inside a temp dir.
const CONTENT: &str = "content";

impl Store {
    /// Add the file or tree at `src` as a source path named `name` (what
    /// `nix-store --add` does): its path is the `source` path of its NAR
    /// sha256. Adding content that is already valid changes nothing.
    pub fn add_path(&self, src: &Path, name: &str) -> Result<StorePath, StoreError> {
        self.add_fixed(src, FileIngestionMethod::Recursive, HashAlgo::Sha256, name)
    }

    /// Add `src` as a fixed-output path (what `nix-store --add-fixed` does):
    /// `Flat` hashes the bytes of a regular file, `Recursive` its NAR, with
    /// `algo`. Recursive sha256 is the same as [`Store::add_path`].
    pub fn add_fixed(
        &self,
        src: &Path,
        method: FileIngestionMethod,
        algo: HashAlgo,
        name: &str,
    ) -> Result<StorePath, StoreError> {
        check_name(name)?;
        let flat_hash = match method {
            FileIngestionMethod::Flat => Some(hash_flat_file(src, algo)?),
            FileIngestionMethod::Recursive => None,
        };
        let extra_algo =
            (method == FileIngestionMethod::Recursive && algo != HashAlgo::Sha256).then_some(algo);

        let temp = self.temp_dir()?;
        let content = temp.path().join(CONTENT);
        let ingested = copy_and_hash(src, &content, extra_algo)?;
        let content_hash = match (flat_hash, ingested.extra) {
            (Some(flat), _) => flat,
            (None, Some(extra)) => extra,
            (None, None) => ingested.nar_sha256,
        };
        let path = make_fixed_output_path(
            self.store_dir(),
            method,
            &content_hash,
            name,
            &BTreeSet::new(),
        )?;
        let info = ValidPathInfo {
            path: path.clone(),
            nar_hash: ingested.nar_sha256,
            nar_size: ingested.nar_size,
            deriver: None,
            references: BTreeSet::new(),
            registration_time: unix_now(),
            ca: Some(format!(
                "fixed:{}{}",
                method.prefix(),
                content_hash.to_typed_nix32()
            )),
            signatures: Vec::new(),
        };
        self.install_temp(temp, info)?;
        Ok(path)
    }

    /// Add a text file (`builtins.toFile`, a `.drv`) with references; its
    /// path is the `text` path of the contents' sha256 and references,
    /// which must all be valid.
    pub fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        self.add_text_with_outputs(name, contents, references)
    }

    /// Write a derivation's ATerm to the store as `{drv_name}.drv` (a text
    /// path referring to its input sources and derivations) and record the
    /// outputs it declares. Returns the `.drv` path.
    pub fn write_derivation(
        &self,
        drv: &Derivation,
        drv_name: &str,
    ) -> Result<StorePath, StoreError> {
        let aterm = drv.to_aterm(self.store_dir());
        let name = format!("{drv_name}.drv");
        self.add_text_with_outputs(&name, &aterm, &drv.references())
    }

    fn add_text_with_outputs(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        check_name(name)?;
        let contents_hash = Hash::digest(HashAlgo::Sha256, contents);
        let path = make_text_path(self.store_dir(), name, &contents_hash, references)?;
        let (nar_hash, nar_size) = crate::nar::hash_regular_bytes(contents);
        let info = ValidPathInfo {
            path: path.clone(),
            nar_hash,
            nar_size,
            deriver: None,
            references: references.clone(),
            registration_time: unix_now(),
            ca: Some(format!("text:{}", contents_hash.to_typed_nix32())),
            signatures: Vec::new(),
        };
        self.install(
            vec![NewPath {
                info,
                content: Staged::File(contents.to_vec()),
            }],
            Locking::Take,
        )?;
        Ok(path)
    }

    /// Install the content of `temp` as `info.path`.
    fn install_temp(&self, temp: TempDir, info: ValidPathInfo) -> Result<(), StoreError> {
        let content = temp.path().join(CONTENT);
        self.install(
            vec![NewPath {
                info,
                content: Staged::Tree {
                    path: content,
                    canonical: false,
                },
            }],
            Locking::Take,
        )?;
        drop(temp);
        Ok(())
    }
}

/// Hash the bytes of a regular file (the flat ingestion method).
fn hash_flat_file(src: &Path, algo: HashAlgo) -> Result<Hash, StoreError> {
    let source_err = |err: std::io::Error| StoreError::Source {
        path: src.to_path_buf(),
        source: Box::new(StoreError::io("reading", src)(err)),
    };
    let meta = fs::symlink_metadata(src).map_err(source_err)?;
    if !meta.is_file() {
        return Err(StoreError::FlatNotRegularFile(src.to_path_buf()));
    }
    let mut file = fs::File::open(src).map_err(source_err)?;
    let mut hasher = Hasher::new(algo);
    std::io::copy(&mut file, &mut hasher).map_err(source_err)?;
    Ok(hasher.finish())
}
