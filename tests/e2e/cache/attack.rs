//! A cache in an attacker's hands: tampered narinfos and NARs, wrong
//! signatures, a signed NAR that tries to climb out with `..`. Each is
//! refused, nothing is registered, nothing is written outside the store's
//! temp dirs, and a good cache behind the bad one still serves the path.

use kiln_store::signing::{SecretKey, fingerprint};
use kiln_store::{Hash, HashAlgo};

use super::kit::{closure, field, key, narinfo_file, run, valid};
use crate::kit::{TestEnv, raw_nar};

/// Push `tree` to a fresh cache DIR with `compression`; its narinfo path.
fn pushed(env: &TestEnv, name: &str, tree: &str, compression: &str) -> std::path::PathBuf {
    let dir = env.dir.path().join(name);
    env.ok(&[
        "cache",
        "push",
        dir.to_str().unwrap(),
        tree,
        "--key-file",
        "ci-1.sec",
        "--compression",
        compression,
    ]);
    narinfo_file(&dir, tree)
}

/// Fetch `tree` from `urls` into a fresh store: (success, stderr, env).
fn fetch(tree: &str, urls: &[&std::path::Path], public: &str) -> (bool, String, TestEnv) {
    let other = TestEnv::new();
    let urls: Vec<String> = urls
        .iter()
        .map(|d| format!("file://{}", d.display()))
        .collect();
    let (ok, err) = run(
        &other,
        &[
            "cache",
            "fetch",
            tree,
            "--substituters",
            &urls.join(" "),
            "--trusted-public-keys",
            public,
        ],
    );
    (ok, err, other)
}

fn assert_refused(ok: bool, err: &str, other: &TestEnv, tree: &str, why: &str) {
    assert!(!ok, "accepted:\n{err}");
    assert!(err.contains(why), "expected {why:?}:\n{err}");
    assert!(!valid(other, tree));
    other.assert_store_consistent();
    // No leftover temp dir in the store.
    let store = other.root().join("kiln/store");
    if let Ok(entries) = std::fs::read_dir(&store) {
        let names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.is_empty(), "left in the store: {names:?}");
    }
}

#[test]
fn tampered_narinfos_and_nars_are_refused_and_a_good_cache_still_serves() {
    let env = TestEnv::new();
    let public = key(&env, "ci-1");
    let (_, tree) = closure(&env, None);

    // A narinfo whose NarSize (so its fingerprint) was changed.
    let info = pushed(&env, "size", &tree, "none");
    let text = std::fs::read_to_string(&info).unwrap();
    let size: u64 = field(&text, "NarSize").parse().unwrap();
    std::fs::write(
        &info,
        text.replace(
            &format!("NarSize: {size}"),
            &format!("NarSize: {}", size + 8),
        ),
    )
    .unwrap();
    let (ok, err, other) = fetch(&tree, &[info.parent().unwrap()], &public);
    assert_refused(ok, &err, &other, &tree, "does not match");

    // A NAR whose bytes were changed (uncompressed, so it still parses).
    let info = pushed(&env, "bytes", &tree, "none");
    let text = std::fs::read_to_string(&info).unwrap();
    let nar = info.parent().unwrap().join(field(&text, "URL"));
    let mut bytes = std::fs::read(&nar).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w.iter().all(|&b| b == 7))
        .unwrap()
        + 1000;
    bytes[at] ^= 1;
    std::fs::write(&nar, &bytes).unwrap();
    let (ok, err, other) = fetch(&tree, &[info.parent().unwrap()], &public);
    assert_refused(ok, &err, &other, &tree, "the signed narinfo says");

    // A truncated xz file.
    let info = pushed(&env, "short", &tree, "xz");
    let text = std::fs::read_to_string(&info).unwrap();
    let nar = info.parent().unwrap().join(field(&text, "URL"));
    let bytes = std::fs::read(&nar).unwrap();
    std::fs::write(&nar, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, err, other) = fetch(&tree, &[info.parent().unwrap()], &public);
    assert_refused(ok, &err, &other, &tree, "not substituting");

    // A narinfo under the name of another path.
    let info = pushed(&env, "renamed", &tree, "zstd");
    let dir = info.parent().unwrap().to_path_buf();
    let decoy = "/kiln/store/00000000000000000000000000000000-tree";
    std::fs::rename(&info, narinfo_file(&dir, decoy)).unwrap();
    let (ok, err, other) = fetch(decoy, &[&dir], &public);
    assert_refused(ok, &err, &other, decoy, "describes");

    // The corrupt cache first, a good one after it: the path comes from
    // the good one, with a warning about the bad.
    let good = pushed(&env, "good", &tree, "zstd");
    let bad = env.dir.path().join("bytes");
    let (ok, err, other) = fetch(&tree, &[&bad, good.parent().unwrap()], &public);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("from file://{}", bad.display())),
        "{err}"
    );
    assert!(valid(&other, &tree));
    other.assert_store_consistent();
}

/// A signed narinfo whose NAR has a directory entry named `..`: the
/// signature is good (the key is trusted, the attacker has it), the NAR
/// hash matches, and still nothing is unpacked above the temp dir.
#[test]
fn a_signed_nar_with_dot_dot_entries_is_refused() {
    let env = TestEnv::new();
    let public = key(&env, "ci-1");
    let secret =
        SecretKey::parse(&std::fs::read_to_string(env.work().join("ci-1.sec")).unwrap()).unwrap();
    for name in [&b".."[..], b".", b"a/b", b""] {
        let nar = raw_nar(&[
            b"nix-archive-1",
            b"(",
            b"type",
            b"directory",
            b"entry",
            b"(",
            b"name",
            name,
            b"node",
            b"(",
            b"type",
            b"regular",
            b"contents",
            b"pwned\n",
            b")",
            b")",
            b")",
        ]);
        let hash = Hash::digest(HashAlgo::Sha256, &nar);
        let path = "/kiln/store/11111111111111111111111111111111-evil";
        let fp = fingerprint(path, &hash, nar.len() as u64, &Default::default());
        let cache = env.dir.path().join("evil");
        std::fs::create_dir_all(cache.join("nar")).unwrap();
        std::fs::write(cache.join("nix-cache-info"), "StoreDir: /kiln/store\n").unwrap();
        std::fs::write(cache.join("nar/evil.nar"), &nar).unwrap();
        std::fs::write(
            narinfo_file(&cache, path),
            format!(
                "StorePath: {path}\nURL: nar/evil.nar\nCompression: none\nNarHash: {}\nNarSize: {}\nReferences: \nSig: {}\n",
                hash.to_typed_nix32(),
                nar.len(),
                secret.sign(fp.as_bytes())
            ),
        )
        .unwrap();
        let (ok, err, other) = fetch(path, &[&cache], &public);
        assert_refused(ok, &err, &other, path, "not a valid NAR");
        // Nothing was written beside the store either.
        let root_entries: Vec<String> = std::fs::read_dir(other.root().join("kiln"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !root_entries.iter().any(|n| n != "store" && n != "var"),
            "{root_entries:?}"
        );
        assert!(!other.root().join("kiln/pwned").exists());
    }
}
