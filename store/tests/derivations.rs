//! The derivation format against the Nix 2.8 vectors in
//! `tests/vectors/derivations/` (see the README of the shared conformance
//! set): every property walks every vector and reports each failing file.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use kiln_store::derivation::json::{parse_show_derivations, show_derivations};
use kiln_store::derivation::{DerivationOutput, DrvHash, DrvHashKind};
use kiln_store::store_path::make_output_path;
use kiln_store::{Derivation, DerivationError, StoreDir, StorePath};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/derivations")
}

fn nix_store() -> StoreDir {
    StoreDir::new("/nix/store").expect("valid store dir")
}

/// One row of `paths.tsv`: the drv path and each output's path ("" for
/// floating or deferred outputs).
struct Expected {
    drv_path: String,
    outputs: BTreeMap<String, String>,
}

struct Vector {
    name: String,
    drv_bytes: Vec<u8>,
    json_text: String,
    expected: Expected,
}

fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let tsv = fs::read_to_string(dir.join("paths.tsv")).expect("paths.tsv");
    let mut expected = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let mut columns = line.split('\t');
        let name = columns.next().expect("name column").to_owned();
        let drv_path = columns.next().expect("drvPath column").to_owned();
        let outputs = columns
            .map(|column| {
                let (output, path) = column.split_once('=').expect("output=path");
                (output.to_owned(), path.to_owned())
            })
            .collect();
        expected.insert(name, Expected { drv_path, outputs });
    }

    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("vectors dir")
        .map(|entry| entry.expect("dir entry").file_name())
        .filter_map(|name| name.to_str()?.strip_suffix(".drv").map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names.len(), 54, "expected the 54 Nix vectors");
    names
        .into_iter()
        .map(|name| Vector {
            drv_bytes: fs::read(dir.join(format!("{name}.drv"))).expect("drv"),
            json_text: fs::read_to_string(dir.join(format!("{name}.json"))).expect("json"),
            expected: expected
                .remove(&name)
                .unwrap_or_else(|| panic!("{name} missing from paths.tsv")),
            name,
        })
        .collect()
}

/// Runs `check` on every vector and fails once at the end, listing every
/// vector that failed and why.
fn for_each_vector(check: impl Fn(&Vector) -> Result<(), String>) {
    let failures: Vec<String> = load_vectors()
        .iter()
        .filter_map(|v| check(v).err().map(|e| format!("{}.drv: {e}", v.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn parse(v: &Vector) -> Result<Derivation, String> {
    Derivation::parse(&nix_store(), &v.drv_bytes).map_err(|e| format!("parse: {e}"))
}

/// The `name` attribute: in the env, or inside `__json` for structured attrs.
fn drv_name(drv: &Derivation) -> Result<String, String> {
    if let Some(name) = drv.env.get("name") {
        return Ok(name.clone());
    }
    let json = drv.env.get("__json").ok_or("no name and no __json")?;
    let attrs: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    attrs["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no name in __json".to_owned())
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_drv_reserialises_byte_identically() {
    for_each_vector(|v| {
        let written = parse(v)?.to_aterm(&nix_store());
        if written != v.drv_bytes {
            return Err(format!(
                "wrote\n{}\nexpected\n{}",
                show(&written),
                show(&v.drv_bytes)
            ));
        }
        Ok(())
    });
}

#[test]
fn json_builds_the_same_drv_and_renders_the_same_json() {
    let dir = nix_store();
    for_each_vector(|v| {
        let drvs = parse_show_derivations(&dir, &v.json_text).map_err(|e| format!("json: {e}"))?;
        let [(path, from_json)] = <[_; 1]>::try_from(drvs.into_iter().collect::<Vec<_>>())
            .map_err(|_| "expected one derivation in the JSON".to_owned())?;
        if dir.display(&path) != v.expected.drv_path {
            return Err(format!("JSON key {path} is not the drvPath of paths.tsv"));
        }
        let written = from_json.to_aterm(&dir);
        if written != v.drv_bytes {
            return Err(format!("from JSON wrote\n{}", show(&written)));
        }
        // Rendering compares as JSON values: key order and whitespace aside.
        let from_aterm = parse(v)?;
        let rendered = show_derivations(&dir, [(&path, &from_aterm)]);
        let nix: serde_json::Value =
            serde_json::from_str(&v.json_text).map_err(|e| e.to_string())?;
        if rendered != nix {
            return Err(format!("rendered JSON differs:\n{rendered:#}"));
        }
        Ok(())
    });
}

#[test]
fn drv_path_is_the_text_path_of_the_aterm() {
    let dir = nix_store();
    for_each_vector(|v| {
        let drv = parse(v)?;
        let path = drv
            .drv_path(&dir, &drv_name(&drv)?)
            .map_err(|e| e.to_string())?;
        if dir.display(&path) != v.expected.drv_path {
            return Err(format!(
                "drv path {} != {}",
                dir.display(&path),
                v.expected.drv_path
            ));
        }
        Ok(())
    });
}

/// The vectors by drv path, to resolve input derivations, with a memo of
/// their (unmasked) hashes modulo as a real caller would keep.
struct Resolver {
    drvs: HashMap<StorePath, Derivation>,
    memo: HashMap<StorePath, DrvHash>,
}

impl Resolver {
    fn new() -> Resolver {
        let dir = nix_store();
        let drvs = load_vectors()
            .iter()
            .map(|v| {
                let path = dir.parse_path(&v.expected.drv_path).expect("drvPath");
                let drv = Derivation::parse(&dir, &v.drv_bytes).expect("vector parses");
                (path, drv)
            })
            .collect();
        Resolver {
            drvs,
            memo: HashMap::new(),
        }
    }

    fn hash(&mut self, path: &StorePath) -> Result<DrvHash, DerivationError> {
        if let Some(hash) = self.memo.get(path) {
            return Ok(hash.clone());
        }
        let drv = self
            .drvs
            .get(path)
            .unwrap_or_else(|| panic!("input {path} is not among the vectors"))
            .clone();
        let hash = drv.hash_modulo(&nix_store(), false, &mut |input| self.hash(input))?;
        self.memo.insert(path.clone(), hash.clone());
        Ok(hash)
    }
}

fn output_paths(drv: &Derivation) -> BTreeMap<String, String> {
    drv.outputs
        .iter()
        .map(|(name, output)| {
            let path = output
                .path()
                .map(|p| nix_store().display(p))
                .unwrap_or_default();
            (name.clone(), path)
        })
        .collect()
}

#[test]
fn instantiation_recomputes_every_output_path_and_the_whole_drv() {
    let dir = nix_store();
    let resolver = std::cell::RefCell::new(Resolver::new());
    for_each_vector(|v| {
        let original = parse(v)?;
        if output_paths(&original) != v.expected.outputs {
            return Err(format!(
                "drv outputs {:?} differ from paths.tsv",
                output_paths(&original)
            ));
        }
        // What the evaluator hands over: input-addressed outputs without
        // paths and their env vars empty; fixed and floating outputs as they
        // are declared, with their env vars missing.
        let mut fresh = original.clone();
        for (name, output) in &mut fresh.outputs {
            match output {
                DerivationOutput::InputAddressed { .. } | DerivationOutput::Deferred => {
                    *output = DerivationOutput::Deferred;
                    fresh.env.insert(name.clone(), String::new());
                }
                DerivationOutput::Fixed { .. } | DerivationOutput::Floating { .. } => {
                    fresh.env.remove(name);
                }
            }
        }
        let name = drv_name(&original)?;
        let mut resolver = resolver.borrow_mut();
        fresh
            .fill_output_paths(&dir, &name, &mut |input| resolver.hash(input))
            .map_err(|e| format!("fill: {e}"))?;
        if output_paths(&fresh) != v.expected.outputs {
            return Err(format!("computed outputs {:?}", output_paths(&fresh)));
        }
        let written = fresh.to_aterm(&dir);
        if written != v.drv_bytes {
            return Err(format!("instantiated drv\n{}", show(&written)));
        }
        // The one-pass form gives the same file and the same hash modulo
        // as filling and hashing separately.
        let mut again = original.clone();
        for (name, output) in &mut again.outputs {
            if matches!(output, DerivationOutput::InputAddressed { .. }) {
                *output = DerivationOutput::Deferred;
                again.env.insert(name.clone(), String::new());
            }
        }
        let (aterm, hash) = again
            .instantiate(&dir, &name, &mut |input| resolver.hash(input))
            .map_err(|e| format!("instantiate: {e}"))?;
        if aterm != v.drv_bytes {
            return Err(format!("instantiate wrote\n{}", show(&aterm)));
        }
        let separately = fresh
            .hash_modulo(&dir, false, &mut |input| resolver.hash(input))
            .map_err(|e| e.to_string())?;
        if hash != separately {
            return Err(format!(
                "instantiate's hash {hash:?}, separately {separately:?}"
            ));
        }
        Ok(())
    });
}

#[test]
fn masked_hash_modulo_of_the_final_drv_gives_its_output_paths() {
    let dir = nix_store();
    let resolver = std::cell::RefCell::new(Resolver::new());
    for_each_vector(|v| {
        let drv = parse(v)?;
        let name = drv_name(&drv)?;
        let mut resolver = resolver.borrow_mut();
        let hash = drv
            .hash_modulo(&dir, true, &mut |input| resolver.hash(input))
            .map_err(|e| e.to_string())?;
        for (output, expected) in &v.expected.outputs {
            let computed = match drv.outputs.get(output) {
                Some(DerivationOutput::InputAddressed { .. }) => {
                    if hash.kind != DrvHashKind::Regular {
                        return Err("input-addressed but deferred".into());
                    }
                    let path = make_output_path(
                        &dir,
                        hash.get(output).expect("hash of output"),
                        output,
                        &name,
                    )
                    .map_err(|e| e.to_string())?;
                    dir.display(&path)
                }
                Some(DerivationOutput::Fixed { .. }) => {
                    // A fixed output's hash modulo is the "fixed:out:" hash.
                    let hash = hash.get(output).expect("hash of output");
                    let DerivationOutput::Fixed {
                        hash: declared,
                        path,
                    } = &drv.outputs[output]
                    else {
                        unreachable!()
                    };
                    let clear = format!(
                        "fixed:out:{}:{}:{}",
                        declared.method_algo(),
                        declared.hash.to_base16(),
                        dir.display(path)
                    );
                    let sha = kiln_store::Hash::digest(kiln_store::HashAlgo::Sha256, clear);
                    if *hash != sha {
                        return Err(format!("fixed hash modulo {hash:?} != {sha:?}"));
                    }
                    dir.display(path)
                }
                Some(DerivationOutput::Floating { .. } | DerivationOutput::Deferred) => {
                    if hash.kind != DrvHashKind::Deferred {
                        return Err("floating or deferred but not a deferred hash".into());
                    }
                    String::new()
                }
                None => return Err(format!("no output {output}")),
            };
            if &computed != expected {
                return Err(format!("output {output}: {computed} != {expected}"));
            }
        }
        Ok(())
    });
}

#[test]
fn placeholders_match_the_floating_ca_vector() {
    let v = load_vectors()
        .into_iter()
        .find(|v| v.name == "ca-floating")
        .expect("ca-floating vector");
    let drv = Derivation::parse(&nix_store(), &v.drv_bytes).expect("parses");
    for output in ["out", "dev"] {
        assert_eq!(
            drv.env[output],
            kiln_store::derivation::instantiate::placeholder(output)
        );
    }
}

// Bad inputs, each made from a real vector so that only one thing is wrong.

fn vector_bytes(name: &str) -> Vec<u8> {
    fs::read(vectors_dir().join(format!("{name}.drv"))).expect("vector")
}

fn parse_err(bytes: &[u8]) -> DerivationError {
    match Derivation::parse(&nix_store(), bytes) {
        Ok(_) => panic!("accepted bad input:\n{}", show(bytes)),
        Err(e) => e,
    }
}

fn replace_once(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 vector");
    assert!(text.contains(from), "{from:?} not in vector");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn trailing_byte_is_rejected() {
    let mut bytes = vector_bytes("simple");
    let len = bytes.len();
    bytes.push(b'\n');
    assert_eq!(
        parse_err(&bytes),
        DerivationError::TrailingData { pos: len }
    );
}

#[test]
fn duplicate_env_key_is_rejected() {
    let bytes = replace_once(&vector_bytes("simple"), "(\"name\",", "(\"builder\",");
    let err = parse_err(&bytes);
    assert!(
        matches!(&err, DerivationError::Unsorted { what: "environment variable", value, .. } if value == "builder")
            || matches!(&err, DerivationError::Duplicate { what: "environment variable", value, .. } if value == "builder"),
        "{err:?}"
    );
    let bytes = replace_once(
        &vector_bytes("simple"),
        "(\"builder\",\"/bin/sh\")",
        "(\"builder\",\"/bin/sh\"),(\"builder\",\"/bin/sh\")",
    );
    assert!(matches!(
        parse_err(&bytes),
        DerivationError::Duplicate {
            what: "environment variable",
            ..
        }
    ),);
}

#[test]
fn unterminated_string_is_rejected() {
    let bytes = vector_bytes("simple");
    let cut = bytes.len() - 6;
    let err = parse_err(&bytes[..cut]);
    assert!(
        matches!(err, DerivationError::UnterminatedString { .. }),
        "{err:?}"
    );
}

#[test]
fn bad_paths_are_rejected() {
    let dep = vector_bytes("dep-simple");
    // Not under the store dir.
    let err = parse_err(&replace_once(&dep, "[(\"/nix/store/", "[(\"/gnu/store/"));
    assert!(matches!(err, DerivationError::BadPath { .. }), "{err:?}");
    // A hash part with a letter nixbase32 lacks ('e').
    let text = show(&dep);
    let start = text.find("/nix/store/").expect("a path") + "/nix/store/".len();
    let mut bad = dep.clone();
    bad[start] = b'e';
    assert!(matches!(parse_err(&bad), DerivationError::BadPath { .. }));
    // A relative path in the outputs.
    let err = parse_err(&replace_once(
        &dep,
        "\"out\",\"/nix/store",
        "\"out\",\"nix/store",
    ));
    assert!(matches!(err, DerivationError::BadPath { .. }), "{err:?}");
    // The same store paths parse under another store dir only if they are there.
    assert!(Derivation::parse(&StoreDir::new("/kiln/store").expect("dir"), &dep).is_err());
}

#[test]
fn unsorted_outputs_are_rejected() {
    let bytes = vector_bytes("multiple-outputs");
    let text = show(&bytes);
    // Swap the first two outputs: ("dev",…),("lib",…) → ("lib",…),("dev",…).
    let outputs_end = text.find("],[").expect("end of outputs");
    let outputs = &text["Derive([".len()..outputs_end];
    let items: Vec<&str> = outputs.split("),(").collect();
    assert_eq!(items.len(), 3);
    let swapped = format!(
        "{}),({}),({}",
        items[1],
        items[0].trim_start_matches('('),
        items[2]
    );
    let swapped = format!("({}", swapped.trim_start_matches('('));
    let bad = format!("Derive([{swapped}{}", &text[outputs_end..]);
    let err = parse_err(bad.as_bytes());
    assert!(
        matches!(&err, DerivationError::Unsorted { what: "output", value, previous, .. } if value == "dev" && previous == "lib"),
        "{err:?}"
    );
}

#[test]
fn inconsistent_outputs_are_rejected() {
    // A fixed output whose path does not match its hash.
    let fod = vector_bytes("fod-flat-sha256-base32");
    let other = vector_bytes("fod-flat-sha1-base32");
    let path_of = |bytes: &[u8]| {
        let text = show(bytes);
        let start = text.find("\"/nix/store/").expect("path") + 1;
        let end = start + text[start..].find('"').expect("end");
        text[start..end].to_owned()
    };
    let bad = replace_once(&fod, &path_of(&fod), &path_of(&other));
    let err = parse_err(&bad);
    assert!(
        matches!(err, DerivationError::FixedOutputPathMismatch { .. }),
        "{err:?}"
    );
    // A hash in nixbase32 instead of base16 (Nix would rewrite it).
    let err = parse_err(&replace_once(
        &vector_bytes("fod-flat-sha1-base16"),
        "\"sha1\",\"c06798cf02af363e9b65e98484ed4156b85fd5fc\"",
        "\"sha1\",\"zzbbgw6mr8nf6psb9bj1ip65kh7s07wb\"",
    ));
    assert!(
        matches!(
            err,
            DerivationError::HashNotBase16 { .. } | DerivationError::BadHash { .. }
        ),
        "{err:?}"
    );
    // An unknown hash algorithm.
    let err = parse_err(&replace_once(
        &vector_bytes("fod-flat-sha1-base16"),
        "\"sha1\",\"c0",
        "\"sha3\",\"c0",
    ));
    assert!(
        matches!(err, DerivationError::BadHashAlgo { .. }),
        "{err:?}"
    );
    // An escape in a field Nix writes unescaped.
    let err = parse_err(&replace_once(
        &vector_bytes("simple"),
        "\"x86_64-linux\",\"/bin",
        "\"x86_64\\tlinux\",\"/bin",
    ));
    assert!(
        matches!(
            err,
            DerivationError::UnquotedFieldEscape { what: "system", .. }
        ),
        "{err:?}"
    );
    // No outputs at all.
    let err = parse_err(b"Derive([],[],[],\"x\",\"b\",[],[])");
    assert!(matches!(err, DerivationError::BadOutputs { .. }), "{err:?}");
}

// Corrupted inputs: errors, never panics; anything accepted round-trips.

fn check_corrupted(bytes: &[u8]) -> Result<(), DerivationError> {
    let dir = nix_store();
    let drv = Derivation::parse(&dir, bytes)?;
    assert_eq!(drv.to_aterm(&dir), bytes, "accepted input must round-trip");
    let json = drv.to_json(&dir);
    assert_eq!(Derivation::from_json(&dir, &json).as_ref(), Ok(&drv));
    Ok(())
}

#[test]
fn every_truncation_of_a_real_drv_is_an_error() {
    for name in [
        "dep-chain",
        "fod-recursive-sha256-sri",
        "ca-dependent",
        "env-control-chars",
    ] {
        let bytes = vector_bytes(name);
        for cut in 0..bytes.len() {
            assert!(
                check_corrupted(&bytes[..cut]).is_err(),
                "{name} cut at {cut} parsed"
            );
        }
        assert!(check_corrupted(&bytes).is_ok(), "{name} intact");
    }
}

#[test]
fn byte_flips_give_errors_or_round_trip() {
    let replacements = [
        b'"', b'\\', b'(', b')', b'[', b']', b',', b'\0', b'\n', b'\r', b'\t', 0xff, b'a', b'/',
    ];
    for name in [
        "dep-chain",
        "multiple-outputs",
        "fod-flat-sha1-sri",
        "env-quotes",
    ] {
        let bytes = vector_bytes(name);
        let mut rejected = 0;
        for pos in 0..bytes.len() {
            for &replacement in &replacements {
                if bytes[pos] == replacement {
                    continue;
                }
                let mut corrupted = bytes.clone();
                corrupted[pos] = replacement;
                if check_corrupted(&corrupted).is_err() {
                    rejected += 1;
                }
            }
            // Dropping and doubling a byte as well.
            let mut dropped = bytes.clone();
            dropped.remove(pos);
            let _ = check_corrupted(&dropped);
            let mut doubled = bytes.clone();
            doubled.insert(pos, bytes[pos]);
            let _ = check_corrupted(&doubled);
        }
        assert!(
            rejected > bytes.len(),
            "{name}: only {rejected} corruptions rejected"
        );
    }
}

/// The files under `src/` are the sources the `src-*` vectors import, so
/// their source paths must be the ones in those drvs' inputSrcs. (This pins
/// `src/dir/link-to-a` as a symlink: as a regular file the path differs.)
#[test]
fn source_files_give_the_input_srcs_of_the_src_vectors() {
    let dir = nix_store();
    let vectors = load_vectors();
    for (vector, file) in [
        ("src-file", "hello.txt"),
        ("src-builder", "builder.sh"),
        ("src-dir", "dir"),
    ] {
        let v = vectors.iter().find(|v| v.name == vector).expect("vector");
        let drv = parse(v).expect("parses");
        let path = vectors_dir().join("src").join(file);
        let (nar_hash, _) =
            kiln_store::nar::hash_path(&path, kiln_store::HashAlgo::Sha256).expect("hash src");
        let computed =
            kiln_store::store_path::make_source_path(&dir, file, &nar_hash, &Default::default())
                .expect("source path");
        assert_eq!(
            drv.input_srcs.iter().collect::<Vec<_>>(),
            vec![&computed],
            "{vector}: src/{file}"
        );
    }
}

#[test]
fn bad_json_is_rejected_with_the_field() {
    let dir = nix_store();
    let text = fs::read_to_string(vectors_dir().join("fod-flat-sha1-base16.json")).expect("json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    let (_, good) = value
        .as_object()
        .expect("object")
        .iter()
        .next()
        .expect("one drv");
    assert!(Derivation::from_json(&dir, good).is_ok());

    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut drv = good.clone();
        edit(&mut drv);
        Derivation::from_json(&dir, &drv).expect_err("accepted broken JSON")
    };
    let err = broken(&|d| {
        d.as_object_mut().expect("object").remove("system");
    });
    assert!(matches!(err, DerivationError::JsonShape { .. }), "{err:?}");
    let err = broken(&|d| d["args"] = serde_json::json!([1]));
    assert_eq!(
        err.to_string(),
        "derivation JSON in args[0]: expected a string"
    );
    let err = broken(&|d| d["outputs"]["out"]["hashAlgo"] = "sha3".into());
    assert!(
        matches!(err, DerivationError::BadHashAlgo { .. }),
        "{err:?}"
    );
    let err = broken(&|d| d["outputs"]["out"]["hash"] = "00".into());
    assert!(matches!(err, DerivationError::BadHash { .. }), "{err:?}");
    let err = broken(&|d| d["inputSrcs"] = serde_json::json!(["/tmp/x"]));
    assert!(matches!(err, DerivationError::BadPath { .. }), "{err:?}");
    assert!(matches!(
        parse_show_derivations(&dir, "{"),
        Err(DerivationError::JsonSyntax(_))
    ));
}

#[test]
fn one_serialisation_gives_the_drv_bytes_and_the_unmasked_hash_modulo() {
    let dir = nix_store();
    let resolver = std::cell::RefCell::new(Resolver::new());
    for_each_vector(|v| {
        let drv = parse(v)?;
        let mut resolver = resolver.borrow_mut();
        let separate = drv
            .hash_modulo(&dir, false, &mut |input| resolver.hash(input))
            .map_err(|e| e.to_string())?;
        let (aterm, together) = drv
            .to_aterm_with_hash_modulo(&dir, &mut |input| resolver.hash(input))
            .map_err(|e| e.to_string())?;
        if aterm != v.drv_bytes {
            return Err(format!("written drv\n{}", show(&aterm)));
        }
        if together != separate {
            return Err(format!("hash {together:?} != {separate:?}"));
        }
        Ok(())
    });
}
