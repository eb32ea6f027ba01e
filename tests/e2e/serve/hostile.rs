//! Hostile servers: canned answers to `copy_from` that a kiln client must
//! refuse, registering nothing.

use std::collections::BTreeSet;

use kiln_remote::serve::RemoteError;
use kiln_remote::serve::wire::{write_paths, write_str, write_strings, write_u64};
use kiln_store::derivation::{Derivation, DerivationOutput};
use kiln_store::{Hash, HashAlgo, StoreDir, StorePath};

use super::{connect, open};
use crate::kit::{STORE_DIR, TestEnv, raw_nar};

/// The NAR of a regular file with `contents`.
fn file_nar(contents: &[u8]) -> Vec<u8> {
    raw_nar(&[
        b"nix-archive-1",
        b"(",
        b"type",
        b"regular",
        b"contents",
        contents,
        b")",
    ])
}

/// A server that answers the handshake, QueryClosure, QueryPathInfos and
/// DumpStorePath of one path with these bytes, whatever is asked.
fn canned(env: &TestEnv, path: &StorePath, claimed: &Hash, nar: &[u8]) -> std::process::Command {
    let dir = StoreDir::new(STORE_DIR).unwrap();
    let mut r = Vec::new();
    write_u64(&mut r, 0x5452_eecb).unwrap();
    write_u64(&mut r, 0x207).unwrap();
    write_paths(&mut r, &dir, [path].into_iter()).unwrap();
    write_str(&mut r, dir.display(path).as_bytes()).unwrap();
    write_str(&mut r, b"").unwrap();
    write_paths(&mut r, &dir, std::iter::empty()).unwrap();
    write_u64(&mut r, nar.len() as u64).unwrap();
    write_u64(&mut r, nar.len() as u64).unwrap();
    write_str(&mut r, claimed.to_typed_nix32().as_bytes()).unwrap();
    write_str(&mut r, b"").unwrap();
    write_strings(&mut r, std::iter::empty::<&str>()).unwrap();
    write_str(&mut r, b"").unwrap();
    r.extend_from_slice(nar);
    let file = env.write("answers", &r);
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &format!("cat '{}'; exec cat >/dev/null", file.display()),
    ]);
    cmd
}

fn refused(env: &TestEnv, path: &StorePath, claimed: &Hash, nar: &[u8]) -> String {
    let local = open(&env.root(), STORE_DIR);
    let mut client = connect(canned(env, path, claimed, nar), STORE_DIR);
    let err = client
        .copy_from(&local, std::slice::from_ref(path))
        .unwrap_err();
    assert!(!local.is_valid(path).unwrap(), "{err}");
    assert!(!local.real_path(path).exists(), "{err}");
    env.assert_store_consistent();
    err.to_string()
}

fn some_path(name: &str) -> StorePath {
    StoreDir::new(STORE_DIR)
        .unwrap()
        .parse_path(&format!(
            "{STORE_DIR}/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-{name}"
        ))
        .unwrap()
}

#[test]
fn a_nar_whose_hash_is_not_the_one_announced_is_refused() {
    let env = TestEnv::new();
    let nar = file_nar(b"what the remote really sends\n");
    let claimed = Hash::digest(HashAlgo::Sha256, file_nar(b"what it announced\n"));
    let err = refused(&env, &some_path("f"), &claimed, &nar);
    assert!(
        err.contains("has hash") && err.contains("path info says"),
        "{err}"
    );
}

#[test]
fn a_nar_with_a_dot_dot_entry_is_refused() {
    let env = TestEnv::new();
    let nar = raw_nar(&[
        b"nix-archive-1",
        b"(",
        b"type",
        b"directory",
        b"entry",
        b"(",
        b"name",
        b"..",
        b"node",
        b"(",
        b"type",
        b"regular",
        b"contents",
        b"escaped",
        b")",
        b")",
        b")",
    ]);
    // The hash is the NAR's own: only the grammar is wrong.
    let claimed = Hash::digest(HashAlgo::Sha256, &nar);
    let err = refused(&env, &some_path("d"), &claimed, &nar);
    assert!(err.contains("not a valid NAR"), "{err}");
    assert!(!env.root().join("kiln/store/escaped").exists());
    assert!(!env.root().join("kiln/escaped").exists());
}

#[test]
fn a_drv_naming_a_wrong_output_path_is_refused() {
    let env = TestEnv::new();
    let dir = StoreDir::new(STORE_DIR).unwrap();
    let mut drv = Derivation {
        system: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        ..Derivation::default()
    };
    // Not the path this derivation's hash gives.
    drv.outputs.insert(
        "out".into(),
        DerivationOutput::InputAddressed {
            path: some_path("evil"),
        },
    );
    drv.env
        .insert("out".into(), dir.display(&some_path("evil")));
    drv.env.insert("name".into(), "evil".into());
    let text = drv.to_aterm(&dir);
    let path = kiln_store::store_path::make_text_path(
        &dir,
        "evil.drv",
        &Hash::digest(HashAlgo::Sha256, &text),
        &BTreeSet::new(),
    )
    .unwrap();
    let nar = file_nar(&text);
    let claimed = Hash::digest(HashAlgo::Sha256, &nar);
    let err = refused(&env, &path, &claimed, &nar);
    assert!(err.contains("evil"), "{err}");
    assert!(
        matches!(
            connect(canned(&env, &path, &claimed, &nar), STORE_DIR)
                .copy_from(&open(&env.root(), STORE_DIR), std::slice::from_ref(&path))
                .unwrap_err(),
            RemoteError::Store(_)
        ),
        "the install's .drv check refuses it"
    );
}
