//! Scheduling a graph: dependency order, `--keep-going`, `--check`, and
//! concurrent `kiln build`s of one graph.

use std::process::Stdio;
use std::time::Duration;

use kiln_store::StorePath;

use crate::kit::{DrvKit, Spec, read};

#[test]
fn dependencies_build_in_order_and_keep_going_continues() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let a = kit.write(Spec::new("a", "echo a > $out"));
    let a_out = kit.path(&kit.out(&a, "out"));
    let b = kit.write(Spec {
        env: &[("a", &a_out)],
        inputs: &[&a],
        ..Spec::new("b", "cat $a > $out; echo b >> $out")
    });
    assert_eq!(kit.build_ok(&b).trim(), kit.path(&kit.out(&b, "out")));
    assert_eq!(read(&kit.real(&b)), "a\nb\n");

    // A failing branch and an independent one under one top derivation.
    let fails = kit.write(Spec::new("fails", "sleep 1; exit 1"));
    let fine = kit.write(Spec::new("fine", "echo fine > $out"));
    let fails_out = kit.path(&kit.out(&fails, "out"));
    let fine_out = kit.path(&kit.out(&fine, "out"));
    let top = kit.write(Spec {
        env: &[("x", &fails_out), ("y", &fine_out)],
        inputs: &[&fails, &fine],
        ..Spec::new("top", "echo > $out")
    });
    let stderr = kit.build_fails_with(&top, &["-j1", "--keep-going"], 100);
    assert!(
        stderr.contains(&format!("its dependency '{}' failed", kit.path(&fails))),
        "{stderr}"
    );
    assert!(kit.reopen().is_valid(&kit.out(&fine, "out")).unwrap());
}

#[test]
fn check_reports_reproducible_or_the_differing_files() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let stable = kit.write(Spec::new("stable", "mkdir $out; echo same > $out/f"));
    kit.build_ok(&stable);
    let out = kit.build(&stable, &["--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("reproducible"), "{stderr}");

    let clock = kit.write(Spec::new(
        "clock",
        "mkdir $out; echo same > $out/f; date +%s > $out/stamp",
    ));
    kit.build_ok(&clock);
    // The clock has a resolution of one second.
    std::thread::sleep(Duration::from_millis(1100));
    let stderr = kit.build_fails_with(&clock, &["--check"], 104);
    assert!(stderr.contains("differs when rebuilt"), "{stderr}");
    assert!(
        stderr.contains("stamp") && stderr.contains("bytes, sha256-"),
        "{stderr}"
    );
    assert!(!stderr.contains("  f\n"), "{stderr}");
}

#[test]
fn concurrent_builds_of_one_graph_build_each_derivation_once() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let mut leaves = Vec::new();
    for name in ["leaf-a", "leaf-b", "leaf-c"] {
        leaves.push(kit.write(Spec::new(name, "echo start; sleep 0.5; echo $name > $out")));
    }
    let outs: Vec<String> = leaves
        .iter()
        .map(|l| kit.path(&kit.out(l, "out")))
        .collect();
    let refs: Vec<&StorePath> = leaves.iter().collect();
    let top = kit.write(Spec {
        env: &[("a", &outs[0]), ("b", &outs[1]), ("c", &outs[2])],
        inputs: &refs,
        ..Spec::new("top", "cat $a $b $c > $out")
    });
    let spawn = || {
        kit.env
            .kiln()
            .args(["build", &kit.path(&top), "--no-out-link", "-j", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let mut stderr = String::new();
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{text}");
        stderr += &text;
    }
    for drv in leaves.iter().chain([&top]) {
        let building = format!("building '{}'", kit.path(drv));
        assert_eq!(
            stderr.matches(&building).count(),
            1,
            "{building}:\n{stderr}"
        );
    }
    assert_eq!(read(&kit.real(&top)), "leaf-a\nleaf-b\nleaf-c\n");
}
