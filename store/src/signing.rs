//! Signing keys in Nix's formats, shared by bundles and binary caches.
//!
//! # Formats
//!
//! A key file holds one line `NAME:BASE64` (standard base64 with padding),
//! as `nix-store --generate-binary-cache-key` writes them:
//!
//! - a secret key: 64 bytes, the ed25519 seed followed by the public key;
//! - a public key: the 32-byte ed25519 public key.
//!
//! A signature is written `NAME:BASE64` of the 64-byte ed25519 signature; the
//! name says which key made it, so a verifier looks up its trusted key of
//! that name. For store paths (narinfo files, the database's `signatures`
//! column), what is signed is the path's [`fingerprint`].

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::hash::Hash;

/// Why a key or signature could not be read or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a key is written NAME:BASE64, and this one has no ':'")]
    NoColon,
    #[error("the key name is empty")]
    EmptyName,
    #[error("the key name {0:?} contains whitespace or a ':'")]
    BadName(String),
    #[error("the key {name} is not valid base64")]
    BadBase64 { name: String },
    #[error("the key {name} has {found} bytes, a {kind} key has {expected}")]
    BadLength {
        name: String,
        kind: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("the secret key {name} is corrupt: its public half does not match its seed")]
    Mismatch { name: String },
    #[error("the public key {name} is not a valid ed25519 point")]
    BadPoint { name: String },
    #[error("a signature is written NAME:BASE64, and {0:?} is not")]
    BadSignature(String),
    #[error("no trusted key is named {0:?}")]
    UnknownKey(String),
    #[error("the signature by {0} does not match")]
    WrongSignature(String),
}

/// Split `NAME:BASE64` and decode the base64.
/// The decoded bytes of a key as an array of the length its kind needs.
fn exact_length<const N: usize>(
    name: &str,
    kind: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], KeyError> {
    bytes.try_into().map_err(|_| KeyError::BadLength {
        name: name.to_string(),
        kind,
        found: bytes.len(),
        expected: N,
    })
}

fn split_named(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let text = text.trim();
    let (name, data) = text.split_once(':').ok_or(KeyError::NoColon)?;
    check_key_name(name)?;
    let bytes = STANDARD.decode(data).map_err(|_| KeyError::BadBase64 {
        name: name.to_string(),
    })?;
    Ok((name.to_string(), bytes))
}

/// A key name is what precedes the ':' and what a signature carries.
pub fn check_key_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty() {
        return Err(KeyError::EmptyName);
    }
    if name.chars().any(|c| c.is_whitespace() || c == ':') {
        return Err(KeyError::BadName(name.to_string()));
    }
    Ok(())
}

/// An ed25519 secret key with its name.
#[derive(Clone)]
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.name)
    }
}

impl SecretKey {
    /// A new key from 32 bytes of the operating system's randomness.
    pub fn generate(name: &str) -> std::io::Result<SecretKey> {
        check_key_name(name).map_err(std::io::Error::other)?;
        let mut seed = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut seed)?;
        Ok(SecretKey::from_seed(name, &seed))
    }

    /// The key of a given seed (tests, and keys derived elsewhere).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> SecretKey {
        SecretKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        }
    }

    /// Read `NAME:BASE64(seed ‖ public)`.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let (name, bytes) = split_named(text)?;
        let pair: [u8; 64] = exact_length(&name, "secret", &bytes)?;
        let key = SigningKey::from_keypair_bytes(&pair)
            .map_err(|_| KeyError::Mismatch { name: name.clone() })?;
        Ok(SecretKey { name, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME:BASE64` of seed then public key, as Nix writes a secret key.
    pub fn to_nix_string(&self) -> String {
        format!(
            "{}:{}",
            self.name,
            STANDARD.encode(self.key.to_keypair_bytes())
        )
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The raw 64-byte ed25519 signature of `message`.
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// `NAME:BASE64(signature)` of `message`, the form narinfo files use.
    pub fn sign(&self, message: &[u8]) -> String {
        format!("{}:{}", self.name, STANDARD.encode(self.sign_raw(message)))
    }
}

/// An ed25519 public key with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Read `NAME:BASE64(public)`.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let (name, bytes) = split_named(text)?;
        let raw: [u8; 32] = exact_length(&name, "public", &bytes)?;
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|_| KeyError::BadPoint { name: name.clone() })?;
        Ok(PublicKey { name, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// `NAME:BASE64`, as Nix writes a public key.
    pub fn to_nix_string(&self) -> String {
        format!("{}:{}", self.name, STANDARD.encode(self.key.to_bytes()))
    }

    /// Whether `signature` (64 raw bytes) is this key's over `message`.
    /// Strict verification: no malleable or small-order forms.
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key.verify_strict(message, &sig).is_ok()
    }
}

/// A set of trusted public keys, looked up by name.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    pub fn new(keys: Vec<PublicKey>) -> TrustedKeys {
        TrustedKeys { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Check a `NAME:BASE64` signature of `message`: Ok with the key's
    /// name when a trusted key of that name made it.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<String, KeyError> {
        let (name, sig) = signature
            .split_once(':')
            .ok_or_else(|| KeyError::BadSignature(signature.to_string()))?;
        let sig = STANDARD
            .decode(sig)
            .map_err(|_| KeyError::BadSignature(signature.to_string()))?;
        let mut named = self.keys.iter().filter(|k| k.name == name).peekable();
        if named.peek().is_none() {
            return Err(KeyError::UnknownKey(name.to_string()));
        }
        if named.any(|k| k.verify_raw(message, &sig)) {
            Ok(name.to_string())
        } else {
            Err(KeyError::WrongSignature(name.to_string()))
        }
    }
}

/// Write a new key pair `DIR/NAME.sec` (mode 0600) and `DIR/NAME.pub`,
/// each one `NAME:BASE64` line. Refuses to replace an existing file.
pub fn write_key_pair(
    name: &str,
    dir: &std::path::Path,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = SecretKey::generate(name)?;
    let sec = dir.join(format!("{name}.sec"));
    let public = dir.join(format!("{name}.pub"));
    for path in [&sec, &public] {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists; not replacing a key", path.display()),
            ));
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&sec)?;
    file.write_all(format!("{}\n", key.to_nix_string()).as_bytes())?;
    file.sync_all()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&public)?;
    file.write_all(format!("{}\n", key.public().to_nix_string()).as_bytes())?;
    file.sync_all()?;
    Ok((sec, public))
}

/// What Nix signs for a store path (narinfo `Sig:`, `nix store sign`):
/// `1;PATH;NARHASH;NARSIZE;REF,REF,…` with full logical paths, the hash as
/// `sha256:<nixbase32>`, and the references sorted.
pub fn fingerprint(
    path: &str,
    nar_hash: &Hash,
    nar_size: u64,
    references: &BTreeSet<String>,
) -> String {
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    format!(
        "1;{path};{};{nar_size};{}",
        nar_hash.to_typed_nix32(),
        refs.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgo;

    // A key pair made by `nix-store --generate-binary-cache-key test-1 sk pk`
    // (Nix 2.8).
    const NIX_SECRET: &str = "test-1:Iqo9qvE7fnhJ2OD3rijOUWrOHGsnWwjcG90kzA+0QaMWuVUJarqOSYhBmUERBok8piy5q4/zMDEAP29My1Xb+A==";
    const NIX_PUBLIC: &str = "test-1:FrlVCWq6jkmIQZlBEQaJPKYsuauP8zAxAD9vTMtV2/g=";

    #[test]
    fn nix_made_keys_load_and_match() {
        let secret = SecretKey::parse(NIX_SECRET).unwrap();
        let public = PublicKey::parse(NIX_PUBLIC).unwrap();
        assert_eq!(secret.name(), "test-1");
        assert_eq!(secret.public(), public);
        assert_eq!(secret.to_nix_string(), NIX_SECRET);
        assert_eq!(public.to_nix_string(), NIX_PUBLIC);
    }

    /// `nix store sign -k sk` (Nix 2.8) of a file `f` holding "hello\n",
    /// added with `nix-store --add f`; `nix path-info --json --sigs` said:
    #[test]
    fn signs_store_paths_as_nix_does() {
        let path = "/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f";
        let nar_hash =
            Hash::parse("sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=", None).unwrap();
        let nix_sig = "test-1:tUX3502LiZeDFEr4bK/qbpLfkQ5NrxIiUCl1TnWK3HjmFlLoIQfyh8a3bWKKP7DSlzyjcjfJF50l3q+SMzuWAg==";
        let fp = fingerprint(path, &nar_hash, 120, &BTreeSet::new());
        let secret = SecretKey::parse(NIX_SECRET).unwrap();
        // ed25519 is deterministic: the same key over the same fingerprint
        // gives Nix's bytes exactly.
        assert_eq!(secret.sign(fp.as_bytes()), nix_sig);
        let trusted = TrustedKeys::new(vec![PublicKey::parse(NIX_PUBLIC).unwrap()]);
        assert_eq!(trusted.verify(fp.as_bytes(), nix_sig).unwrap(), "test-1");
        let other = fingerprint(path, &nar_hash, 121, &BTreeSet::new());
        assert!(trusted.verify(other.as_bytes(), nix_sig).is_err());
    }

    #[test]
    fn sign_then_verify_and_reject_changes() {
        let key = SecretKey::from_seed("k", &[7; 32]);
        let trusted = TrustedKeys::new(vec![key.public()]);
        let sig = key.sign(b"hello");
        assert_eq!(trusted.verify(b"hello", &sig).unwrap(), "k");
        assert_eq!(
            trusted.verify(b"hellO", &sig),
            Err(KeyError::WrongSignature("k".into()))
        );
        let other = SecretKey::from_seed("other", &[8; 32]).sign(b"hello");
        assert_eq!(
            trusted.verify(b"hello", &other),
            Err(KeyError::UnknownKey("other".into()))
        );
        // Same name, different key: not trusted.
        let impostor = SecretKey::from_seed("k", &[9; 32]).sign(b"hello");
        assert!(trusted.verify(b"hello", &impostor).is_err());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(SecretKey::parse("nocolon").unwrap_err(), KeyError::NoColon);
        assert_eq!(PublicKey::parse(":AAAA").unwrap_err(), KeyError::EmptyName);
        assert!(matches!(
            PublicKey::parse("a:!!!").unwrap_err(),
            KeyError::BadBase64 { .. }
        ));
        assert!(matches!(
            PublicKey::parse(&format!("a:{}", STANDARD.encode([0u8; 31]))).unwrap_err(),
            KeyError::BadLength { found: 31, .. }
        ));
        // A secret key whose public half was changed.
        let mut pair = SecretKey::from_seed("a", &[1; 32]).key.to_keypair_bytes();
        pair[40] ^= 1;
        assert!(matches!(
            SecretKey::parse(&format!("a:{}", STANDARD.encode(pair))).unwrap_err(),
            KeyError::Mismatch { .. }
        ));
    }

    #[test]
    fn fingerprint_is_nix_s() {
        let hash = Hash::digest(HashAlgo::Sha256, b"x");
        let refs: BTreeSet<String> = ["/nix/store/b-y".to_string(), "/nix/store/a-x".to_string()]
            .into_iter()
            .collect();
        assert_eq!(
            fingerprint("/nix/store/c-z", &hash, 120, &refs),
            format!(
                "1;/nix/store/c-z;{};120;/nix/store/a-x,/nix/store/b-y",
                hash.to_typed_nix32()
            )
        );
    }
}
