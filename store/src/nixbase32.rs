//! Nix's base32, used in store path hash parts and in `sha256:…` hashes.
//!
//! # Format
//!
//! The alphabet is `0123456789abcdfghijklmnpqrsvwxyz`: digits and lower-case
//! letters without `e`, `o`, `u` and `t` (to avoid accidental words). It
//! differs from RFC 4648 base32 in three ways:
//!
//! - the bytes are read as one **little-endian** bit string (bit `k` of the
//!   input is bit `k % 8` of byte `k / 8`);
//! - that bit string is cut into 5-bit groups from bit 0 upwards, and the
//!   groups are written **most significant first**, so the last group (the
//!   high bits of the last byte) is the first character;
//! - there is no padding: `n` bytes give `ceil(8n / 5)` characters, and the
//!   unused top bits of the first character must be zero.
//!
//! For example the 20 bytes `01 00 … 00` encode as `000…001`, and
//! `80 00 … 00` as `000…040`.

use crate::error::Nixbase32Error;

/// The 32 digits, indexed by their value.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Value of each ASCII byte in [`ALPHABET`], or `0xff` when it is not a digit.
const DIGIT_VALUE: [u8; 256] = {
    let mut table = [0xff_u8; 256];
    let mut value = 0;
    while value < ALPHABET.len() {
        table[ALPHABET[value] as usize] = value as u8;
        value += 1;
    }
    table
};

/// Number of characters that encode `byte_len` bytes: `ceil(8 * byte_len / 5)`.
pub fn encoded_len(byte_len: usize) -> usize {
    (byte_len * 8).div_ceil(5)
}

/// Number of bytes a string of `char_len` characters decodes to, if that
/// length is one `encode` can produce.
pub fn decoded_len(char_len: usize) -> Option<usize> {
    let byte_len = char_len * 5 / 8;
    (encoded_len(byte_len) == char_len).then_some(byte_len)
}

/// Encodes `bytes` as Nix base32.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    encode_into(&mut out, bytes);
    out
}

/// Appends the Nix base32 of `bytes` to `out`.
pub fn encode_into(out: &mut String, bytes: &[u8]) {
    let len = encoded_len(bytes.len());
    // Character `len - 1 - n` holds bits 5n .. 5n+4 of the little-endian bit string.
    for n in (0..len).rev() {
        let bit = n * 5;
        let (byte, shift) = (bit / 8, bit % 8);
        let low = u16::from(bytes[byte]) >> shift;
        let high = bytes
            .get(byte + 1)
            .map_or(0, |&next| u16::from(next) << (8 - shift));
        out.push(char::from(ALPHABET[usize::from((low | high) & 0x1f)]));
    }
}

/// Decodes a Nix base32 string. Fails on a character outside the alphabet,
/// on a length no byte count encodes to, and on non-zero unused high bits.
pub fn decode(s: &str) -> Result<Vec<u8>, Nixbase32Error> {
    let chars = s.as_bytes();
    let byte_len = decoded_len(chars.len()).ok_or(Nixbase32Error::InvalidLength(chars.len()))?;
    let mut out = vec![0_u8; byte_len];
    for (pos, &c) in chars.iter().enumerate() {
        let digit = DIGIT_VALUE[usize::from(c)];
        if digit == 0xff {
            let bad = s[pos..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(Nixbase32Error::InvalidChar { char: bad, pos });
        }
        let bit = (chars.len() - 1 - pos) * 5;
        let (byte, shift) = (bit / 8, bit % 8);
        let spread = u16::from(digit) << shift;
        out[byte] |= (spread & 0xff) as u8;
        let carry = (spread >> 8) as u8;
        match out.get_mut(byte + 1) {
            Some(next) => *next |= carry,
            None if carry != 0 => return Err(Nixbase32Error::NonZeroPadding(s.to_owned())),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_nix_hash_sizes() {
        assert_eq!(encoded_len(16), 26);
        assert_eq!(encoded_len(20), 32);
        assert_eq!(encoded_len(32), 52);
        assert_eq!(encoded_len(64), 103);
        assert_eq!(encoded_len(0), 0);
        assert_eq!(decoded_len(52), Some(32));
        assert_eq!(decoded_len(2), Some(1));
        assert_eq!(decoded_len(3), None);
    }

    #[test]
    fn first_byte_is_last_character() {
        let mut bytes = [0_u8; 20];
        bytes[0] = 1;
        assert_eq!(encode(&bytes), "00000000000000000000000000000001");
        assert_eq!(decode("00000000000000000000000000000001").unwrap(), bytes);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode("0000000000000000000000000000000e"),
            Err(Nixbase32Error::InvalidChar { char: 'e', pos: 31 })
        );
        assert_eq!(decode("000"), Err(Nixbase32Error::InvalidLength(3)));
        // 52 characters carry 260 bits for 32 bytes: only the lowest bit of
        // the first character is used, so `1` is fine and `2` is not.
        assert!(decode(&format!("1{}", "0".repeat(51))).is_ok());
        let too_big = format!("2{}", "0".repeat(51));
        assert!(matches!(
            decode(&too_big),
            Err(Nixbase32Error::NonZeroPadding(_))
        ));
        assert!(decode(&format!("z{}", "0".repeat(31))).is_ok());
        assert!(matches!(
            decode("0000000000000000000000000000000ü"),
            Err(Nixbase32Error::InvalidLength(_) | Nixbase32Error::InvalidChar { .. })
        ));
    }

    #[test]
    fn round_trips_all_lengths() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes, "length {len}");
        }
    }
}
