//! Garbage collection: deleting every store path no root needs.
//!
//! - [`roots`]: the roots (indirect `result` links registered in
//!   `gcroots/auto`, direct links in `gcroots/`, shell roots in
//!   `gcroots/shells`, temp roots of live processes) and adding them.
//! - [`temp_roots`]: the per-process temp roots files and the `gc.lock`
//!   protocol that makes "a path a live process uses is never collected"
//!   hold without stopping other processes for long.
//! - [`collect`]: marking what is alive, invalidating what is not in one
//!   transaction, and deleting the files through a trash name.
//!
//! # What is alive
//!
//! A path is alive if a root names it, if an alive path refers to it, and
//! (Nix's settings, both on by default) with `keep_outputs` if it is an
//! output of an alive derivation, with `keep_derivations` if it is a
//! valid derivation one of whose outputs is alive. With both on, a root
//! keeps what is needed to rebuild it offline, and a developer shell
//! rooted by its derivation keeps every input it uses.

pub mod collect;
pub mod roots;
pub mod temp_roots;

pub use collect::{GcAction, GcOptions, GcReport, TRASH_PREFIX};
pub use roots::{Holder, Root, RootKind};
pub use temp_roots::ProcessRoots;

use crate::store::{Store, StoreError};
use crate::store_path::StorePath;

impl Store {
    /// Record `paths` as temp roots of this process (for as long as this
    /// [`Store`] lives): a collector keeps them and what they refer to.
    /// Call it *before* checking whether a path is valid and before making
    /// it: then either the collector saw the root, or it had finished
    /// deciding and the check finds the path invalid. Waits while a
    /// collector decides what is dead.
    pub fn add_temp_roots(&self, paths: &[StorePath]) -> Result<(), StoreError> {
        if paths.is_empty() {
            return Ok(());
        }
        let printed: Vec<String> = paths.iter().map(|p| self.print_path(p)).collect();
        self.temp_roots.add(&self.state_dir(), &printed)
    }
}

#[cfg(test)]
mod tests;
