//! `store-paths.tsv`: every `nix-store --add`, `--add-fixed [--recursive]`
//! and `builtins.toFile` row, computed from its content hash, and the content
//! hash itself recomputed from the input file where it is a flat hash.

use std::collections::BTreeSet;

use kiln_store::store_path::{make_fixed_output_path, make_source_path, make_text_path};
use kiln_store::{FileIngestionMethod, Hash, HashAlgo, StoreDir, StorePath};

use crate::tsv::{Failures, Row, read_rows, vector_path};

/// What a row's command asks for.
enum Command {
    Add,
    Fixed(FileIngestionMethod, HashAlgo),
    ToFile,
}

fn parse_command(command: &str) -> Result<Command, String> {
    let words: Vec<&str> = command.split(' ').collect();
    match words.as_slice() {
        ["nix-store", "--add"] => Ok(Command::Add),
        ["nix-store", "--add-fixed", "--recursive", algo] => Ok(Command::Fixed(
            FileIngestionMethod::Recursive,
            algo.parse().map_err(|e| format!("{e}"))?,
        )),
        ["nix-store", "--add-fixed", algo] => Ok(Command::Fixed(
            FileIngestionMethod::Flat,
            algo.parse().map_err(|e| format!("{e}"))?,
        )),
        ["builtins.toFile"] => Ok(Command::ToFile),
        _ => Err(format!("unknown command {command:?}")),
    }
}

/// The file whose bytes a flat hash or toFile row hashes, if it is a plain
/// file in the vectors (not inside `trees.tar.gz`).
fn flat_input_file(input: &str) -> Option<String> {
    if let Some((_, contents)) = input.split_once("(contents: ") {
        return contents.strip_suffix(')').map(str::to_owned);
    }
    (!input.contains(':')).then(|| input.to_owned())
}

fn check_row(dir: &StoreDir, row: &Row) -> Result<(), String> {
    let [command, input, name, content_hash, references, store_path] = row.cols.as_slice() else {
        return Err("wrong column count".into());
    };
    let hash = Hash::parse(content_hash, None).map_err(|e| e.to_string())?;
    let want = dir.parse_path(store_path).map_err(|e| e.to_string())?;
    let refs: BTreeSet<StorePath> = references
        .split(' ')
        .filter(|r| !r.is_empty())
        .map(|r| dir.parse_path(r).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let command = parse_command(command)?;
    let got = match command {
        Command::Add => make_source_path(dir, name, &hash, &refs),
        Command::Fixed(method, algo) => {
            if hash.algo() != algo {
                return Err(format!(
                    "content hash is {}, command says {algo}",
                    hash.algo()
                ));
            }
            make_fixed_output_path(dir, method, &hash, name, &refs)
        }
        Command::ToFile => make_text_path(dir, name, &hash, &refs),
    }
    .map_err(|e| e.to_string())?;
    if got != want {
        return Err(format!("computed {}, want {want}", dir.display(&got)));
    }
    let flat = matches!(
        command,
        Command::ToFile | Command::Fixed(FileIngestionMethod::Flat, _)
    );
    if let (true, Some(file)) = (flat, flat_input_file(input)) {
        let bytes = std::fs::read(vector_path(&file)).map_err(|e| format!("{file}: {e}"))?;
        let actual = Hash::digest(hash.algo(), &bytes);
        if actual != hash {
            return Err(format!(
                "{file} hashes to {}, want {content_hash}",
                actual.to_typed_base16()
            ));
        }
    }
    Ok(())
}

#[test]
fn every_row_computes_the_nix_path() {
    let dir = StoreDir::new("/nix/store").expect("valid store dir");
    let rows = read_rows("store-paths.tsv");
    let mut failures = Failures::default();
    for row in &rows {
        if let Err(e) = check_row(&dir, row) {
            failures.push(format!(
                "line {} ({} {}): {e}",
                row.line, row.cols[0], row.cols[1]
            ));
        }
    }
    failures.assert_none(rows.len());
}
