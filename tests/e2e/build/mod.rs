//! `kiln build` and `kiln log` end to end: derivations are written with the
//! store API (a static busybox added as a source path is the only tool,
//! see `kit::drv`), then built by the binary in a bwrap sandbox.

mod basics;
mod crash;
mod log;
mod outputs;
mod sandbox;
mod schedule;
mod security;
