//! NARs written token by token, for hostile inputs no NAR writer would
//! produce (`..` entries, cut streams).

/// The NAR made of `tokens`, each written as Nix writes a string: its
/// length (u64, little-endian), its bytes, zero padding to 8 bytes.
pub fn raw_nar(tokens: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for token in tokens {
        out.extend_from_slice(&(token.len() as u64).to_le_bytes());
        out.extend_from_slice(token);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }
    out
}
