//! Nix's `hashDerivationModulo`: the hash an input-addressed output path is
//! computed from. It hashes the derivation "modulo" its fixed-output inputs,
//! so that changing how a fixed output is fetched (its builder, its URL)
//! does not change the paths of everything that depends on it.
//!
//! # Algorithm (Nix 2.8)
//!
//! - A fixed-output derivation hashes to, per output,
//!   `sha256("fixed:out:{r:?}{algo}:{hex}:{output path}")`, where `{hex}` is
//!   the declared content hash in base16.
//! - Any other derivation hashes to `sha256(aterm)`, the same for every
//!   output, where the ATerm has each input derivation path replaced by the
//!   base16 hash modulo of that input's used output, i.e. the inputs list
//!   becomes `[(hash,[outputs…]),…]` sorted by hash, with outputs of inputs
//!   that share a hash merged. When *masking*, output paths and the env vars
//!   named after outputs are written as `""`. Input derivations are hashed
//!   unmasked; masking is for a derivation whose own paths are being
//!   computed.
//! - The result is *deferred* when the derivation is floating
//!   content-addressed or any input's hash is deferred: its outputs then have
//!   no path until the inputs are built.
//!
//! The caller supplies the hash of each input derivation (usually by reading
//! it and calling [`Derivation::hash_modulo`] unmasked, with a cache: the
//! same input is reached by many paths in a large graph).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use super::error::{DerivationError, Location};
use super::write::{InputDrvs, write_input_drvs};
use super::{Derivation, DerivationKind, DerivationOutput};
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::store_path::{StoreDir, StorePath};

/// The input derivations as the hash modulo writes them (base16 hash of
/// each used output → output names), and whether the result is deferred.
pub(super) type InputsByHash = (BTreeMap<String, BTreeSet<String>>, DrvHashKind);

/// Whether output paths can be computed from the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrvHashKind {
    Regular,
    /// Depends on a floating content-addressed derivation.
    Deferred,
}

/// The hash modulo of each output of a derivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvHash {
    /// Sorted by output name. A vector, not a map: nearly every
    /// derivation has one or two outputs, and instantiation keeps one of
    /// these per derivation.
    pub outputs: Vec<(String, Hash)>,
    pub kind: DrvHashKind,
}

impl DrvHash {
    /// The hash of output `name`.
    pub fn get(&self, name: &str) -> Option<&Hash> {
        self.outputs
            .binary_search_by(|(output, _)| output.as_str().cmp(name))
            .ok()
            .map(|i| &self.outputs[i].1)
    }
}

impl Derivation {
    /// `hashDerivationModulo(drv, mask_outputs)`. `input_hash` returns the
    /// (unmasked) hash modulo of an input derivation.
    pub fn hash_modulo<E: From<DerivationError>, H: Borrow<DrvHash>>(
        &self,
        dir: &StoreDir,
        mask_outputs: bool,
        input_hash: &mut impl FnMut(&StorePath) -> Result<H, E>,
    ) -> Result<DrvHash, E> {
        let kind = self.kind().map_err(|problem| DerivationError::BadOutputs {
            at: Location::Field("outputs".to_owned()),
            problem,
        })?;
        if kind == DerivationKind::Fixed {
            return Ok(self.fixed_output_hashes(dir));
        }

        let inputs = self.inputs_by_hash(dir, kind, input_hash)?;
        Ok(self.hash_with_inputs(dir, mask_outputs, &inputs))
    }

    /// [`Derivation::hash_modulo`] for a non-fixed derivation whose inputs
    /// were looked up already.
    pub(super) fn hash_with_inputs(
        &self,
        dir: &StoreDir,
        mask_outputs: bool,
        (inputs, hash_kind): &InputsByHash,
    ) -> DrvHash {
        let aterm = self.write_aterm(dir, mask_outputs, InputDrvs::Replaced(inputs));
        self.same_hash_for_every_output(Hash::digest(HashAlgo::Sha256, &aterm), *hash_kind)
    }

    /// The `.drv` file contents ([`Derivation::to_aterm`]) together with
    /// the unmasked hash modulo, from one serialisation: the two differ
    /// only in the input derivations list (paths in the file, hashes
    /// modulo in the hashed text), so the hash is taken over the file's
    /// bytes with that list swapped.
    pub fn to_aterm_with_hash_modulo<E: From<DerivationError>, H: Borrow<DrvHash>>(
        &self,
        dir: &StoreDir,
        input_hash: &mut impl FnMut(&StorePath) -> Result<H, E>,
    ) -> Result<(Vec<u8>, DrvHash), E> {
        let kind = self.kind().map_err(|problem| DerivationError::BadOutputs {
            at: Location::Field("outputs".to_owned()),
            problem,
        })?;
        let (aterm, inputs_span) = self.write_aterm_spanning_inputs(dir, false, InputDrvs::Paths);
        if kind == DerivationKind::Fixed {
            return Ok((aterm, self.fixed_output_hashes(dir)));
        }
        let inputs = self.inputs_by_hash(dir, kind, input_hash)?;
        let hash = self.hash_with_inputs_swapped(&aterm, inputs_span, &inputs);
        Ok((aterm, hash))
    }

    /// The unmasked hash modulo from the `.drv` bytes (`aterm`, whose
    /// input list is at `inputs_span`) and the inputs by hash.
    pub(super) fn hash_with_inputs_swapped(
        &self,
        aterm: &[u8],
        inputs_span: std::ops::Range<usize>,
        (inputs, hash_kind): &InputsByHash,
    ) -> DrvHash {
        let mut modulo_inputs = Vec::with_capacity(inputs_span.len());
        write_input_drvs(&mut modulo_inputs, inputs);
        let mut hasher = Hasher::new(HashAlgo::Sha256);
        hasher.update(&aterm[..inputs_span.start]);
        hasher.update(&modulo_inputs);
        hasher.update(&aterm[inputs_span.end..]);
        self.same_hash_for_every_output(hasher.finish(), *hash_kind)
    }

    /// The input derivations as `hashDerivationModulo` writes them: the
    /// base16 hash modulo of each used output, with the outputs of inputs
    /// that share a hash merged; and whether the result is deferred.
    pub(super) fn inputs_by_hash<E: From<DerivationError>, H: Borrow<DrvHash>>(
        &self,
        dir: &StoreDir,
        kind: DerivationKind,
        input_hash: &mut impl FnMut(&StorePath) -> Result<H, E>,
    ) -> Result<InputsByHash, E> {
        let mut hash_kind = match kind {
            DerivationKind::Floating => DrvHashKind::Deferred,
            _ => DrvHashKind::Regular,
        };
        let mut inputs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (drv_path, wanted) in &self.input_drvs {
            let input = input_hash(drv_path)?;
            let input: &DrvHash = input.borrow();
            if input.kind == DrvHashKind::Deferred {
                hash_kind = DrvHashKind::Deferred;
            }
            for output in wanted {
                let hash =
                    input
                        .get(output)
                        .ok_or_else(|| DerivationError::MissingInputOutput {
                            drv: dir.display(drv_path),
                            output: output.clone(),
                        })?;
                inputs
                    .entry(hash.to_base16())
                    .or_default()
                    .insert(output.clone());
            }
        }
        Ok((inputs, hash_kind))
    }

    fn same_hash_for_every_output(&self, hash: Hash, kind: DrvHashKind) -> DrvHash {
        let outputs = self
            .outputs
            .keys()
            .map(|name| (name.clone(), hash))
            .collect();
        DrvHash { outputs, kind }
    }

    pub(super) fn fixed_output_hashes(&self, dir: &StoreDir) -> DrvHash {
        let outputs = self
            .outputs
            .iter()
            .filter_map(|(name, output)| match output {
                DerivationOutput::Fixed { path, hash } => {
                    let clear_text = format!(
                        "fixed:out:{}:{}:{}",
                        hash.method_algo(),
                        hash.hash.to_base16(),
                        dir.display(path)
                    );
                    Some((name.clone(), Hash::digest(HashAlgo::Sha256, clear_text)))
                }
                // `kind()` said every output is fixed.
                _ => None,
            })
            .collect();
        DrvHash {
            outputs,
            kind: DrvHashKind::Regular,
        }
    }
}
