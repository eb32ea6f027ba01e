//! `kiln store optimise`: duplicates become one inode, readers never see a
//! short file, a collection afterwards keeps the other copy, and a kill
//! at any moment leaves every path's contents intact.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::kit::TestEnv;

fn real(env: &TestEnv, printed: &str) -> PathBuf {
    env.root().join(printed.trim().trim_start_matches('/'))
}

/// `count` source paths, each with `files` files of 8 KiB (the same in
/// every path) and one file of its own.
fn duplicated_paths(env: &TestEnv, count: usize, files: usize) -> Vec<String> {
    (0..count)
        .map(|p| {
            let dir = env.work().join(format!("src-{p}"));
            for f in 0..files {
                let sub = dir.join(format!("d{}", f % 8));
                std::fs::create_dir_all(&sub).unwrap();
                std::fs::write(sub.join(format!("f{f}")), content(f)).unwrap();
            }
            std::fs::write(dir.join("own"), format!("path {p}\n")).unwrap();
            env.ok(&["store", "add", dir.to_str().unwrap()])
                .trim()
                .to_string()
        })
        .collect()
}

fn content(f: usize) -> Vec<u8> {
    format!("file {f}\n").into_bytes().repeat(8192)[..8192].to_vec()
}

/// The NAR hash of a store path's files as they are on disk.
fn nar_hash(env: &TestEnv, printed: &str) -> String {
    env.ok(&["hash", "path", real(env, printed).to_str().unwrap()])
}

fn json(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&env.ok(args)).unwrap()
}

#[test]
fn optimise_links_identical_files_and_gc_keeps_the_other_copy() {
    let env = TestEnv::new();
    let paths = duplicated_paths(&env, 2, 4);
    let (a, b) = (&paths[0], &paths[1]);
    let file = |p: &str| real(&env, p).join("d1/f1");
    let hash_before = nar_hash(&env, b);
    assert_ne!(
        std::fs::metadata(file(a)).unwrap().ino(),
        std::fs::metadata(file(b)).unwrap().ino()
    );

    let dry = json(&env, &["store", "optimise", "--dry-run", "--json"]);
    assert_eq!(dry["filesLinked"], 4);
    assert_eq!(dry["bytesSaved"], 4 * 8192);
    let out = env.run(&["store", "optimise"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "0.03 MiB freed by hard-linking 4 files\n"
    );
    assert_eq!(
        std::fs::metadata(file(a)).unwrap().ino(),
        std::fs::metadata(file(b)).unwrap().ino()
    );
    assert_eq!(nar_hash(&env, b), hash_before);
    env.assert_store_consistent();
    assert_eq!(
        json(&env, &["store", "optimise", "--json"])["filesLinked"],
        0
    );

    // Delete one: the other is intact, and its own file's .links entry
    // (one link left) goes.
    let links = env.root().join("kiln/store/.links");
    let count = || std::fs::read_dir(&links).unwrap().count();
    assert_eq!(count(), 6);
    env.ok(&["store", "delete", a]);
    assert_eq!(count(), 5);
    assert_eq!(std::fs::read(file(b)).unwrap(), content(1));
    assert_eq!(nar_hash(&env, b), hash_before);
    env.assert_store_consistent();
    env.ok(&["store", "delete", b]);
    assert_eq!(count(), 0);
}

#[test]
fn a_reader_in_a_loop_never_sees_a_short_file() {
    let env = TestEnv::new();
    let paths = duplicated_paths(&env, 12, 64);
    let targets: Vec<(PathBuf, Vec<u8>)> = paths
        .iter()
        .skip(1)
        .flat_map(|p| (0..8).map(move |f| (p.clone(), f)))
        .map(|(p, f)| (real(&env, &p).join(format!("d{}/f{f}", f % 8)), content(f)))
        .collect();
    let done = AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                for (path, want) in &targets {
                    let got = std::fs::read(path).unwrap();
                    assert!(got == *want, "{} read {} bytes", path.display(), got.len());
                    reads += 1;
                }
            }
            reads
        });
        let report = json(&env, &["store", "optimise", "--json"]);
        done.store(true, Ordering::Relaxed);
        assert_eq!(report["filesLinked"], 11 * 64);
        reader.join().unwrap()
    });
    assert!(reads > 0);
    env.assert_store_consistent();
}

/// The directory an interrupted run was working in, if it left one.
fn pending(env: &TestEnv) -> Option<String> {
    let note = env.root().join("kiln/var/kiln/optimise.pending");
    std::fs::read_to_string(note)
        .ok()
        .and_then(|n| n.lines().next().map(str::to_string))
}

#[test]
fn sigkill_during_optimise_never_damages_contents_and_the_next_run_finishes() {
    let env = TestEnv::new();
    let paths = duplicated_paths(&env, 16, 200);
    let hashes: Vec<String> = paths.iter().map(|p| nar_hash(&env, p)).collect();
    let mut kills = 0;
    for delay_ms in [5u64, 20, 40, 80, 150, 250, 400] {
        let mut child = env
            .kiln()
            .args(["store", "optimise"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        if !finished {
            kills += 1;
        }
        // Contents are never damaged; at most the one directory named in
        // the pending note is left writable.
        let out = env.run(&["store", "verify", "--check-contents", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for problem in report["problems"].as_array().unwrap() {
            assert_eq!(problem["problem"], "non-canonical", "{problem}");
            let dir = pending(&env).expect("a non-canonical directory without a pending note");
            assert!(
                Path::new(&dir).starts_with(real(&env, problem["path"].as_str().unwrap())),
                "{problem} but {dir} was pending"
            );
        }
        assert_eq!(report["strays"], serde_json::json!([]));
        // Undo some links so later rounds have work to do again.
        if delay_ms == 150 {
            for p in &paths[8..] {
                env.ok(&["store", "delete", p]);
            }
            for p in duplicated_paths(&env, 16, 200).iter().skip(8) {
                assert!(paths.contains(p));
            }
        }
    }
    assert!(kills >= 3, "only {kills} kills landed during an optimise");
    env.ok(&["store", "optimise"]);
    assert_eq!(pending(&env), None);
    env.assert_store_consistent();
    for (p, hash) in paths.iter().zip(&hashes) {
        assert_eq!(&nar_hash(&env, p), hash);
    }
}
