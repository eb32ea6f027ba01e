//! Store directories and store paths.
//!
//! # Format
//!
//! A store path is `STORE_DIR/HASH-NAME`, for example
//! `/kiln/store/g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-fixed.txt`:
//!
//! - `STORE_DIR` is an absolute, normalised directory ([`StoreDir`]); it is
//!   part of every path's fingerprint, so the same content has different
//!   paths in different store dirs.
//! - `HASH` is 32 nixbase32 characters: a 20-byte digest (a sha256 folded by
//!   XOR, see [`build`]).
//! - `NAME` is 1 to 211 bytes of `a-z A-Z 0-9 + - . _ ? =`. As in Nix 2.8, a
//!   name may start with `.`; Nix only rejected that again in 2.19.
//!
//! `HASH-NAME` is the *base name*. [`StorePath`] holds a validated base name
//! and knows nothing of the store dir; [`StoreDir`] joins and splits the two.

pub mod build;

use std::fmt;
use std::str::FromStr;

use crate::error::StorePathError;
use crate::nixbase32;

pub use build::{
    FileIngestionMethod, make_fixed_output_path, make_output_path, make_source_path,
    make_store_path, make_text_path,
};

/// Digest size of a store path hash part.
pub const HASH_BYTES: usize = 20;
/// Length of the nixbase32 hash part.
pub const HASH_CHARS: usize = 32;
/// Longest allowed name (Nix: 211 so the base name fits in 255 bytes with room to spare).
pub const MAX_NAME_LEN: usize = 211;

/// A store path base name `HASH-NAME`, validated. Ordered and compared as the
/// base-name string, which is the order of Nix's `StorePathSet`.
#[derive(Clone)]
pub struct StorePath {
    digest: [u8; HASH_BYTES],
    base_name: String,
}

// Equality, order and hashing follow the base name alone; the digest is
// derived from it.
impl PartialEq for StorePath {
    fn eq(&self, other: &Self) -> bool {
        self.base_name == other.base_name
    }
}

impl Eq for StorePath {}

impl PartialOrd for StorePath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StorePath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.base_name.cmp(&other.base_name)
    }
}

impl std::hash::Hash for StorePath {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.base_name.hash(state);
    }
}

impl StorePath {
    /// Parses a base name `HASH-NAME`.
    pub fn from_base_name(s: &str) -> Result<StorePath, StorePathError> {
        let bad = || StorePathError::BadBaseName(s.to_owned());
        if s.len() < HASH_CHARS + 1 || !s.is_char_boundary(HASH_CHARS) {
            return Err(bad());
        }
        let (hash, rest) = s.split_at(HASH_CHARS);
        let name = rest.strip_prefix('-').ok_or_else(bad)?;
        let bytes = nixbase32::decode(hash).map_err(|source| StorePathError::BadHashPart {
            hash: hash.to_owned(),
            source,
        })?;
        check_name(name)?;
        let mut digest = [0; HASH_BYTES];
        // 32 valid nixbase32 characters always decode to exactly 20 bytes.
        digest.copy_from_slice(&bytes);
        Ok(StorePath {
            digest,
            base_name: s.to_owned(),
        })
    }

    /// Builds a path from its 20-byte digest and a name, checking the name.
    pub fn from_parts(digest: &[u8; HASH_BYTES], name: &str) -> Result<StorePath, StorePathError> {
        check_name(name)?;
        let mut base_name = String::with_capacity(HASH_CHARS + 1 + name.len());
        nixbase32::encode_into(&mut base_name, digest);
        base_name.push('-');
        base_name.push_str(name);
        Ok(StorePath {
            digest: *digest,
            base_name,
        })
    }

    /// The 32 nixbase32 characters of the hash part.
    pub fn hash_part(&self) -> String {
        self.base_name[..HASH_CHARS].to_owned()
    }

    /// The hash part as a borrowed string.
    pub fn hash_part_str(&self) -> &str {
        &self.base_name[..HASH_CHARS]
    }

    /// The 20-byte digest of the hash part.
    pub fn digest(&self) -> [u8; HASH_BYTES] {
        self.digest
    }

    pub fn name(&self) -> &str {
        &self.base_name[HASH_CHARS + 1..]
    }

    /// `HASH-NAME`.
    pub fn base_name(&self) -> &str {
        &self.base_name
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_name)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self.base_name)
    }
}

impl FromStr for StorePath {
    type Err = StorePathError;

    fn from_str(s: &str) -> Result<Self, StorePathError> {
        StorePath::from_base_name(s)
    }
}

/// Checks a store path name against Nix 2.8's rules (see the module doc).
pub fn check_name(name: &str) -> Result<(), StorePathError> {
    if name.is_empty() {
        return Err(StorePathError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StorePathError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
        });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+-._?=".contains(c);
    if let Some((pos, char)) = name.char_indices().find(|&(_, c)| !allowed(c)) {
        return Err(StorePathError::BadNameChar {
            name: name.to_owned(),
            char,
            pos,
        });
    }
    Ok(())
}

/// The logical store directory, e.g. `/kiln/store`: absolute, without a
/// trailing slash, `.`/`..` or empty components.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreDir {
    dir: String,
}

impl StoreDir {
    pub fn new(dir: &str) -> Result<StoreDir, StorePathError> {
        let bad = |reason| {
            Err(StorePathError::BadStoreDir {
                dir: dir.to_owned(),
                reason,
            })
        };
        let Some(relative) = dir.strip_prefix('/') else {
            return bad("it must be an absolute path");
        };
        if relative.is_empty() {
            return bad("it must not be the root directory");
        }
        if dir.chars().any(char::is_control) {
            return bad("it must not contain control characters");
        }
        if relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return bad("it must be normalised: no trailing slash, '//', '.' or '..'");
        }
        Ok(StoreDir {
            dir: dir.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.dir
    }

    /// Parses a full store path `STORE_DIR/HASH-NAME` (nothing after the name).
    pub fn parse_path(&self, path: &str) -> Result<StorePath, StorePathError> {
        let base = self.strip_dir(path)?;
        if base.contains('/') {
            return Err(StorePathError::BadBaseName(base.to_owned()));
        }
        StorePath::from_base_name(base)
    }

    /// Splits `STORE_DIR/HASH-NAME[/REST]` into the store path and `REST`
    /// (empty, or starting with `/`), for paths inside a store object.
    pub fn parse_path_prefix<'a>(
        &self,
        path: &'a str,
    ) -> Result<(StorePath, &'a str), StorePathError> {
        let base = self.strip_dir(path)?;
        let end = base.find('/').unwrap_or(base.len());
        let (base, rest) = base.split_at(end);
        Ok((StorePath::from_base_name(base)?, rest))
    }

    /// The full path `STORE_DIR/HASH-NAME`.
    pub fn display(&self, path: &StorePath) -> String {
        // Built by hand: called for every path of every derivation, and
        // `format!` costs several times more than two copies.
        let mut out = String::with_capacity(self.dir.len() + 1 + path.base_name.len());
        out.push_str(&self.dir);
        out.push('/');
        out.push_str(&path.base_name);
        out
    }

    fn strip_dir<'a>(&self, path: &'a str) -> Result<&'a str, StorePathError> {
        path.strip_prefix(self.dir.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| StorePathError::NotInStore {
                path: path.to_owned(),
                store_dir: self.dir.clone(),
            })
    }
}

impl fmt::Display for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir)
    }
}

impl fmt::Debug for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreDir({})", self.dir)
    }
}

impl FromStr for StoreDir {
    type Err = StorePathError;

    fn from_str(s: &str) -> Result<Self, StorePathError> {
        StoreDir::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-fixed.txt";

    #[test]
    fn parses_and_prints() {
        let dir = StoreDir::new("/kiln/store").unwrap();
        let path = dir.parse_path(&format!("/kiln/store/{BASE}")).unwrap();
        assert_eq!(path.name(), "fixed.txt");
        assert_eq!(path.hash_part(), "g5zn7ff2jgfwx2i5nj2q6nvv30991xfa");
        assert_eq!(path.to_string(), BASE);
        assert_eq!(dir.display(&path), format!("/kiln/store/{BASE}"));
        assert_eq!(
            StorePath::from_parts(&path.digest(), "fixed.txt").unwrap(),
            path
        );
        let full = format!("/kiln/store/{BASE}/bin/sh");
        let (inner, rest) = dir.parse_path_prefix(&full).unwrap();
        assert_eq!((inner, rest), (path, "/bin/sh"));
    }

    #[test]
    fn rejects_bad_paths() {
        let dir = StoreDir::new("/kiln/store").unwrap();
        assert!(matches!(
            dir.parse_path(&format!("/nix/store/{BASE}")),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(matches!(
            dir.parse_path(&format!("/kiln/storex/{BASE}")),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(matches!(
            dir.parse_path(&format!("/kiln/store/{BASE}/x")),
            Err(StorePathError::BadBaseName(_))
        ));
        assert!(matches!(
            StorePath::from_base_name("e5zn7ff2jgfwx2i5nj2q6nvv30991xfa-x"),
            Err(StorePathError::BadHashPart { .. })
        ));
        assert!(matches!(
            StorePath::from_base_name("g5zn7ff2jgfwx2i5nj2q6nvv30991xfa_x"),
            Err(StorePathError::BadBaseName(_))
        ));
        assert_eq!(
            StorePath::from_base_name("g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-"),
            Err(StorePathError::EmptyName)
        );
        assert_eq!(
            StorePath::from_base_name("g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-a b"),
            Err(StorePathError::BadNameChar {
                name: "a b".into(),
                char: ' ',
                pos: 1
            })
        );
        let long = "a".repeat(212);
        assert!(matches!(
            check_name(&long),
            Err(StorePathError::NameTooLong { len: 212, .. })
        ));
        assert!(check_name(&long[..211]).is_ok());
        assert!(StorePath::from_base_name("é5zn7ff2jgfwx2i5nj2q6nvv30991xfa-x").is_err());
        assert!(StorePath::from_base_name("g5zn7ff2jgfwx2i5nj2q6nvv30991xféa-x").is_err());
    }

    #[test]
    fn starts_with_dot_is_allowed_as_in_nix_2_8() {
        // Nix 2.4 to 2.18 accepted names starting with '.', and `builtins.path`
        // users relied on it; kiln matches Nix 2.8.
        assert!(StorePath::from_base_name("g5zn7ff2jgfwx2i5nj2q6nvv30991xfa-.gitignore").is_ok());
    }

    #[test]
    fn store_dir_must_be_normalised() {
        for bad in [
            "",
            "kiln/store",
            "/",
            "/kiln/store/",
            "/kiln//store",
            "/kiln/./store",
            "/a/../b",
            "/a\nb",
        ] {
            assert!(StoreDir::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(StoreDir::new("/nix/store").unwrap().as_str(), "/nix/store");
    }

    #[test]
    fn orders_by_base_name() {
        let a = StorePath::from_base_name("0zn7ff2jgfwx2i5nj2q6nvv30991xfaz-b").unwrap();
        let b = StorePath::from_base_name("z5zn7ff2jgfwx2i5nj2q6nvv30991xfa-a").unwrap();
        assert!(a < b);
    }
}
