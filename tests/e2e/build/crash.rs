//! SIGKILL of `kiln build` at each phase leaves a consistent store.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::kit::{DrvKit, Spec, command_running, process_running, read, require_bwrap};

#[test]
fn sigkill_during_a_build_leaves_a_consistent_store() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "killed",
        "mkdir $out; echo partial > $out/a; sleep 2.71; echo done > $out/b",
    ));
    let mut child = kit
        .env
        .kiln()
        .args(["build", &kit.path(&drv), "--no-out-link"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the builder runs, then kill kiln itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !command_running("sleep 2.71") {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The sandbox died with kiln.
    let deadline = Instant::now() + Duration::from_secs(5);
    while command_running("sleep 2.71") {
        assert!(Instant::now() < deadline, "the builder survived kiln");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!kit.reopen().is_valid(&kit.out(&drv, "out")).unwrap());
    kit.assert_store_consistent();
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv).join("b")), "done\n");
    kit.assert_store_consistent();
}

/// Build a derivation with many output files, and SIGKILL `kiln build`
/// as soon as `phase` is seen: 0 = output processing (the builder is done
/// and an output file is canonical), 1 = registration (the output is in
/// place in the store). Returns how many kills landed before the output
/// became valid; after each, the store must be consistent.
fn kill_in_phase(phase: usize) -> usize {
    let mut kit = DrvKit::new();
    let drv = kit.write(Spec::new(
        "many",
        "mkdir $out; cd $out; seq 0 2999 | awk '{ f = \"f\" $0; print $0 > f; close(f) }'",
    ));
    let drv_path = kit.path(&drv);
    let out = kit.out(&drv, "out");
    let store_dir = kit.env.root().join("kiln/store");
    let real = kit.real(&drv);
    let temp_dirs = || -> BTreeSet<String> {
        std::fs::read_dir(&store_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp-kiln-"))
            .collect()
    };
    // (Only temp dirs of this attempt: a killed attempt's are left behind.)
    let processing = |old: &BTreeSet<String>| {
        std::fs::read_dir(&store_dir).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(".tmp-kiln-")
                && !old.contains(&name)
                && ["f0", "f1500", "f2999"].iter().any(|f| {
                    let file = e.path().join("store").join(out.to_string()).join(f);
                    std::fs::symlink_metadata(file).is_ok_and(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.permissions().mode() & 0o777 == 0o444
                    })
                })
        })
    };
    // A leftover of an earlier kill is replaced: watch for a new inode.
    let inode = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&real).map(|m| m.ino()).ok()
    };

    let mut landed = 0;
    for _ in 0..10 {
        let leftover = inode();
        let old_temp = temp_dirs();
        let reached = || {
            if phase == 0 {
                processing(&old_temp)
            } else {
                inode().is_some_and(|i| Some(i) != leftover)
            }
        };
        let mut child = kit
            .env
            .kiln()
            .args(["build", &drv_path, "--no-out-link"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reached() && child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the build never reached phase {phase}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().ok();
        child.wait().unwrap();
        // Nothing of the build outlives kiln.
        let root = kit.env.root().display().to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_running(&root) {
            assert!(Instant::now() < deadline, "a sandbox survived kiln");
            std::thread::sleep(Duration::from_millis(10));
        }
        kit.assert_store_consistent();
        if kit.reopen().is_valid(&out).unwrap() {
            break; // the kill came after the commit
        }
        landed += 1;
        if landed == 3 {
            break;
        }
    }
    // A rebuild (or nothing to do) succeeds and the files are right.
    kit.build_ok(&drv);
    assert_eq!(read(&real.join("f2999")), "2999\n");
    kit.assert_store_consistent();
    landed
}

#[test]
fn sigkill_during_output_processing_leaves_a_consistent_store() {
    if !require_bwrap() {
        return;
    }
    assert!(
        kill_in_phase(0) > 0,
        "no kill landed during output processing"
    );
}

#[test]
fn sigkill_during_registration_leaves_a_consistent_store() {
    if !require_bwrap() {
        return;
    }
    // The window between the rename into the store and the database commit
    // is a few fsyncs long.
    assert!(
        kill_in_phase(1) > 0,
        "no kill landed between rename and commit"
    );
}
