//! Making new paths valid: adding sources, fixed-output content, text files
//! and derivations, and registering paths built elsewhere.
//!
//! Every add follows the same steps (see the module docs of
//! [`crate::store`] for why): assemble the content in a temp dir, compute
//! the path, take the path's lock, and unless the path is valid already,
//! canonicalise, fsync, rename into place and register in one transaction.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::canonicalise::{canonicalise_tree, remove_tree, sync_dir, sync_tree_of_size};
use crate::db::DrvOutputRow;
use crate::derivation::Derivation;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::store::ingest::copy_and_hash;
use crate::store::temp::TempDir;
use crate::store::{Store, StoreError, ValidPathInfo};
use crate::store_path::{
    FileIngestionMethod, StorePath, check_name, make_fixed_output_path, make_text_path,
};

/// Name of the content inside a temp dir.
const CONTENT: &str = "content";

/// The current time as stored in `registration_time`.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

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
            registration_time: now_secs(),
            ca: Some(format!(
                "fixed:{}{}",
                method.prefix(),
                content_hash.to_typed_nix32()
            )),
            signatures: Vec::new(),
        };
        self.install(temp, &info, &[])?;
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
        self.add_text_with_outputs(name, contents, references, |_| Vec::new())
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
        self.add_text_with_outputs(&name, &aterm, &drv.references(), |drv_path| {
            self.output_rows(drv_path, drv)
        })
    }

    fn output_rows(&self, drv_path: &StorePath, drv: &Derivation) -> Vec<DrvOutputRow> {
        drv.outputs
            .iter()
            .filter_map(|(output, out)| {
                out.path().map(|path| DrvOutputRow {
                    drv: self.print_path(drv_path),
                    output: output.clone(),
                    path: self.print_path(path),
                })
            })
            .collect()
    }

    fn add_text_with_outputs(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
        outputs: impl FnOnce(&StorePath) -> Vec<DrvOutputRow>,
    ) -> Result<StorePath, StoreError> {
        check_name(name)?;
        let contents_hash = Hash::digest(HashAlgo::Sha256, contents);
        let path = make_text_path(self.store_dir(), name, &contents_hash, references)?;
        if self.is_valid(&path)? {
            return Ok(path);
        }
        let temp = self.temp_dir()?;
        let content = temp.path().join(CONTENT);
        fs::write(&content, contents).map_err(StoreError::io("writing", &content))?;
        let (nar_hash, nar_size) = crate::nar::hash_path(&content, HashAlgo::Sha256)?;
        let info = ValidPathInfo {
            path: path.clone(),
            nar_hash,
            nar_size,
            deriver: None,
            references: references.clone(),
            registration_time: now_secs(),
            ca: Some(format!("text:{}", contents_hash.to_typed_nix32())),
            signatures: Vec::new(),
        };
        let rows = outputs(&path);
        self.install(temp, &info, &rows)?;
        Ok(path)
    }

    /// Move the content of `temp` to `info.path` and register it, under the
    /// path's lock. If the path became valid meanwhile (another process, or
    /// an earlier run), the temp copy is simply dropped.
    fn install(
        &self,
        temp: TempDir,
        info: &ValidPathInfo,
        drv_outputs: &[DrvOutputRow],
    ) -> Result<(), StoreError> {
        let _lock = self.lock_path(&info.path)?;
        if self.is_valid(&info.path)? {
            return Ok(());
        }
        let content = temp.path().join(CONTENT);
        let entries = canonicalise_tree(&content)?;
        sync_tree_of_size(&content, entries)?;
        let target = self.real_path(&info.path);
        // Files at an invalid path are what a crash between the rename and
        // the registration leaves; they are incomplete by definition here.
        remove_tree(&target)?;
        move_into_place(&content, &target)?;
        sync_dir(self.physical_store_dir())?;
        let row = self.to_row(info);
        self.db.register(std::slice::from_ref(&row), drv_outputs)?;
        drop(temp);
        Ok(())
    }

    /// Make paths valid whose files are already in place, complete and
    /// canonical (the builder's outputs), with their references, in one
    /// transaction. `.drv` paths among them have their outputs recorded.
    pub fn register_valid_paths(&self, infos: &[ValidPathInfo]) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(infos.len());
        let mut drv_outputs = Vec::new();
        for info in infos {
            let real = self.real_path(&info.path);
            if fs::symlink_metadata(&real).is_err() {
                return Err(StoreError::Io {
                    action: "registering",
                    path: real,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the path's files are missing",
                    ),
                });
            }
            if info.path.name().ends_with(".drv") {
                let bytes = fs::read(&real).map_err(StoreError::io("reading", &real))?;
                self.push_output_rows(&info.path, &bytes, &mut drv_outputs);
            }
            rows.push(self.to_row(info));
        }
        self.db.register(&rows, &drv_outputs)?;
        Ok(())
    }

    /// [`Store::register_valid_paths`] for regular files the caller has
    /// just written, synced and moved into place itself, given with their
    /// bytes: `.drv` outputs are read from those bytes instead of from
    /// the files again (a batch of thousands of `.drv`s at instantiation).
    pub fn register_written_files(
        &self,
        files: &[(ValidPathInfo, &[u8])],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(files.len());
        let mut drv_outputs = Vec::new();
        for (info, bytes) in files {
            if info.path.name().ends_with(".drv") {
                self.push_output_rows(&info.path, bytes, &mut drv_outputs);
            }
            rows.push(self.to_row(info));
        }
        self.db.register(&rows, &drv_outputs)?;
        Ok(())
    }

    /// The output rows of `drv_path` if `bytes` parse as a derivation (a
    /// file that only happens to be named `.drv` records nothing).
    fn push_output_rows(&self, drv_path: &StorePath, bytes: &[u8], rows: &mut Vec<DrvOutputRow>) {
        if let Ok(drv) = Derivation::parse(self.store_dir(), bytes) {
            rows.extend(self.output_rows(drv_path, &drv));
        }
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

/// Rename a canonical tree to its store path. Moving a directory to a new
/// parent rewrites its `..` entry, which needs write permission on the
/// directory itself; only root has that on a canonical (0555) directory.
/// So a directory is made writable for the rename and made canonical again
/// after it, with that change synced before the path can be registered.
fn move_into_place(content: &Path, target: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let is_dir = fs::symlink_metadata(content)
        .map_err(StoreError::io("reading", content))?
        .is_dir();
    if !is_dir {
        return fs::rename(content, target).map_err(StoreError::io("moving into place", target));
    }
    fs::set_permissions(content, fs::Permissions::from_mode(0o755))
        .map_err(StoreError::io("making writable", content))?;
    fs::rename(content, target).map_err(StoreError::io("moving into place", target))?;
    fs::set_permissions(target, fs::Permissions::from_mode(0o555))
        .map_err(StoreError::io("making read-only", target))?;
    sync_dir(target)?;
    Ok(())
}
