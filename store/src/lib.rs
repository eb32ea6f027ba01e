//! kiln-store: Nix-compatible store formats and the store database.
//!
//! Owns nixbase32, hashes, store paths, NAR, ATerm derivations, the SQLite
//! database, closures. Knows nothing of the language.
