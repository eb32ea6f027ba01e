//! The garbage collector: every kind of root, `delete`'s refusal, builds
//! running while `kiln store gc` loops, and SIGKILL during a collection.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kiln_store::nar::hash_regular_bytes;
use kiln_store::store::{Locking, NewPath, Staged, Store, StoreConfig, ValidPathInfo};
use kiln_store::{Hash, HashAlgo, StoreDir, StorePath};

use crate::kit::{DrvKit, Spec, TestEnv, read};

fn open(env: &TestEnv) -> Store {
    Store::open(StoreConfig {
        root: env.root(),
        store_dir: StoreDir::new("/kiln/store").unwrap(),
    })
    .unwrap()
}

/// `count` small valid paths in one batch, each referring to the one
/// before; the store handle is dropped, so nothing holds them.
fn junk(env: &TestEnv, tag: &str, count: usize) -> Vec<StorePath> {
    let store = open(env);
    let mut batch = Vec::new();
    let mut paths: Vec<StorePath> = Vec::new();
    for i in 0..count {
        let digest = Hash::digest(HashAlgo::Sha1, format!("{tag}-{i}").as_bytes());
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&digest.as_bytes()[..20]);
        let path = StorePath::from_parts(&bytes, &format!("{tag}-{i}")).unwrap();
        let contents = format!("junk {i}\n").into_bytes();
        let (nar_hash, nar_size) = hash_regular_bytes(&contents);
        batch.push(NewPath {
            info: ValidPathInfo {
                path: path.clone(),
                nar_hash,
                nar_size,
                deriver: None,
                references: paths.last().into_iter().cloned().collect(),
                registration_time: 1,
                ca: None,
                signatures: Vec::new(),
            },
            content: Staged::File(contents),
        });
        paths.push(path);
    }
    store.install(batch, Locking::Take).unwrap();
    paths
}

fn valid(env: &TestEnv, path: &StorePath) -> bool {
    open(env).is_valid(path).unwrap()
}

#[test]
fn result_links_and_added_roots_hold_until_removed() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new("held", "echo held > $out"));
    let drv_path = kit.path(&drv);
    std::fs::create_dir_all(kit.env.work().join("sub")).unwrap();
    kit.env.ok(&["build", &drv_path, "-o", "sub/result"]);
    let out = kit.out(&drv, "out");
    let added = kit.env.write("extra", "x");
    let added = kit.env.ok(&["store", "add", added.to_str().unwrap()]);
    let added = added.trim();
    kit.env.ok(&["store", "add-root", added, "keep"]);
    let shell = kit.env.ok(&[
        "store",
        "add",
        kit.env.write("shell", "s").to_str().unwrap(),
    ]);
    let shells = kit.env.root().join("kiln/var/kiln/gcroots/shells");
    std::fs::create_dir_all(&shells).unwrap();
    std::os::unix::fs::symlink(shell.trim(), shells.join("project")).unwrap();
    let garbage = junk(&kit.env, "garbage", 3);

    let roots = kit.env.ok(&["store", "roots", "--json"]);
    let roots: serde_json::Value = serde_json::from_str(&roots).unwrap();
    let kind_of = |path: &str| -> Vec<String> {
        roots
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == path)
            .map(|r| r["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kind_of(&kit.path(&out)), ["indirect"], "{roots:#}");
    assert_eq!(kind_of(added), ["indirect"]);
    assert_eq!(kind_of(shell.trim()), ["shell"]);

    let deleted = kit.env.ok(&["store", "gc"]);
    for path in &garbage {
        assert!(deleted.contains(path.base_name()), "{deleted}");
        assert!(!valid(&kit.env, path));
    }
    for held in [
        kit.path(&out).as_str(),
        added,
        shell.trim(),
        drv_path.as_str(),
    ] {
        assert!(!deleted.contains(held), "{held} was deleted:\n{deleted}");
    }
    assert_eq!(read(&kit.env.work().join("sub/result")), "held\n");

    // A live path is refused, with the link that holds it.
    let err = kit.env.fails(&["store", "delete", &kit.path(&out)], 1);
    assert!(err.contains("alive") && err.contains("sub/result"), "{err}");
    assert!(valid(&kit.env, &out));

    // Removing the links releases what they held. (The test's own store
    // handle holds the .drv as a temp root, and keep-outputs would keep
    // the output of an alive .drv: off here.)
    std::fs::remove_file(kit.env.work().join("sub/result")).unwrap();
    std::fs::remove_file(kit.env.work().join("keep")).unwrap();
    let deleted = kit.env.ok(&["store", "gc", "--keep-outputs", "false"]);
    assert!(deleted.contains(out.base_name()), "{deleted}");
    assert!(!deleted.contains(shell.trim()));
    assert!(
        !deleted.contains(&drv_path),
        "the .drv is a temp root of this test"
    );
    assert!(deleted.contains(added), "{deleted}");
    kit.assert_store_consistent();
}

#[test]
fn a_running_build_holds_temp_roots_on_its_output_and_inputs() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let dep = kit.write(Spec::new("tr-dep", "echo dep > $out"));
    kit.build_ok(&dep);
    let dep_out = kit.path(&kit.out(&dep, "out"));
    let env = [("dep", dep_out.as_str())];
    let top = kit.write(Spec {
        env: &env,
        inputs: &[&dep],
        ..Spec::new("tr-top", "sleep 3.17; cat $dep > $out")
    });
    let mut child = kit
        .env
        .kiln()
        .args(["build", &kit.path(&top), "--no-out-link"])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !crate::kit::command_running("sleep 3.17") {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let roots = kit.env.ok(&["store", "roots"]);
    let top_out = kit.path(&kit.out(&top, "out"));
    assert!(
        roots
            .lines()
            .any(|l| l.contains(&top_out) && l.contains("(temp)") && l.contains("process")),
        "{roots}"
    );
    // The input has no root but the build: it must survive a collection.
    let deleted = kit.env.ok(&["store", "gc", "--keep-outputs", "false"]);
    assert!(!deleted.contains(&dep_out), "{deleted}");
    assert!(child.wait().unwrap().success());
    assert_eq!(read(&kit.real(&top)), "dep\n");
}

#[test]
fn builds_succeed_while_gc_runs_in_a_loop() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    const PAIRS: usize = 6;
    let mut tops = Vec::new();
    for i in 0..PAIRS {
        // `dep` is needed only while `top` builds: `top` copies it, so
        // once `top` is built nothing keeps `dep` (with keep-outputs off).
        let dep = kit.write(Spec::new(
            &format!("loop-dep-{i}"),
            &format!("sleep 0.{i}; echo dep-{i} > $out"),
        ));
        let dep_out = kit.path(&kit.out(&dep, "out"));
        let env = [("dep", dep_out.as_str())];
        let top = kit.write(Spec {
            env: &env,
            inputs: &[&dep],
            ..Spec::new(
                &format!("loop-top-{i}"),
                "sleep 0.3; cat $dep > $out; cat $dep >> $out",
            )
        });
        tops.push((dep, top));
    }
    let stop = AtomicBool::new(false);
    let collections = AtomicUsize::new(0);
    let env = &kit.env;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                junk(env, &format!("loop-junk-{n}"), 20);
                n += 1;
                env.ok(&[
                    "store",
                    "gc",
                    "--keep-outputs",
                    "false",
                    "--keep-derivations",
                    "false",
                ]);
                collections.fetch_add(1, Ordering::Relaxed);
            }
        });
        let builds: Vec<_> = tops
            .iter()
            .enumerate()
            .map(|(i, (_, top))| {
                let top = kit.path(top);
                let link = format!("result-{i}");
                scope.spawn(move || env.run(&["build", &top, "-o", &link]))
            })
            .collect();
        for build in builds {
            let out = build.join().unwrap();
            assert!(
                out.status.success(),
                "a build failed beside the GC loop:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Let the loop run once more over the finished results.
        let seen = collections.load(Ordering::Relaxed);
        while collections.load(Ordering::Relaxed) < seen + 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(collections.load(Ordering::Relaxed) >= 2);
    for (i, (dep, top)) in tops.iter().enumerate() {
        let link = kit.env.work().join(format!("result-{i}"));
        assert_eq!(read(&link), format!("dep-{i}\ndep-{i}\n"));
        assert!(valid(&kit.env, &kit.out(top, "out")));
        assert!(
            !valid(&kit.env, &kit.out(dep, "out")),
            "the loop collected nothing: dep-{i} is still valid"
        );
    }
    kit.assert_store_consistent();
}

/// Every store path name in the store directory, and the trash names.
fn store_entries(dir: &Path) -> (BTreeSet<String>, usize) {
    let mut names = BTreeSet::new();
    let mut trash = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".trash-kiln-") {
            trash += 1;
        } else if !name.starts_with('.') {
            names.insert(name);
        }
    }
    (names, trash)
}

#[test]
fn sigkill_during_gc_leaves_a_consistent_store_that_the_next_gc_finishes() {
    let env = TestEnv::new();
    let live = env.write("live/file", "live\n");
    let live = env.ok(&["store", "add", live.parent().unwrap().to_str().unwrap()]);
    env.ok(&["store", "add-root", live.trim(), "keep"]);
    // A big dead tree (slow to delete) and many small dead paths.
    let big = env.work().join("big");
    for d in 0..40 {
        std::fs::create_dir_all(big.join(format!("d{d}"))).unwrap();
        for f in 0..250 {
            std::fs::write(big.join(format!("d{d}/f{f}")), format!("{d} {f}\n")).unwrap();
        }
    }
    let store_dir = env.root().join("kiln/store");
    let mut kills = 0;
    for (round, delay_ms) in [0u64, 3, 8, 15, 30, 60, 120].into_iter().enumerate() {
        env.ok(&[
            "store",
            "add",
            "--name",
            &format!("big-{round}"),
            big.to_str().unwrap(),
        ]);
        junk(&env, &format!("dead-{round}"), 1500);
        let mut child = env
            .kiln()
            .args(["store", "gc"])
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
        // The database never names a path whose files are gone.
        let store = open(&env);
        let (on_disk, _) = store_entries(&store_dir);
        for path in store.all_valid_paths().unwrap() {
            assert!(
                on_disk.contains(path.base_name()),
                "round {round}: {path} is valid but not on disk"
            );
        }
        drop(store);
        env.assert_store_consistent();
        assert_eq!(read(&env.work().join("keep/file")), "live\n");
    }
    assert!(kills >= 3, "only {kills} kills landed during a collection");
    env.ok(&["store", "gc"]);
    let (left, trash) = store_entries(&store_dir);
    assert_eq!(trash, 0, "the trash was not emptied");
    let live_base = live.trim().rsplit('/').next().unwrap().to_string();
    assert_eq!(left, BTreeSet::from([live_base]));
    env.assert_store_consistent();
}
