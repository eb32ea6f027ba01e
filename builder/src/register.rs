//! Making checked outputs valid, through the store's one way in.
//!
//! The outputs are canonical already ([`crate::outputs`] canonicalises
//! before it scans and hashes) and sit in the build's scratch store, a temp
//! dir of the store. [`kiln_store::store::Store::install`] syncs them,
//! replaces an unregistered leftover of a killed build, renames them into
//! place, syncs the store directory and registers all of them in one
//! transaction with the derivation as deriver. The build holds the
//! outputs' locks from before it started, so the install does not take
//! them again.

use kiln_store::StorePath;
use kiln_store::clock::unix_now;
use kiln_store::store::{Locking, NewPath, Staged, Store, ValidPathInfo};

use crate::error::BuildError;
use crate::outputs::ProducedOutput;

/// Move `produced` into the store and register them, deriver `drv_path`.
pub fn install_outputs(
    store: &Store,
    drv_path: &StorePath,
    produced: &[ProducedOutput],
) -> Result<(), BuildError> {
    let now = unix_now();
    let batch = produced
        .iter()
        .map(|out| NewPath {
            info: ValidPathInfo {
                path: out.path.clone(),
                nar_hash: out.nar_hash,
                nar_size: out.nar_size,
                deriver: Some(drv_path.clone()),
                references: out.references.clone(),
                registration_time: now,
                ca: out.ca.clone(),
                signatures: Vec::new(),
            },
            content: Staged::Tree {
                path: out.scratch.clone(),
                canonical: true,
            },
        })
        .collect();
    store
        .install(batch, Locking::HeldByCaller)
        .map_err(|e| BuildError::store(format!("installing the outputs of {drv_path}"), e))?;
    Ok(())
}
