//! `nixbase32.tsv`: encode and decode every row both ways.

use kiln_store::{Hash, HashAlgo, nixbase32};

use crate::tsv::{Failures, read_rows};

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("vector hex is valid"))
        .collect()
}

#[test]
fn every_row_encodes_and_decodes() {
    let rows = read_rows("nixbase32.tsv");
    let mut failures = Failures::default();
    for row in &rows {
        let (hex, nix32) = (&row.cols[0], &row.cols[1]);
        let bytes = hex_decode(hex);
        let encoded = nixbase32::encode(&bytes);
        failures.check(encoded == *nix32, || {
            format!("line {}: encode({hex}) = {encoded}, want {nix32}", row.line)
        });
        let decoded = nixbase32::decode(nix32);
        failures.check(decoded.as_ref() == Ok(&bytes), || {
            format!(
                "line {}: decode({nix32}) = {decoded:?}, want {hex}",
                row.line
            )
        });
        // The same value through the hash API, with the algo from the length.
        let algo = match bytes.len() {
            16 => HashAlgo::Md5,
            20 => HashAlgo::Sha1,
            32 => HashAlgo::Sha256,
            64 => HashAlgo::Sha512,
            other => {
                failures.push(format!("line {}: unexpected length {other}", row.line));
                continue;
            }
        };
        match Hash::parse(&format!("{algo}:{hex}"), None) {
            Ok(hash) => failures.check(hash.to_nix32() == *nix32, || {
                format!("line {}: Hash::to_nix32 = {}", row.line, hash.to_nix32())
            }),
            Err(e) => failures.push(format!("line {}: {e}", row.line)),
        }
        match Hash::parse(nix32, Some(algo)) {
            Ok(hash) => failures.check(hash.to_base16() == *hex, || {
                format!(
                    "line {}: Hash::parse(nix32) = {}",
                    row.line,
                    hash.to_base16()
                )
            }),
            Err(e) => failures.push(format!("line {}: {e}", row.line)),
        }
    }
    failures.assert_none(rows.len());
}
