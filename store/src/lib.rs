//! kiln-store: Nix-compatible store formats and the store database.
//!
//! Owns nixbase32, hashes, store paths, NAR, ATerm derivations, the SQLite
//! database (private: reached only through [`store::Store`]), closures, and
//! the one way into the store, [`store::Store::install`]. Knows nothing of
//! the language.

pub mod canonicalise;
pub mod clock;
mod db;
pub mod delete;
pub mod derivation;
pub mod durable;
pub mod error;
pub mod gc;
pub mod hash;
pub mod nar;
pub mod nixbase32;
pub mod optimise;
pub mod scan;
pub mod signing;
pub mod store;
pub mod store_path;
pub mod verify;

pub use db::DbError;
pub use derivation::{Derivation, DerivationError, DerivationOutput};
pub use error::{HashError, NarError, Nixbase32Error, StorePathError};
pub use hash::{Hash, HashAlgo, Hasher};
pub use store_path::{FileIngestionMethod, StoreDir, StorePath};
