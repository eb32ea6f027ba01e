//! Building a derivation: the result link, the log, building from a file,
//! out links of several outputs, and what a failure says.

use std::path::{Path, PathBuf};

use crate::kit::{DrvKit, STORE_DIR, Spec, read};

#[test]
fn builds_a_derivation_links_result_and_keeps_its_log() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "hello",
        "echo building hello; mkdir $out; echo hello > $out/greeting",
    ));
    let printed = kit.build_ok(&drv);
    let out = kit.out(&drv, "out");
    assert_eq!(printed.trim(), kit.path(&out));
    assert_eq!(read(&kit.real(&drv).join("greeting")), "hello\n");

    // Canonical: read-only, mtime 1.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(kit.real(&drv).join("greeting")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o444);
    assert_eq!(meta.mtime(), 1);

    // Registered with the derivation as deriver.
    let info = kit.reopen().path_info(&out).unwrap().unwrap();
    assert_eq!(info.deriver.as_ref(), Some(&drv));

    // `result` link and its GC root.
    kit.env.ok(&["build", &kit.path(&drv)]);
    let link = kit.env.work().join("result");
    assert_eq!(std::fs::read_link(&link).unwrap(), kit.real(&drv));
    let roots: Vec<PathBuf> = std::fs::read_dir(kit.env.root().join("kiln/var/kiln/gcroots/auto"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(roots, vec![link]);

    // The log, by derivation and by output.
    let log = kit.env.ok(&["log", &kit.path(&drv)]);
    assert_eq!(log, "building hello\n");
    assert_eq!(kit.env.ok(&["log", &kit.path(&out)]), log);
}

#[test]
fn a_failed_build_reports_status_log_tail_and_how_to_see_more() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "broken",
        "i=1; while [ $i -le 40 ]; do echo line $i; i=$((i+1)); done; echo > /build/marker; exit 3",
    ));
    let stderr = kit.build_fails_with(&drv, &["--keep-failed"], 100);
    assert!(stderr.contains("exited with status 3"), "{stderr}");
    assert!(
        stderr.contains("> line 40") && stderr.contains("> line 16"),
        "{stderr}"
    );
    assert!(!stderr.contains("> line 15\n"), "{stderr}");
    assert!(
        stderr.contains(&format!("kiln log {}", kit.path(&drv))),
        "{stderr}"
    );
    // --keep-failed names the directory, which holds /build.
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("the build directory is kept at "))
        .unwrap_or_else(|| panic!("no kept dir in:\n{stderr}"));
    assert!(Path::new(kept).join("build/marker").exists());
    // The whole log is there.
    let log = kit.env.ok(&["log", &kit.path(&drv)]);
    assert_eq!(log.lines().count(), 40);
}

#[test]
fn missing_bwrap_is_an_error_that_says_what_to_install() {
    let mut kit = DrvKit::new();
    let drv = kit.write(Spec::new("nobwrap", "echo > $out"));
    let out = kit
        .env
        .kiln()
        .env("PATH", kit.env.work().join("empty-path"))
        .args(["build", &kit.path(&drv), "--no-out-link"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("apt-get install bubblewrap"), "{stderr}");
    assert!(!kit.reopen().is_valid(&kit.out(&drv, "out")).unwrap());
}

#[test]
fn builds_from_a_file_and_rejects_what_is_not_a_derivation() {
    let Some(kit) = DrvKit::sandboxed() else {
        return;
    };
    // DrvKit::new left a busybox directory in work/.
    kit.env.write(
        "default.nix",
        r#"let
  bb = builtins.path { path = ./busybox; name = "busybox"; };
  mk = name: script: deps: derivation {
    inherit name deps;
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" script ];
  };
in rec {
  a = mk "a" "echo a > $out" [ ];
  b = mk "b" "cat $deps > $out; echo b >> $out" [ a ];
}
"#,
    );
    let printed = kit.env.ok(&["build", "-A", "b", "--print-out-paths"]);
    assert!(printed.trim().starts_with(STORE_DIR) && printed.trim().ends_with("-b"));
    assert_eq!(read(&kit.env.work().join("result")), "a\nb\n");

    let stderr = kit.env.fails(&["build", "-E", "1 + 1"], 2);
    assert!(stderr.contains("derivation"), "{stderr}");
    let stderr = kit.env.fails(&["build", &kit.path(&kit.busybox)], 2);
    assert!(stderr.contains("is not a derivation"), "{stderr}");
    let missing = format!("{STORE_DIR}/{}-gone.drv", "0".repeat(32));
    let stderr = kit.env.fails(&["build", &missing], 2);
    assert!(stderr.contains("is not a valid path"), "{stderr}");
}

#[test]
fn out_links_name_every_output_of_every_target() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let one = kit.write(Spec {
        outputs: &["out", "dev"],
        ..Spec::new("one", "echo out > $out; echo dev > $dev")
    });
    let two = kit.write(Spec::new("two", "echo two > $out"));
    kit.env.ok(&[
        "build",
        &kit.path(&one),
        &kit.path(&two),
        "-o",
        "res",
        "--cores",
        "3",
    ]);
    let work = kit.env.work();
    assert_eq!(read(&work.join("res")), "out\n");
    assert_eq!(read(&work.join("res-dev")), "dev\n");
    assert_eq!(read(&work.join("res-2")), "two\n");
    let roots = std::fs::read_dir(kit.env.root().join("kiln/var/kiln/gcroots/auto"))
        .unwrap()
        .count();
    assert_eq!(roots, 3);
    // A regular file in the way is not replaced.
    std::fs::write(work.join("taken"), "mine").unwrap();
    kit.env.fails(&["build", &kit.path(&two), "-o", "taken"], 2);
    assert_eq!(read(&work.join("taken")), "mine");
}

#[test]
fn build_prints_the_output_paths_and_dry_run_builds_nothing() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec {
        outputs: &["out", "doc"],
        ..Spec::new("two", "echo a > $out; echo b > $doc")
    });
    let expected = format!(
        "{}\n{}\n",
        kit.path(&kit.out(&drv, "doc")),
        kit.path(&kit.out(&drv, "out"))
    );
    // --dry-run lists the derivation and builds nothing.
    let out = kit.build(&drv, &["--dry-run"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("this derivation would be built:"),
        "{stderr}"
    );
    assert!(stderr.contains(&kit.path(&drv)), "{stderr}");
    assert!(!kit.reopen().is_valid(&kit.out(&drv, "out")).unwrap());
    // Without --print-out-paths, as nix-build: one path per line.
    let out = kit.build(&drv, &[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    // Already valid: printed again, and the alias gives the same.
    assert_eq!(kit.build_ok(&drv), expected);
}
