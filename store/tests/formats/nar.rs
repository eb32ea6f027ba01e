//! `nar/`: every tree of `trees.tar.gz` serialised to the exact Nix NAR and
//! hashed in all three encodings; every `.nar` restored and dumped back to
//! the same bytes; and the recursive hashes of `store-paths.tsv`.

use std::path::{Path, PathBuf};

use kiln_store::nar;
use kiln_store::{Hash, HashAlgo};

use crate::tsv::{Failures, read_rows, vector_path};

/// Unpacks `nar/trees.tar.gz` into a fresh temp dir; trees are in `trees/`.
pub fn unpack_trees() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::open(vector_path("nar/trees.tar.gz")).expect("trees.tar.gz");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.unpack(dir.path()).expect("unpack trees.tar.gz");
    dir
}

fn tree_names() -> Vec<String> {
    read_rows("nar/nar-hashes.tsv")
        .into_iter()
        .map(|row| row.cols[0].clone())
        .collect()
}

fn dump(path: &Path) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let size = nar::dump_path(path, &mut out).map_err(|e| e.to_string())?;
    if size != out.len() as u64 {
        return Err(format!(
            "dump_path returned size {size}, wrote {}",
            out.len()
        ));
    }
    Ok(out)
}

#[test]
fn every_tree_dumps_to_the_nix_nar() {
    let trees = unpack_trees();
    let names = tree_names();
    let mut failures = Failures::default();
    for name in &names {
        let want = std::fs::read(vector_path(&format!("nar/{name}.nar"))).expect("vector .nar");
        match dump(&trees.path().join("trees").join(name)) {
            Ok(got) => failures.check(got == want, || {
                let at = got.iter().zip(&want).position(|(a, b)| a != b);
                format!(
                    "{name}: NAR differs (ours {} bytes, Nix {} bytes, first difference at {at:?})",
                    got.len(),
                    want.len()
                )
            }),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    failures.assert_none(names.len());
}

#[test]
fn every_tree_hashes_like_nix_in_all_encodings() {
    let trees = unpack_trees();
    let rows = read_rows("nar/nar-hashes.tsv");
    let mut failures = Failures::default();
    for row in &rows {
        let [name, size, nix32, sri, hex, nix_hash] = row.cols.as_slice() else {
            failures.push(format!("line {}: wrong column count", row.line));
            continue;
        };
        let (hash, got_size) =
            match nar::hash_path(&trees.path().join("trees").join(name), HashAlgo::Sha256) {
                Ok(result) => result,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
        for (what, got, want) in [
            ("size", got_size.to_string(), size),
            ("nixbase32", hash.to_nix32(), nix32),
            ("SRI", hash.to_sri(), sri),
            ("base16", hash.to_base16(), hex),
            ("nix-hash", hash.to_nix32(), nix_hash),
        ] {
            failures.check(got == *want, || {
                format!("{name}: {what} {got}, want {want}")
            });
        }
        // Parsing each printed form gives back the same hash.
        for form in [nix32, sri, hex] {
            failures.check(
                Hash::parse(form, Some(HashAlgo::Sha256)).ok() == Some(hash),
                || format!("{name}: parsing {form} does not give the NAR hash"),
            );
        }
    }
    failures.assert_none(rows.len());
}

#[test]
fn every_nar_validates_restores_and_dumps_back() {
    let names = tree_names();
    let out = tempfile::tempdir().expect("temp dir");
    let mut failures = Failures::default();
    for name in &names {
        let bytes = std::fs::read(vector_path(&format!("nar/{name}.nar"))).expect("vector .nar");
        match nar::validate(&mut bytes.as_slice()) {
            Ok(size) => failures.check(size == bytes.len() as u64, || {
                format!("{name}: validate read {size} of {} bytes", bytes.len())
            }),
            Err(e) => failures.push(format!("{name}: validate: {e}")),
        }
        let target = out.path().join(name);
        match nar::restore(&mut bytes.as_slice(), &target) {
            Ok(size) => failures.check(size == bytes.len() as u64, || {
                format!("{name}: restore read {size} of {} bytes", bytes.len())
            }),
            Err(e) => {
                failures.push(format!("{name}: restore: {e}"));
                continue;
            }
        }
        match dump(&target) {
            Ok(again) => failures.check(again == bytes, || format!("{name}: re-dump differs")),
            Err(e) => failures.push(format!("{name}: re-dump: {e}")),
        }
    }
    failures.assert_none(names.len());
}

/// Where a `store-paths.tsv` input lives once the trees are unpacked.
fn input_path(trees: &Path, input: &str) -> PathBuf {
    if let Some(inner) = input.strip_prefix("nar/trees.tar.gz:") {
        return trees.join(inner);
    }
    vector_path(input)
}

#[test]
fn recursive_store_path_hashes_are_nar_hashes() {
    let trees = unpack_trees();
    let rows = read_rows("store-paths.tsv");
    let mut failures = Failures::default();
    let mut checked = 0;
    for row in &rows {
        let (command, input, content_hash) = (&row.cols[0], &row.cols[1], &row.cols[3]);
        let recursive = command == "nix-store --add" || command.contains("--recursive");
        if !recursive {
            continue;
        }
        checked += 1;
        let want = match Hash::parse(content_hash, None) {
            Ok(hash) => hash,
            Err(e) => {
                failures.push(format!("line {}: {e}", row.line));
                continue;
            }
        };
        let path = input_path(trees.path(), input);
        match nar::hash_path(&path, want.algo()) {
            Ok((got, _)) => failures.check(got == want, || {
                format!(
                    "line {} ({command} {input}): NAR hash {got}, want {want}",
                    row.line
                )
            }),
            Err(e) => failures.push(format!("line {} ({input}): {e}", row.line)),
        }
    }
    failures.assert_none(checked);
}
