//! End-to-end tests: drive the `kiln` binary as a user would, each test on
//! its own temporary root and HOME. One test binary, one module per area.

mod build;
mod bundle;
mod cache;
mod eval;
mod fetchurl;
mod gc;
mod instantiate;
mod key;
mod kit;
mod maint;
mod nixpkgs_mini;
mod parse;
mod pipes;
mod query;
mod readme;
mod repl;
mod serve;
mod shell;
mod store;
