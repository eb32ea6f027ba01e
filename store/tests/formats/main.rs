//! Conformance tests over the Nix-made vectors in `tests/vectors/` (see its
//! README), plus robustness tests for the NAR reader. Each test walks a
//! whole vector file and names every failing row.

mod nar;
mod nar_corrupt;
mod nixbase32;
mod store_paths;
mod tsv;
