//! Checking a `.drv` before it is trusted (Nix's `checkDerivationOutputs`).
//!
//! A `.drv` names its own output paths, and a build writes into them. A
//! forged file could name any path (another package's, a path already in
//! the store) and have the build replace or poison it. So every output
//! path, and the environment variable named after each output, is
//! recomputed from the derivation's contents (fixed outputs from their
//! hash, input-addressed ones from the masked hash modulo) and must be
//! what the file says.

use std::borrow::Borrow;

use super::Derivation;
use super::error::DerivationError;
use super::hash_modulo::DrvHash;
use crate::store_path::{StoreDir, StorePath};

impl Derivation {
    /// Check that the output paths and output variables of the derivation
    /// stored at `drv_path` are the ones its contents give. `input_hash`
    /// returns the (unmasked) hash modulo of an input derivation.
    pub fn check_outputs<E: From<DerivationError>, H: Borrow<DrvHash>>(
        &self,
        dir: &StoreDir,
        drv_path: &StorePath,
        input_hash: &mut impl FnMut(&StorePath) -> Result<H, E>,
    ) -> Result<(), E> {
        let drv_name = drv_path
            .name()
            .strip_suffix(".drv")
            .unwrap_or(drv_path.name());
        let mut expected = self.clone();
        expected.fill_output_paths(dir, drv_name, input_hash)?;
        let shown = |path: Option<&StorePath>| path.map(|p| dir.display(p)).unwrap_or_default();
        for (name, output) in &self.outputs {
            let want = expected.outputs.get(name).and_then(|o| o.path());
            if output.path() != want {
                return Err(DerivationError::IncorrectOutput {
                    drv: dir.display(drv_path),
                    output: name.clone(),
                    found: shown(output.path()),
                    expected: shown(want),
                }
                .into());
            }
            let want_env = expected.env.get(name).map(String::as_str).unwrap_or("");
            if self.env.get(name).map(String::as_str) != Some(want_env) {
                return Err(DerivationError::IncorrectEnvironment {
                    drv: dir.display(drv_path),
                    variable: name.clone(),
                    expected: want_env.to_owned(),
                }
                .into());
            }
        }
        Ok(())
    }
}
