//! Making checked outputs valid: files first, then one transaction.
//!
//! For each output not already valid: fsync its files, remove a stale,
//! unregistered copy at the destination if a killed build left one (we hold
//! the output's lock, so nobody else is writing it), rename it from the
//! scratch store into the store (atomic: same file system), and fsync the
//! store directory. Only then are all new outputs registered in one database
//! transaction, with the derivation as deriver. A crash before the commit
//! leaves unregistered files that the next build replaces; a crash after it
//! leaves complete, valid paths.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kiln_store::StorePath;
use kiln_store::canonicalise::{remove_tree, sync_dir, sync_tree};
use kiln_store::store::{Store, ValidPathInfo};

use crate::error::BuildError;
use crate::outputs::ProducedOutput;

/// Move `produced` into the store and register them, deriver `drv_path`.
pub fn install_outputs(
    store: &Store,
    drv_path: &StorePath,
    produced: &[ProducedOutput],
) -> Result<(), BuildError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut infos = Vec::with_capacity(produced.len());
    for out in produced {
        let valid = store
            .is_valid(&out.path)
            .map_err(|e| BuildError::store("querying the database", e))?;
        if valid {
            // Built meanwhile by a process that did not share our lock (it
            // cannot happen with locks held, but never replace valid files).
            continue;
        }
        sync_tree(&out.scratch)
            .map_err(|e| BuildError::store(format!("syncing output {}", out.name), e))?;
        let dest = store.real_path(&out.path);
        if std::fs::symlink_metadata(&dest).is_ok() {
            tracing::info!("replacing unregistered leftover {}", dest.display());
            remove_tree(&dest).map_err(|e| BuildError::store("removing a stale path", e))?;
        }
        move_into_place(&out.scratch, &dest)?;
        infos.push(ValidPathInfo {
            path: out.path.clone(),
            nar_hash: out.nar_hash,
            nar_size: out.nar_size,
            deriver: Some(drv_path.clone()),
            references: out.references.clone(),
            registration_time: now,
            ca: out.ca.clone(),
            signatures: Vec::new(),
        });
    }
    if infos.is_empty() {
        return Ok(());
    }
    sync_dir(store.physical_store_dir())
        .map_err(|e| BuildError::store("syncing the store directory", e))?;
    store
        .register_valid_paths(&infos)
        .map_err(|e| BuildError::store(format!("registering the outputs of {drv_path}"), e))?;
    Ok(())
}

/// Rename `from` to `to`. Moving a directory to another parent needs write
/// permission on it (its `..` changes), so a canonical 0555 directory is
/// made writable for the rename and read-only again after.
fn move_into_place(from: &Path, to: &Path) -> Result<(), BuildError> {
    let meta = std::fs::symlink_metadata(from).map_err(|e| BuildError::io(from, e))?;
    let is_dir = meta.is_dir();
    if is_dir {
        std::fs::set_permissions(from, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| BuildError::io(from, e))?;
    }
    std::fs::rename(from, to).map_err(|e| BuildError::io(to, e))?;
    if is_dir {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o555))
            .map_err(|e| BuildError::io(to, e))?;
        sync_dir(to).map_err(|e| BuildError::store("syncing an output", e))?;
    }
    Ok(())
}
