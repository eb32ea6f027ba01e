//! Prints the NAR sha256 and NAR size of a path, or writes its NAR to stdout
//! with `--dump`; used to measure hashing speed against `openssl dgst`.
//!
//! `cargo run --release -p kiln-store --example nar_hash -- [--dump|--single] PATH`
//!
//! `--single` hashes on one thread (`dump_path` into a `Hasher`), to compare
//! with the two-thread `hash_path`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_store::HashAlgo;
use kiln_store::nar;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, path) = match args.as_slice() {
        [flag, path] if flag == "--dump" || flag == "--single" => {
            (flag.as_str(), PathBuf::from(path))
        }
        [path] => ("", PathBuf::from(path)),
        _ => {
            eprintln!("usage: nar_hash [--dump|--single] PATH");
            return ExitCode::from(2);
        }
    };
    let result = if mode == "--single" {
        let mut hasher = kiln_store::Hasher::new(HashAlgo::Sha256);
        nar::dump_path(&path, &mut hasher)
            .map(|size| format!("{} {size}", hasher.finish().to_typed_nix32()))
    } else if mode == "--dump" {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        nar::dump_path(&path, &mut out).and_then(|size| {
            out.flush().map_err(kiln_store::NarError::Write)?;
            eprintln!("{size}");
            Ok(String::new())
        })
    } else {
        nar::hash_path(&path, HashAlgo::Sha256)
            .map(|(hash, size)| format!("{} {size}", hash.to_typed_nix32()))
    };
    match result {
        Ok(line) => {
            if !line.is_empty() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nar_hash: {e}");
            ExitCode::FAILURE
        }
    }
}
