//! Derivations: Nix's `.drv` files, their hashes and their paths.
//!
//! # Format
//!
//! A `.drv` file is one ATerm, with no whitespace and no trailing newline:
//!
//! ```text
//! Derive([("out","/nix/store/…-hello","","")],           outputs
//!        [("/nix/store/…-dep.drv",["dev","out"])],       inputDrvs
//!        ["/nix/store/…-source"],                        inputSrcs
//!        "x86_64-linux","/bin/sh",["-c","…"],            system, builder, args
//!        [("name","hello"),("out","/nix/store/…-hello")]) env
//! ```
//!
//! (shown on several lines here; the file is one line). Every list is sorted
//! bytewise and has no duplicates, because Nix builds it from a `std::map` or
//! `std::set`; this crate uses `BTreeMap`/`BTreeSet` so the order is the same
//! by construction. See [`output`] for the four strings of an output.
//!
//! Strings are written between double quotes. In the builder, the args and
//! the env, Nix escapes `"` `\` newline, carriage return and tab as `\"` `\\`
//! `\n` `\r` `\t` and writes every other byte raw (control bytes and UTF-8
//! included). Output names, paths, hash fields and the system are written
//! *without* escaping (Nix's `printUnquotedString`), which [`mod@write`]
//! reproduces.
//!
//! # Hashes and paths
//!
//! - The `.drv` path is a text path over the ATerm bytes, named
//!   `{name}.drv`, with references = inputSrcs ∪ inputDrvs keys
//!   ([`Derivation::drv_path`]).
//! - Output paths of input-addressed derivations come from
//!   `hashDerivationModulo` ([`hash_modulo`]), and [`instantiate`] fills
//!   them in for a freshly built derivation the way `derivationStrict` does.
//! - [`json`] renders and reads the `nix show-derivation` form.
//!
//! Everything here follows Nix 2.8.

mod check;
mod error;
pub mod hash_modulo;
pub mod instantiate;
pub mod json;
pub mod output;
mod parse;
mod validate;
pub mod write;

use std::collections::{BTreeMap, BTreeSet};

pub use error::{DerivationError, Location, OutputsProblem};
pub use hash_modulo::{DrvHash, DrvHashKind};
pub use output::{DerivationOutput, FixedOutputHash, output_path_name};

use crate::hash::HashAlgo;
use crate::store_path::{StoreDir, StorePath};

/// A derivation as stored in a `.drv` file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derivation {
    pub outputs: BTreeMap<String, DerivationOutput>,
    /// Each input derivation and the outputs of it that are used.
    pub input_drvs: BTreeMap<StorePath, BTreeSet<String>>,
    pub input_srcs: BTreeSet<StorePath>,
    pub system: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// The kind of a derivation, decided by its outputs (Nix's `type()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivationKind {
    InputAddressed,
    /// Input-addressed with paths not known yet (a floating CA input).
    DeferredInputAddressed,
    /// A single fixed output named `out`.
    Fixed,
    /// Content-addressed outputs whose hashes are known after the build.
    Floating,
}

impl Derivation {
    /// Parses and validates a `.drv` file whose paths are under `dir`.
    /// Accepts exactly what [`Derivation::to_aterm`] writes, so
    /// `to_aterm(parse(bytes)) == bytes` for every accepted input.
    pub fn parse(dir: &StoreDir, bytes: &[u8]) -> Result<Derivation, DerivationError> {
        let raw = parse::parse_raw(bytes)?;
        validate::validate(dir, &raw)
    }

    /// Decides the kind, rejecting the output mixes Nix rejects.
    pub fn kind(&self) -> Result<DerivationKind, OutputsProblem> {
        let mut kind = None;
        let mut floating_algo: Option<HashAlgo> = None;
        for output in self.outputs.values() {
            let this = match output {
                DerivationOutput::InputAddressed { .. } => DerivationKind::InputAddressed,
                DerivationOutput::Deferred => DerivationKind::DeferredInputAddressed,
                DerivationOutput::Fixed { .. } => DerivationKind::Fixed,
                DerivationOutput::Floating { algo, .. } => {
                    if floating_algo.is_some_and(|seen| seen != *algo) {
                        return Err(OutputsProblem::FloatingAlgosDiffer);
                    }
                    floating_algo = Some(*algo);
                    DerivationKind::Floating
                }
            };
            if kind.is_some_and(|seen| seen != this) {
                return Err(OutputsProblem::MixedKinds);
            }
            kind = Some(this);
        }
        let kind = kind.ok_or(OutputsProblem::NoOutputs)?;
        if kind == DerivationKind::Fixed {
            if self.outputs.len() > 1 {
                return Err(OutputsProblem::SeveralFixed);
            }
            if let Some(name) = self.outputs.keys().find(|name| *name != "out") {
                return Err(OutputsProblem::FixedNotOut(name.clone()));
            }
        }
        Ok(kind)
    }

    /// The references of the `.drv` file: its sources and input derivations.
    pub fn references(&self) -> BTreeSet<StorePath> {
        let mut refs = self.input_srcs.clone();
        refs.extend(self.input_drvs.keys().cloned());
        refs
    }
}
