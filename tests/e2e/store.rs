//! `kiln store …` and `kiln hash …` end to end: every command, its errors,
//! Nix compatibility against the Nix 2.8 vectors, and a crash test that
//! kills `kiln store add` mid-way.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use kiln_store::store::{Store, StoreConfig};
use kiln_store::{Derivation, StoreDir, StorePath};
use serde_json::Value;

use crate::kit::{Prng, TestEnv};

/// The Nix 2.8 conformance vectors copied into the project.
fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("store/tests/vectors")
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Open the test's store through the library, to set up what the CLI
/// cannot make (text paths with references, derivations).
fn library_store(env: &TestEnv, store_dir: &str) -> Store {
    Store::open(StoreConfig {
        root: env.root(),
        store_dir: StoreDir::new(store_dir).unwrap(),
    })
    .unwrap()
}

/// Assert a failure is one line naming `needle`, with exit code 2.
fn fails_naming(env: &TestEnv, args: &[&str], needle: &str) {
    let stderr = env.fails(args, 2);
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
}

/// Unpack the NAR vector trees into `work/trees`.
fn unpack_trees(env: &TestEnv) -> PathBuf {
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(vectors().join("nar/trees.tar.gz"))
        .current_dir(env.work())
        .status()
        .expect("run tar");
    assert!(status.success());
    env.work().join("trees")
}

#[test]
fn add_then_path_info_json() {
    let env = TestEnv::new();
    env.write("dir/a.txt", "a\n");
    env.write("dir/sub/b.txt", "b\n");
    let file = env.write("note.txt", "hello\n");

    let out = env.ok(&["store", "add", "dir", file.to_str().unwrap()]);
    let added = lines(&out);
    assert_eq!(added.len(), 2);
    assert!(added[0].starts_with("/kiln/store/") && added[0].ends_with("-dir"));
    assert!(added[1].ends_with("-note.txt"));
    // The files are under the physical root, read-only.
    let real = env.root().join(added[0].trim_start_matches('/'));
    assert_eq!(fs::read_to_string(real.join("sub/b.txt")).unwrap(), "b\n");
    assert!(fs::metadata(&real).unwrap().permissions().readonly());

    // Adding again gives the same path.
    assert_eq!(env.ok(&["store", "add", "dir"]).trim(), added[0]);

    let json: Value = serde_json::from_str(&env.ok(&[
        "store",
        "path-info",
        "--json",
        "--closure-size",
        added[0],
    ]))
    .unwrap();
    let info = &json[0];
    assert_eq!(info["path"], added[0]);
    assert_eq!(info["references"], serde_json::json!([]));
    assert_eq!(info["closureSize"], info["narSize"]);
    assert!(info["narSize"].as_u64().unwrap() > 0);
    // The recorded NAR hash is the hash of the files in the store.
    let sri = env.ok(&["hash", "path", real.to_str().unwrap()]);
    assert_eq!(info["narHash"], sri.trim());
    let ca = info["ca"].as_str().unwrap();
    assert!(ca.starts_with("fixed:r:sha256:"), "{ca}");

    // Plain output: path, NAR size, closure size.
    let plain = env.ok(&["store", "path-info", "-s", "-S", added[1]]);
    let fields: Vec<&str> = plain.trim().split('\t').collect();
    assert_eq!(fields.len(), 3, "{plain}");
    assert_eq!(fields[0], added[1]);
    assert_eq!(fields[1], fields[2]);
}

#[test]
fn add_and_add_fixed_give_nix_store_paths() {
    let env = TestEnv::new();
    let trees = unpack_trees(&env);
    let tsv = fs::read_to_string(vectors().join("store-paths.tsv")).unwrap();
    let mut checked = 0;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (command, input, expected) = (cols[0], cols[1], cols[5]);
        let source = if let Some(tree) = input.strip_prefix("nar/trees.tar.gz:trees/") {
            trees.join(tree)
        } else if command.starts_with("nix-store") {
            vectors().join(input)
        } else {
            continue; // builtins.toFile rows: covered by the store_path tests
        };
        let source = source.to_str().unwrap();
        let mut args = vec!["--store-dir", "/nix/store", "store"];
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["nix-store", "--add"] => args.push("add"),
            ["nix-store", "--add-fixed", "--recursive", algo] => {
                args.extend(["add-fixed", "--recursive", algo])
            }
            ["nix-store", "--add-fixed", algo] => args.extend(["add-fixed", algo]),
            other => panic!("unexpected command {other:?}"),
        }
        args.push(source);
        let got = env.ok(&args);
        assert_eq!(got.trim(), expected, "{command} {input}");
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} rows checked");
}

#[test]
fn add_errors_are_one_line_and_exit_2() {
    let env = TestEnv::new();
    fails_naming(&env, &["store", "add", "missing.txt"], "missing.txt");
    env.write("bad name", "x");
    fails_naming(&env, &["store", "add", "bad name"], "bad name");
    env.write("d/f", "x");
    fails_naming(
        &env,
        &["store", "add-fixed", "sha256", "d"],
        "not a regular file",
    );
    fails_naming(&env, &["store", "add-fixed", "sha3", "d/f"], "sha3");
    fails_naming(
        &env,
        &["--store-dir", "relative/store", "store", "add", "d"],
        "--store-dir",
    );
    // A tree holding something a NAR cannot hold (a fifo).
    env.write("special/ok", "x");
    let fifo = std::ffi::CString::new(env.work().join("special/pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    fails_naming(&env, &["store", "add", "special"], "pipe");
    // Nothing was registered by the failed commands.
    let out = env.ok(&["store", "add", "d"]);
    assert!(out.trim().ends_with("-d"));
    // A bad flag is a usage error.
    env.fails(&["store", "add", "--no-such-flag", "d"], 2);
}

#[test]
fn store_path_arguments_in_every_spelling() {
    let env = TestEnv::new();
    env.write("pkg/bin/tool", "#!/bin/sh\n");
    let logical = env.ok(&["store", "add", "pkg"]).trim().to_string();
    let physical = env.root().join(logical.trim_start_matches('/'));
    std::os::unix::fs::symlink(&logical, env.work().join("result")).unwrap();
    std::os::unix::fs::symlink("result", env.work().join("result-2")).unwrap();
    let inside = format!("{logical}/bin/tool");
    for arg in [
        logical.as_str(),
        physical.to_str().unwrap(),
        "result",
        "./result-2",
        inside.as_str(),
    ] {
        let got = env.ok(&["store", "path-info", arg]);
        assert_eq!(got.trim(), logical, "argument {arg}");
    }
    fails_naming(&env, &["store", "path-info", "pkg"], "is not a store path");
    fails_naming(
        &env,
        &[
            "store",
            "path-info",
            "/kiln/store/00000000000000000000000000000000-nope",
        ],
        "not a valid path",
    );
    // The path is said once.
    let nope = "/kiln/store/00000000000000000000000000000000-nope";
    let stderr = env.fails(&["store", "path-info", nope], 2);
    assert_eq!(stderr.matches(nope).count(), 1, "{stderr}");
    fails_naming(
        &env,
        &["store", "path-info", "/kiln/store/not-a-hash"],
        "not-a-hash",
    );
    fails_naming(
        &env,
        &["store", "query", "--references", "/kiln/store"],
        "store directory itself",
    );
}

#[test]
fn dump_matches_nix_nars_and_restore_round_trips() {
    let env = TestEnv::new();
    let trees = unpack_trees(&env);
    let hashes = fs::read_to_string(vectors().join("nar/nar-hashes.tsv")).unwrap();
    for row in hashes.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (name, base32, sri, hex) = (cols[0], cols[2], cols[3], cols[4]);
        let tree = trees.join(name);
        let tree_arg = tree.to_str().unwrap();
        let expected_nar = fs::read(vectors().join(format!("nar/{name}.nar"))).unwrap();

        // A plain file system path…
        let out = env
            .kiln()
            .args(["store", "dump", tree_arg])
            .output()
            .unwrap();
        assert!(out.status.success(), "dump {name}");
        assert_eq!(out.stdout, expected_nar, "NAR of {name}");
        // …and the same tree as a store path.
        let path = env.ok(&["store", "add", tree_arg]).trim().to_string();
        let out = env.kiln().args(["store", "dump", &path]).output().unwrap();
        assert_eq!(out.stdout, expected_nar, "NAR of store path {name}");

        assert_eq!(env.ok(&["hash", "path", tree_arg]).trim(), sri, "{name}");
        assert_eq!(
            env.ok(&["hash", "path", "--base32", tree_arg]).trim(),
            base32
        );
        assert_eq!(env.ok(&["hash", "path", "--base16", tree_arg]).trim(), hex);

        // Restore the NAR and dump it again: the same bytes.
        let target = env.work().join(format!("restored-{name}"));
        let mut child = env
            .kiln()
            .args(["store", "restore", target.to_str().unwrap()])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&expected_nar)
            .unwrap();
        assert!(child.wait().unwrap().success(), "restore {name}");
        let out = env
            .kiln()
            .args(["store", "dump", target.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.stdout, expected_nar, "re-dump of {name}");
    }
}

#[test]
fn restore_rejects_bad_input_and_leaves_nothing() {
    let env = TestEnv::new();
    let good = fs::read(vectors().join("nar/nested.nar")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"not a nar at all, definitely not".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
    ];
    for (label, input) in cases {
        let target = env.work().join(label);
        let mut child = env
            .kiln()
            .args(["store", "restore", target.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(&input);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{label}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{label}: {stderr}");
        assert!(
            stderr.contains(label),
            "{label}: error names the target: {stderr}"
        );
        assert!(!target.exists(), "{label}: partial restore left behind");
    }
    env.write("exists/f", "x");
    fails_naming(&env, &["store", "restore", "exists"], "already exists");
}

#[test]
fn query_references_referrers_requisites() {
    let env = TestEnv::new();
    let store = library_store(&env, "/kiln/store");
    let c = store.add_text("c", b"leaf", &BTreeSet::new()).unwrap();
    let b = store
        .add_text("b", b"mid", &BTreeSet::from([c.clone()]))
        .unwrap();
    let a = store
        .add_text("a", b"top", &BTreeSet::from([b.clone(), c.clone()]))
        .unwrap();
    drop(store);
    let p = |s: &StorePath| format!("/kiln/store/{s}");
    let (a, b, c) = (p(&a), p(&b), p(&c));

    // As nix-store prints them: each path after the ones it refers to.
    let refs = env.ok(&["store", "query", "--references", &a]);
    assert_eq!(lines(&refs), vec![c.as_str(), b.as_str()]);
    let referrers = env.ok(&["store", "query", "--referrers", &c]);
    assert_eq!(lines(&referrers), vec![b.as_str(), a.as_str()]);
    // Requisites: dependencies first.
    let reqs = env.ok(&["store", "query", "--requisites", &a]);
    assert_eq!(lines(&reqs), vec![c.as_str(), b.as_str(), a.as_str()]);
    let json: Value =
        serde_json::from_str(&env.ok(&["store", "query", "-R", "--json", &b])).unwrap();
    assert_eq!(json, serde_json::json!([c, b]));

    // Closure size is the sum over the closure.
    let sizes = env.ok(&["store", "path-info", "-s", &a, &b, &c]);
    let total: u64 = sizes
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().trim().parse::<u64>().unwrap())
        .sum();
    let closure = env.ok(&["store", "path-info", "-S", &a]);
    assert_eq!(
        closure.trim().split('\t').nth(1).unwrap(),
        format!("{total:11}"),
        "sizes are printed as Nix prints them (%11d)"
    );
    let recursive = env.ok(&["store", "path-info", "--recursive", &a]);
    assert_eq!(recursive.lines().count(), 3);

    env.fails(&["store", "query", &a], 2); // no query kind
    env.fails(&["store", "query", "--references", "--referrers", &a], 2);
}

#[test]
fn show_derivation_matches_nix() {
    let env = TestEnv::new();
    let store = library_store(&env, "/nix/store");
    let dir = StoreDir::new("/nix/store").unwrap();
    let aterm = fs::read(vectors().join("derivations/simple.drv")).unwrap();
    let drv = Derivation::parse(&dir, &aterm).unwrap();
    let drv_path = store.write_derivation(&drv, "simple").unwrap();
    assert_eq!(
        dir.display(&drv_path),
        "/nix/store/2wwpgwhlrid6ypd4f01r72hdpr4l7qgz-simple.drv"
    );
    // The stored file is the ATerm byte for byte.
    assert_eq!(fs::read(store.real_path(&drv_path)).unwrap(), aterm);
    let outputs = store.derivation_outputs(&drv_path).unwrap();
    assert_eq!(
        dir.display(&outputs["out"]),
        "/nix/store/nj83liashqlzmxjq8lyfxrx21whvgpqj-simple"
    );
    drop(store);

    let shown = env.ok(&[
        "--store-dir",
        "/nix/store",
        "store",
        "show-derivation",
        "/nix/store/2wwpgwhlrid6ypd4f01r72hdpr4l7qgz-simple.drv",
    ]);
    let got: Value = serde_json::from_str(&shown).unwrap();
    let expected: Value = serde_json::from_str(
        &fs::read_to_string(vectors().join("derivations/simple.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(got, expected);

    // A valid path that is not a derivation.
    env.write("plain", "x");
    let plain = env.ok(&["--store-dir", "/nix/store", "store", "add", "plain"]);
    fails_naming(
        &env,
        &[
            "--store-dir",
            "/nix/store",
            "store",
            "show-derivation",
            plain.trim(),
        ],
        "not a derivation",
    );
}

/// The closure vectors: busybox added as a source, two `.drv` files written
/// over it; paths, references, requisites (in Nix's order) and the NAR hash
/// must be Nix's. Needs the same static busybox the vectors were made with.
#[test]
fn closure_vectors_match_nix() {
    let busybox = Path::new("/bin/busybox");
    let closures = vectors().join("closures");
    let env = TestEnv::new();
    let bin = env.work().join("busybox/bin");
    fs::create_dir_all(&bin).unwrap();
    if fs::copy(busybox, bin.join("busybox")).is_err() {
        eprintln!("skipped: /bin/busybox is missing");
        return;
    }
    let nix = |args: &[&str]| {
        let mut all = vec!["--store-dir", "/nix/store"];
        all.extend_from_slice(args);
        env.ok(&all)
    };
    let added = nix(&["store", "add", env.work().join("busybox").to_str().unwrap()]);
    let expected_busybox = "/nix/store/71fc7s32zl20dc955bhghy5dvalm7ndz-busybox";
    if added.trim() != expected_busybox {
        eprintln!("skipped: /bin/busybox is not the binary the closure vectors were made with");
        return;
    }
    let store = library_store(&env, "/nix/store");
    let dir = StoreDir::new("/nix/store").unwrap();
    for name in ["closure-b", "closure-a"] {
        let aterm = fs::read(closures.join(format!("{name}.drv"))).unwrap();
        let drv = Derivation::parse(&dir, &aterm).unwrap();
        store.write_derivation(&drv, name).unwrap();
    }
    drop(store);
    let a_drv = "/nix/store/alqiad713jc6llwjw17gld3giibgpnai-closure-a.drv";
    let read = |file: &str| fs::read_to_string(closures.join(file)).unwrap();
    assert_eq!(
        nix(&["store", "query", "--references", a_drv]),
        read("references-a.drv.txt")
    );
    assert_eq!(
        nix(&["store", "query", "--requisites", a_drv]),
        read("qR-a.drv.txt")
    );
    assert_eq!(
        nix(&[
            "store",
            "query",
            "--requisites",
            "/nix/store/msam369z6dhm3zg3a18i95y2p01c834y-closure-b.drv"
        ]),
        read("qR-b.drv.txt")
    );

    // NAR hashes and sizes as `nix-store -q --hash --size` gave them.
    for row in read("path-info.tsv").lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (label, path, nar_hash, nar_size) = (cols[0], cols[1], cols[2], cols[3]);
        if !["busybox", "a.drv", "b.drv"].contains(&label) {
            continue; // built outputs: the builder's tests
        }
        let json: Value =
            serde_json::from_str(&nix(&["store", "path-info", "--json", path])).unwrap();
        let sri = nix(&["hash", "convert", "--to", "sri", nar_hash]);
        assert_eq!(json[0]["narHash"], sri.trim(), "{label}");
        assert_eq!(json[0]["narSize"].to_string(), nar_size, "{label}");
    }
}

#[test]
fn hash_file_and_convert() {
    let env = TestEnv::new();
    let fixed = vectors().join("store-paths-inputs/fixed.txt");
    let fixed = fixed.to_str().unwrap();
    // From store-paths.tsv: the flat hashes of fixed.txt.
    assert_eq!(
        env.ok(&["hash", "file", "--base16", fixed]).trim(),
        "0c3071418e6356e614898c84ed064ca95e88551bc0811b534bdf1952ecdae534"
    );
    assert_eq!(
        env.ok(&["hash", "file", "--type", "sha1", "--base16", fixed])
            .trim(),
        "c06798cf02af363e9b65e98484ed4156b85fd5fc"
    );
    assert_eq!(
        env.ok(&["hash", "path", "--type", "md5", "--base16", fixed])
            .trim(),
        "873af0db21df5463e915efdde79ce79a"
    );
    let sri = env.ok(&["hash", "file", fixed]).trim().to_string();
    assert!(sri.starts_with("sha256-"), "{sri}");

    // Conversions against nixbase32.tsv rows, both ways.
    let table = fs::read_to_string(vectors().join("nixbase32.tsv")).unwrap();
    for row in table.lines().skip(1).step_by(37) {
        let (hex, nix32) = row.split_once('\t').unwrap();
        let algo = match hex.len() {
            32 => "md5",
            40 => "sha1",
            64 => "sha256",
            _ => "sha512",
        };
        let typed = format!("{algo}:{hex}");
        assert_eq!(
            env.ok(&["hash", "convert", "--to", "base32", &typed])
                .trim(),
            nix32
        );
        let back = env.ok(&["hash", "convert", "--type", algo, "--to", "base16", nix32]);
        assert_eq!(back.trim(), hex);
        let sri = env.ok(&["hash", "convert", "--to", "sri", &typed]);
        let again = env.ok(&["hash", "convert", "--to", "base16", sri.trim()]);
        assert_eq!(again.trim(), hex);
    }

    fails_naming(&env, &["hash", "convert", "--to", "sri", "abcd"], "abcd");
    fails_naming(
        &env,
        &[
            "hash",
            "convert",
            "--to",
            "sri",
            "e65b7dcbd12458fbdc84b123ddad9b8ba06e2f96",
        ],
        "algorithm",
    );
    fails_naming(&env, &["hash", "path", "--type", "crc32", fixed], "crc32");
    fails_naming(&env, &["hash", "file", "no-such-file"], "no-such-file");
    env.write("d/x", "x");
    fails_naming(&env, &["hash", "file", "d"], "is a directory");
    env.fails(&["hash", "path", "--base16", "--base32", fixed], 2);
}

/// SIGKILL `kiln store add` of a large tree at several moments. After each
/// kill the path is either not registered or registered with exactly the
/// right contents; leftovers never block the retry, which succeeds and
/// cleans them up.
#[test]
fn killed_add_never_registers_partial_contents() {
    use std::time::Instant;

    let env = TestEnv::new();
    let tree = env.work().join("big");
    write_big_tree(&tree, 128, 1 << 20);
    let tree_arg = tree.to_str().unwrap().to_string();

    // One uninterrupted run on a separate root gives the expected path and
    // how long an add takes here.
    let reference_root = env.dir.path().join("reference-root");
    let start = Instant::now();
    let out = env
        .kiln()
        .env("KILN_ROOT", &reference_root)
        .args(["store", "add", &tree_arg])
        .output()
        .unwrap();
    let full = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let expected_hash = env.ok(&["hash", "path", &tree_arg]).trim().to_string();
    eprintln!("uninterrupted add: {full:?}");

    let mut outcomes = Vec::new();
    // Early, middle, and densely late: the sync/rename/commit phase is at
    // the end, and a retry usually runs a little faster than the first run.
    for (i, fraction) in [0.05, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
        .into_iter()
        .enumerate()
    {
        let root = env.dir.path().join(format!("crash-root-{i}"));
        let mut child = env
            .kiln()
            .env("KILN_ROOT", &root)
            .args(["store", "add", &tree_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let killed = !status.success();

        let run = |args: &[&str]| {
            env.kiln()
                .env("KILN_ROOT", &root)
                .args(args)
                .output()
                .unwrap()
        };
        // Either not registered, or registered with the right contents.
        let info = run(&["store", "path-info", "--json", &expected_path]);
        let registered = info.status.success();
        if registered {
            let json: Value = serde_json::from_slice(&info.stdout).unwrap();
            assert_eq!(json[0]["narHash"], expected_hash.as_str());
            let physical = root.join(expected_path.trim_start_matches('/'));
            let on_disk = run(&["hash", "path", physical.to_str().unwrap()]);
            assert_eq!(
                String::from_utf8_lossy(&on_disk.stdout).trim(),
                expected_hash
            );
        } else {
            assert_eq!(
                info.status.code(),
                Some(2),
                "only 'not valid' is acceptable"
            );
        }
        let leftovers = temp_dirs(&root);
        // Killed after the rename but before the commit: files in place,
        // not registered (the retry must replace them).
        let unregistered_target =
            !registered && root.join(expected_path.trim_start_matches('/')).exists();

        // The retry succeeds, gives the same path, and cleans up.
        let retry = run(&["store", "add", &tree_arg]);
        assert!(
            retry.status.success(),
            "{}",
            String::from_utf8_lossy(&retry.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&retry.stdout).trim(), expected_path);
        let physical = root.join(expected_path.trim_start_matches('/'));
        let on_disk = run(&["hash", "path", physical.to_str().unwrap()]);
        assert_eq!(
            String::from_utf8_lossy(&on_disk.stdout).trim(),
            expected_hash
        );
        assert_eq!(temp_dirs(&root), 0, "temp dirs left after the retry");
        outcomes.push((fraction, killed, registered, leftovers, unregistered_target));
        // Free the disk space early.
        let _ = make_writable_and_remove(&root);
    }
    eprintln!("(fraction, killed, registered, temp dirs left, unregistered target) = {outcomes:?}");
    // The test must have interrupted real work (a copy in progress), not
    // only processes that had not started or had already finished.
    assert!(
        outcomes
            .iter()
            .any(|(_, killed, _, leftovers, _)| *killed && *leftovers > 0),
        "no kill landed during the copy: {outcomes:?}"
    );
}

/// `count` files of `size` bytes in nested directories, deterministic and
/// distinct (so nothing is trivially compressible or deduplicated).
fn write_big_tree(root: &Path, count: usize, size: usize) {
    let mut block = Prng::new(0).bytes(size);
    for i in 0..count {
        let dir = root.join(format!("d{:02}", i % 16));
        fs::create_dir_all(&dir).unwrap();
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        fs::write(dir.join(format!("f{i:04}")), &block).unwrap();
    }
}

fn temp_dirs(root: &Path) -> usize {
    let store = root.join("kiln/store");
    fs::read_dir(store)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                .count()
        })
        .unwrap_or(0)
}

/// Store paths are read-only; make them writable so they can be deleted
/// (needed when the tests do not run as root).
fn make_writable_and_remove(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walk(path) {
        if entry.is_dir() && !entry.is_symlink() {
            let _ = fs::set_permissions(&entry, fs::Permissions::from_mode(0o755));
        }
    }
    fs::remove_dir_all(path)
}

fn walk(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    if path.is_dir()
        && !path.is_symlink()
        && let Ok(entries) = fs::read_dir(path)
    {
        for entry in entries.flatten() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

/// Regression (found while testing the builder as `nobody`): adding a
/// directory as a user other than root failed with EACCES, because the
/// canonical 0555 directory was renamed into the store, and moving a
/// directory to a new parent needs write permission on it. Run as an
/// unprivileged user: directly when the tests are not root, through
/// `setpriv` when they are.
#[test]
fn non_root_user_adds_a_directory() {
    let env = TestEnv::new();
    let tree = env.work().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/file"), "contents\n").unwrap();

    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if is_root {
        let Some(setpriv) = crate::kit::which("setpriv") else {
            eprintln!("skipped: running as root without setpriv to drop privileges");
            return;
        };
        // The whole test directory becomes nobody's, as a user's own root is.
        let status = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(env.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let mut cmd = std::process::Command::new(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_kiln"));
        cmd
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
    };
    for var in crate::kit::KILN_ENV_VARS {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("HOME", env.home())
        .args(["--root"])
        .arg(env.root())
        .args(["store", "add"])
        .arg(&tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "non-root add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap();
    let physical = env.root().join(path.trim().trim_start_matches('/'));
    let mode = fs::metadata(&physical).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o7777, 0o555, "canonical directory mode");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(&physical).unwrap().mtime(),
        1,
        "canonical mtime"
    );
    assert_eq!(
        fs::read_to_string(physical.join("sub/file")).unwrap(),
        "contents\n"
    );
}
