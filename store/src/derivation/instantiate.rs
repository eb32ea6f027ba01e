//! Completing a freshly built derivation the way Nix 2.8's
//! `derivationStrict` does, and computing its `.drv` path.
//!
//! The evaluator builds a [`Derivation`] whose outputs say what kind they
//! are, then calls [`Derivation::fill_output_paths`]:
//!
//! - fixed output (`outputHash` given): the path follows from the hash, named
//!   after the derivation, and `env.out` is set to it;
//! - floating content-addressed outputs: no path; each output's env var is
//!   its [`placeholder`];
//! - otherwise (input-addressed): every output is first made deferred with
//!   an empty env var, the masked hash modulo is computed, and each output
//!   gets `make_output_path(hash, output, name)` in both places. If an input
//!   is deferred (floating CA somewhere below), the outputs stay deferred
//!   with empty env vars.
//!
//! The `.drv` path is then the text path of the ATerm
//! ([`Derivation::drv_path`]).

use std::borrow::Borrow;

use super::error::{DerivationError, Location};
use super::hash_modulo::{DrvHash, DrvHashKind, InputsByHash};
use super::output::fixed_output_path;
use super::write::InputDrvs;
use super::{Derivation, DerivationKind, DerivationOutput};
use crate::hash::{Hash, HashAlgo};
use crate::nixbase32;
use crate::store_path::{StoreDir, StorePath, make_output_path, make_text_path};

/// The string that stands for output `output_name` of the derivation being
/// built before its path is known: `/` followed by the nixbase32 of
/// `sha256("nix-output:{output_name}")` (Nix's `hashPlaceholder`).
pub fn placeholder(output_name: &str) -> String {
    let hash = Hash::digest(HashAlgo::Sha256, format!("nix-output:{output_name}"));
    format!("/{}", nixbase32::encode(hash.as_bytes()))
}

impl Derivation {
    /// Fills in output paths and the env vars named after outputs (see the
    /// module doc). Input-addressed outputs may be given as
    /// [`DerivationOutput::Deferred`] or with any path: both are recomputed.
    /// `input_hash` returns the unmasked hash modulo of an input derivation.
    pub fn fill_output_paths<E: From<DerivationError>, H: Borrow<DrvHash>>(
        &mut self,
        dir: &StoreDir,
        drv_name: &str,
        input_hash: &mut impl FnMut(&StorePath) -> Result<H, E>,
    ) -> Result<(), E> {
        let kind = self.reset_input_addressed()?;
        let inputs = match kind {
            DerivationKind::InputAddressed | DerivationKind::DeferredInputAddressed => {
                Some(self.inputs_by_hash(dir, kind, input_hash)?)
            }
            _ => None,
        };
        self.fill_with(dir, drv_name, kind, inputs.as_ref())?;
        Ok(())
    }

    /// [`Derivation::fill_output_paths`], then the `.drv` bytes and the
    /// unmasked hash modulo (what dependents need), looking up each input
    /// derivation's hash once for both.
    pub fn instantiate<E: From<DerivationError>, H: Borrow<DrvHash>>(
        &mut self,
        dir: &StoreDir,
        drv_name: &str,
        input_hash: &mut impl FnMut(&StorePath) -> Result<H, E>,
    ) -> Result<(Vec<u8>, DrvHash), E> {
        let kind = self.reset_input_addressed()?;
        let inputs = match kind {
            DerivationKind::Fixed => None,
            _ => Some(self.inputs_by_hash(dir, kind, input_hash)?),
        };
        self.fill_with(dir, drv_name, kind, inputs.as_ref())?;
        let (aterm, inputs_span) = self.write_aterm_spanning_inputs(dir, false, InputDrvs::Paths);
        let hash = match &inputs {
            Some(inputs) => self.hash_with_inputs_swapped(&aterm, inputs_span, inputs),
            None => self.fixed_output_hashes(dir),
        };
        Ok((aterm, hash))
    }

    /// Make input-addressed outputs deferred again (their paths are
    /// recomputed) and say what kind of derivation this is.
    fn reset_input_addressed(&mut self) -> Result<DerivationKind, DerivationError> {
        for output in self.outputs.values_mut() {
            if let DerivationOutput::InputAddressed { .. } = output {
                *output = DerivationOutput::Deferred;
            }
        }
        self.kind().map_err(|problem| DerivationError::BadOutputs {
            at: Location::Field("outputs".to_owned()),
            problem,
        })
    }

    /// Fill in the output paths of a derivation of `kind`; `inputs` are
    /// its inputs by hash (needed when it is input-addressed).
    fn fill_with(
        &mut self,
        dir: &StoreDir,
        drv_name: &str,
        kind: DerivationKind,
        inputs: Option<&InputsByHash>,
    ) -> Result<(), DerivationError> {
        let path_error = |source| DerivationError::Path {
            drv_name: drv_name.to_owned(),
            source,
        };
        match kind {
            DerivationKind::Fixed => {
                for (name, output) in &mut self.outputs {
                    if let DerivationOutput::Fixed { path, hash } = output {
                        *path = fixed_output_path(dir, drv_name, name, hash).map_err(path_error)?;
                        self.env.insert(name.clone(), dir.display(path));
                    }
                }
            }
            DerivationKind::Floating => {
                for name in self.outputs.keys() {
                    self.env.insert(name.clone(), placeholder(name));
                }
            }
            DerivationKind::InputAddressed | DerivationKind::DeferredInputAddressed => {
                for name in self.outputs.keys() {
                    self.env.insert(name.clone(), String::new());
                }
                let Some(inputs) = inputs else {
                    // Callers look the inputs up for these kinds.
                    return Ok(());
                };
                let hash = self.hash_with_inputs(dir, true, inputs);
                if hash.kind == DrvHashKind::Deferred {
                    return Ok(());
                }
                for (name, drv_hash) in &hash.outputs {
                    let path =
                        make_output_path(dir, drv_hash, name, drv_name).map_err(path_error)?;
                    self.env.insert(name.clone(), dir.display(&path));
                    self.outputs
                        .insert(name.clone(), DerivationOutput::InputAddressed { path });
                }
            }
        }
        Ok(())
    }

    /// The `.drv` store path: a text path named `{drv_name}.drv` over the
    /// ATerm, referring to the input sources and input derivations.
    pub fn drv_path(&self, dir: &StoreDir, drv_name: &str) -> Result<StorePath, DerivationError> {
        let contents_hash = Hash::digest(HashAlgo::Sha256, self.to_aterm(dir));
        let name = format!("{drv_name}.drv");
        make_text_path(dir, &name, &contents_hash, &self.references()).map_err(|source| {
            DerivationError::Path {
                drv_name: drv_name.to_owned(),
                source,
            }
        })
    }
}
