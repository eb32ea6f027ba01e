//! NAR, the Nix ARchive: the canonical serialisation of a file system
//! object that store paths and NAR hashes are computed over.
//!
//! [`wire`] documents the grammar and the rules; [`writer`] streams a tree
//! to a NAR ([`dump_path`]) and [`hash`] hashes that stream on a second
//! thread ([`hash_path`]); [`reader`] streams a NAR back into a tree
//! ([`restore`]) or only checks it ([`validate`]).

pub mod hash;
pub mod reader;
pub mod wire;
pub mod writer;

pub use hash::{hash_path, hash_regular_bytes};
pub use reader::{restore, validate};
pub use writer::dump_path;
