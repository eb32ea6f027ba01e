//! kiln-builder: realisation of derivations in bubblewrap sandboxes.
//!
//! Owns scheduling, the sandbox, output registration, logs and
//! reproducibility checks. Knows nothing of the language, and never prints:
//! progress goes to an [`events::Observer`], errors are [`BuildError`]s.
//!
//! # Code map
//!
//! - [`realise()`]: the entry point, `realise(store, targets, options, observer)`.
//! - [`plan`]: which derivations need building, as a graph.
//! - [`schedule`]: running a DAG of jobs, N at once.
//! - [`build`]: one derivation: scratch dirs, sandbox, outputs.
//! - [`builtin`]: built-in builders (`builtin:fetchurl`), run by kiln itself.
//! - [`fetch`]: downloading a URL (`file://`, `http://`, `https://`).
//! - [`sandbox`]: the bwrap command line, what a build can see.
//! - [`sandbox_paths`]: inputs a derivation asks to see at fixed places (`/bin/sh`).
//! - [`environment`]: the builder's environment variables.
//! - [`supervise`]: running a builder, its log, time limits.
//! - [`outputs`]: checking outputs (existence, hashes, reference rules).
//! - [`scan`]: reference scanning.
//! - [`register`]: moving outputs into the store and registering them.
//! - [`record`]: build records (times, builder, sandbox) for provenance.
//! - [`check`]: comparing a rebuild with the valid output (`--check`).
//! - [`cleanup`]: removing scratch directories in the background.
//! - [`log`]: compressed build logs.
//!
//! # Invariants
//!
//! - Only a fixed-output derivation's sandbox has network.
//! - An output is registered only after its files are complete, canonical,
//!   fsynced and in place; all outputs of a derivation in one transaction.

pub mod build;
pub mod builtin;
pub mod check;
pub mod cleanup;
pub mod environment;
pub mod error;
pub mod events;
/// The downloader, its own crate (`kiln-fetch`) so the evaluator and the
/// binary cache share it.
pub use kiln_fetch as fetch;
pub mod log;
pub mod outputs;
pub mod plan;
pub mod prepare;
pub mod realise;
pub mod record;
pub mod register;
pub mod sandbox;
pub mod sandbox_paths;
/// The reference scanner lives in the store (`why-depends --precise` uses it too).
pub use kiln_store::scan;
pub mod schedule;
pub mod supervise;

pub use error::BuildError;
pub use events::Observer;
pub use realise::{Failure, RealiseOptions, Realised, realise, realise_basic};
