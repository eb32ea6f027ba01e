//! Content hashes as Nix writes them.
//!
//! # Forms
//!
//! A hash is an algorithm (`md5`, `sha1`, `sha256`, `sha512`) and a digest of
//! 16, 20, 32 or 64 bytes. Nix prints and parses it in these forms:
//!
//! | form            | example (sha256 of the empty string)                         |
//! |-----------------|--------------------------------------------------------------|
//! | base16          | `e3b0c442…b855` (64 lower-case hex digits)                   |
//! | nixbase32       | `0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73` (52)  |
//! | base64          | `47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=` (44)          |
//! | typed           | `sha256:<base16 or nixbase32 or base64>`                     |
//! | SRI             | `sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=`        |
//!
//! A bare hash (no `algo:` prefix, not SRI) needs the algorithm from the
//! caller. Which encoding a string uses follows from its length, since for
//! each digest size the three lengths differ (sha256: 64, 52, 44). SRI is
//! always base64. Base16 input may use upper-case digits; output is lower case.

use std::fmt;
use std::io;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as BASE64};
use md5::Digest as _;

use crate::error::HashError;
use crate::nixbase32;

/// A hash algorithm Nix supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ];

    /// The name Nix uses: `md5`, `sha1`, `sha256`, `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    fn base16_len(self) -> usize {
        self.digest_len() * 2
    }

    fn nix32_len(self) -> usize {
        nixbase32::encoded_len(self.digest_len())
    }

    fn base64_len(self) -> usize {
        self.digest_len().div_ceil(3) * 4
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, HashError> {
        HashAlgo::ALL
            .into_iter()
            .find(|algo| algo.name() == s)
            .ok_or_else(|| HashError::UnknownAlgo(s.to_owned()))
    }
}

/// A digest together with its algorithm. The digest length always matches
/// the algorithm. The bytes live inline (room for the largest, sha512):
/// instantiation makes several hashes per derivation, and a heap
/// allocation for each showed up in profiles.
#[derive(Clone, Copy)]
pub struct Hash {
    algo: HashAlgo,
    bytes: [u8; MAX_DIGEST_LEN],
}

/// The longest digest (sha512).
const MAX_DIGEST_LEN: usize = 64;

// Equality, order and hashing look at the used bytes only (the rest is
// always zero, but saying so keeps that an implementation detail).
impl PartialEq for Hash {
    fn eq(&self, other: &Hash) -> bool {
        self.algo == other.algo && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Hash {}

impl PartialOrd for Hash {
    fn partial_cmp(&self, other: &Hash) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hash {
    fn cmp(&self, other: &Hash) -> std::cmp::Ordering {
        (self.algo, self.as_bytes()).cmp(&(other.algo, other.as_bytes()))
    }
}

impl std::hash::Hash for Hash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.algo.hash(state);
        self.as_bytes().hash(state);
    }
}

impl Hash {
    /// Hashes `bytes` with `algo`.
    pub fn digest(algo: HashAlgo, bytes: impl AsRef<[u8]>) -> Hash {
        let mut hasher = Hasher::new(algo);
        hasher.update(bytes.as_ref());
        hasher.finish()
    }

    /// Wraps an existing digest, checking its length.
    pub fn from_bytes(algo: HashAlgo, digest: &[u8]) -> Result<Hash, HashError> {
        if digest.len() != algo.digest_len() {
            return Err(HashError::BadDigestLength {
                algo,
                expected: algo.digest_len(),
                len: digest.len(),
            });
        }
        Ok(Hash::inline(algo, digest))
    }

    /// `digest` must have `algo`'s length (checked by every caller).
    fn inline(algo: HashAlgo, digest: &[u8]) -> Hash {
        let mut bytes = [0; MAX_DIGEST_LEN];
        bytes[..digest.len()].copy_from_slice(digest);
        Hash { algo, bytes }
    }

    /// Parses any form Nix accepts (see the module doc). `expected` supplies
    /// the algorithm for a bare hash; when the string names its algorithm
    /// too, the two must agree.
    pub fn parse(s: &str, expected: Option<HashAlgo>) -> Result<Hash, HashError> {
        let (algo, rest, sri) = if let Some((prefix, rest)) = s.split_once(':') {
            (Some(prefix.parse::<HashAlgo>()?), rest, false)
        } else if let Some((prefix, rest)) = s.split_once('-') {
            (Some(prefix.parse::<HashAlgo>()?), rest, true)
        } else {
            (None, s, false)
        };
        let algo = match (algo, expected) {
            (Some(found), Some(expected)) if found != expected => {
                return Err(HashError::AlgoMismatch {
                    input: s.to_owned(),
                    expected,
                    found,
                });
            }
            (Some(algo), _) | (None, Some(algo)) => algo,
            (None, None) => return Err(HashError::MissingAlgo(s.to_owned())),
        };
        let digest = if sri {
            decode_base64(s, rest)?
        } else if rest.len() == algo.base16_len() {
            decode_base16(s, rest)?
        } else if rest.len() == algo.nix32_len() {
            nixbase32::decode(rest).map_err(|source| HashError::BadNixbase32 {
                input: s.to_owned(),
                source,
            })?
        } else if rest.len() == algo.base64_len() {
            decode_base64(s, rest)?
        } else {
            return Err(HashError::BadLength {
                input: s.to_owned(),
                algo,
                len: rest.len(),
            });
        };
        if digest.len() != algo.digest_len() {
            return Err(HashError::BadLength {
                input: s.to_owned(),
                algo,
                len: rest.len(),
            });
        }
        Ok(Hash::inline(algo, &digest))
    }

    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algo.digest_len()]
    }

    pub fn to_base16(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.algo.base16_len());
        for byte in self.as_bytes() {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out
    }

    pub fn to_nix32(&self) -> String {
        nixbase32::encode(self.as_bytes())
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.as_bytes())
    }

    /// `algo-base64`, the Subresource Integrity form.
    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo, self.to_base64())
    }

    /// `algo:base16`, as in `.drv` fixed-output fingerprints and the database.
    /// The base16 digits into `buf` (room for sha512), without allocating.
    pub fn base16_into<'b>(&self, buf: &'b mut [u8; 2 * MAX_DIGEST_LEN]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = self.as_bytes();
        for (i, byte) in digest.iter().enumerate() {
            buf[2 * i] = HEX[usize::from(byte >> 4)];
            buf[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        // Only ASCII digits were written.
        std::str::from_utf8(&buf[..2 * digest.len()]).unwrap_or_default()
    }

    pub fn to_typed_base16(&self) -> String {
        format!("{}:{}", self.algo, self.to_base16())
    }

    /// `algo:nixbase32`, as `nix-store --query --hash` prints it.
    pub fn to_typed_nix32(&self) -> String {
        format!("{}:{}", self.algo, self.to_nix32())
    }
}

/// Displays the `algo:nixbase32` form.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_typed_nix32())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_typed_base16())
    }
}

fn decode_base16(input: &str, digits: &str) -> Result<Vec<u8>, HashError> {
    let value = |pos: usize| -> Result<u8, HashError> {
        let c = digits.as_bytes()[pos];
        char::from(c)
            .to_digit(16)
            .map(|v| v as u8)
            .ok_or_else(|| HashError::BadBase16 {
                input: input.to_owned(),
                char: digits[pos..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER),
                pos,
            })
    };
    (0..digits.len() / 2)
        .map(|i| Ok((value(2 * i)? << 4) | value(2 * i + 1)?))
        .collect()
}

/// Decoding accepts base64 with or without its `=` padding, as Nix does.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn decode_base64(input: &str, text: &str) -> Result<Vec<u8>, HashError> {
    BASE64_LENIENT
        .decode(text)
        .map_err(|_| HashError::BadBase64 {
            input: input.to_owned(),
        })
}

/// A streaming hasher: feed it with [`Hasher::update`] or `io::Write`, then
/// [`Hasher::finish`].
#[derive(Clone)]
pub struct Hasher(State);

#[derive(Clone)]
enum State {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algo: HashAlgo) -> Hasher {
        Hasher(match algo {
            HashAlgo::Md5 => State::Md5(md5::Md5::new()),
            HashAlgo::Sha1 => State::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => State::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => State::Sha512(sha2::Sha512::new()),
        })
    }

    pub fn algo(&self) -> HashAlgo {
        match self.0 {
            State::Md5(_) => HashAlgo::Md5,
            State::Sha1(_) => HashAlgo::Sha1,
            State::Sha256(_) => HashAlgo::Sha256,
            State::Sha512(_) => HashAlgo::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            State::Md5(h) => h.update(bytes),
            State::Sha1(h) => h.update(bytes),
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Hash {
        let algo = self.algo();
        match self.0 {
            State::Md5(h) => Hash::inline(algo, &h.finalize()),
            State::Sha1(h) => Hash::inline(algo, &h.finalize()),
            State::Sha256(h) => Hash::inline(algo, &h.finalize()),
            State::Sha512(h) => Hash::inline(algo, &h.finalize()),
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.update(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn prints_every_form() {
        let h = Hash::digest(HashAlgo::Sha256, b"");
        assert_eq!(h.to_base16(), EMPTY_SHA256);
        assert_eq!(
            h.to_nix32(),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(
            h.to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            h.to_sri(),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(h.to_typed_base16(), format!("sha256:{EMPTY_SHA256}"));
    }

    #[test]
    fn parses_every_form_of_every_algo() {
        for algo in HashAlgo::ALL {
            let h = Hash::digest(algo, b"kiln");
            for text in [
                h.to_typed_base16(),
                h.to_typed_nix32(),
                format!("{algo}:{}", h.to_base64()),
                h.to_sri(),
                h.to_base16().to_uppercase(),
            ] {
                let bare = !text.contains(':') && !text.contains('-');
                assert_eq!(Hash::parse(&text, Some(algo)).unwrap(), h, "{text}");
                if !bare {
                    assert_eq!(Hash::parse(&text, None).unwrap(), h, "{text}");
                }
            }
            for bare in [h.to_base16(), h.to_nix32(), h.to_base64()] {
                assert_eq!(Hash::parse(&bare, Some(algo)).unwrap(), h, "{bare}");
                assert_eq!(
                    Hash::parse(&bare, None),
                    Err(HashError::MissingAlgo(bare.clone()))
                );
            }
        }
    }

    #[test]
    fn rejects_bad_hashes() {
        let h = Hash::digest(HashAlgo::Sha256, b"");
        assert!(matches!(
            Hash::parse(&h.to_typed_base16(), Some(HashAlgo::Sha1)),
            Err(HashError::AlgoMismatch { .. })
        ));
        assert_eq!(
            Hash::parse("sha3:00", None),
            Err(HashError::UnknownAlgo("sha3".into()))
        );
        assert!(matches!(
            Hash::parse("sha256:abc", None),
            Err(HashError::BadLength { len: 3, .. })
        ));
        let bad_hex = format!("sha256:{}g", &EMPTY_SHA256[..63]);
        assert!(matches!(
            Hash::parse(&bad_hex, None),
            Err(HashError::BadBase16 {
                char: 'g',
                pos: 63,
                ..
            })
        ));
        // SRI of the wrong digest size.
        assert!(matches!(
            Hash::parse("sha256-AAAA", None),
            Err(HashError::BadLength { .. })
        ));
        assert!(matches!(
            Hash::parse("sha256-!!!!", None),
            Err(HashError::BadBase64 { .. })
        ));
        // SRI without its padding is accepted, as Nix does.
        assert_eq!(
            Hash::parse("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", None),
            Ok(h)
        );
        // Multi-byte characters must not cause a panic when slicing.
        assert!(Hash::parse(&format!("sha1:{}", "é".repeat(20)), None).is_err());
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for algo in HashAlgo::ALL {
            let mut hasher = Hasher::new(algo);
            for chunk in data.chunks(777) {
                io::Write::write_all(&mut hasher, chunk).unwrap();
            }
            assert_eq!(hasher.finish(), Hash::digest(algo, &data));
        }
    }
}
