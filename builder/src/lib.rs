//! kiln-builder: realisation of derivations in bubblewrap sandboxes.
//!
//! Owns scheduling, the sandbox, output registration, logs and
//! reproducibility checks. Knows nothing of the language.
