//! kiln-eval: the lazy evaluator.
//!
//! Owns values, thunks, scopes, builtins, string context, `derivation`,
//! `import` and search paths. Reaches the store only through a trait.
