//! kiln-remote: scale-out in Nix's own formats.
//!
//! The binary cache: `nix-cache-info`, `.narinfo` files ([`narinfo`]),
//! NARs compressed with zstd or xz or not at all ([`compression`]),
//! ed25519 signatures over Nix's fingerprint; a cache is a directory or an
//! HTTP(S) server ([`cache`]). [`push()`] writes a closure to a cache;
//! [`substitute`] makes paths valid from caches, verified, through
//! [`kiln_store::store::Store::install`]; [`build`] decides which outputs
//! of a build to ask the caches for.

pub mod build;
pub mod cache;
pub mod compression;
pub mod error;
pub mod narinfo;
pub mod push;
pub mod serve;
pub mod substitute;

pub use cache::Cache;
pub use compression::Compression;
pub use error::CacheError;
pub use narinfo::{CacheInfo, NarInfo};
pub use push::{PushObserver, PushOptions, PushReport, push};
pub use substitute::{SubstituteObserver, SubstituteReport, SubstituterConfig, Substituters};
