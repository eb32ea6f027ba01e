//! `kiln build` and `kiln log` end to end: derivations are written with the
//! store API (a static busybox added as a source path is the only tool),
//! then built by the binary in a bwrap sandbox.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kiln_store::derivation::{
    Derivation, DerivationError, DerivationOutput, DrvHash, FixedOutputHash,
};
use kiln_store::store::{Store, StoreConfig};
use kiln_store::{FileIngestionMethod, Hash, HashAlgo, StoreDir, StorePath};

use crate::harness::{TestEnv, require_bwrap};

const STORE_DIR: &str = "/kiln/store";

/// A test root with busybox in its store, and derivations written so far.
struct Kit {
    env: TestEnv,
    store: Store,
    busybox: StorePath,
    drvs: HashMap<StorePath, Derivation>,
}

/// How to write one derivation.
struct Spec<'a> {
    name: &'a str,
    script: &'a str,
    env: &'a [(&'a str, &'a str)],
    /// Input derivations whose `out` is used.
    inputs: &'a [&'a StorePath],
    outputs: &'a [&'a str],
    /// A fixed output: (method, sha256 hash).
    fixed: Option<(FileIngestionMethod, Hash)>,
}

impl<'a> Spec<'a> {
    fn new(name: &'a str, script: &'a str) -> Spec<'a> {
        Spec {
            name,
            script,
            env: &[],
            inputs: &[],
            outputs: &["out"],
            fixed: None,
        }
    }
}

impl Kit {
    fn new() -> Kit {
        let env = TestEnv::new();
        let store = Store::open(StoreConfig {
            root: env.root(),
            store_dir: StoreDir::new(STORE_DIR).unwrap(),
        })
        .unwrap();
        let src = env.work().join("busybox");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", src.join("bin/busybox")).unwrap();
        let busybox = store.add_path(&src, "busybox").unwrap();
        Kit {
            env,
            store,
            busybox,
            drvs: HashMap::new(),
        }
    }

    fn sh(&self) -> String {
        format!("{}/bin/busybox", self.store.print_path(&self.busybox))
    }

    fn path(&self, p: &StorePath) -> String {
        self.store.print_path(p)
    }

    fn write(&mut self, spec: Spec<'_>) -> StorePath {
        let mut drv = Derivation {
            system: "x86_64-linux".into(),
            builder: self.sh(),
            args: vec!["sh".into(), "-c".into(), spec.script.into()],
            ..Derivation::default()
        };
        drv.input_srcs.insert(self.busybox.clone());
        drv.env.insert("name".into(), spec.name.into());
        drv.env.insert("builder".into(), self.sh());
        drv.env.insert("system".into(), "x86_64-linux".into());
        for (k, v) in spec.env {
            drv.env.insert(k.to_string(), v.to_string());
        }
        for input in spec.inputs {
            drv.input_drvs
                .insert((*input).clone(), BTreeSet::from(["out".to_string()]));
        }
        let dir = self.store.store_dir().clone();
        match spec.fixed {
            Some((method, hash)) => {
                let out = DerivationOutput::fixed(
                    &dir,
                    spec.name,
                    "out",
                    FixedOutputHash { method, hash },
                )
                .unwrap();
                drv.outputs.insert("out".into(), out);
            }
            None => {
                for name in spec.outputs {
                    drv.outputs
                        .insert(name.to_string(), DerivationOutput::Deferred);
                }
                drv.env.insert("outputs".into(), spec.outputs.join(" "));
            }
        }
        let drvs = &self.drvs;
        let mut cache = HashMap::new();
        drv.fill_output_paths::<DerivationError, _>(&dir, spec.name, &mut |p| {
            Ok(drv_hash(&dir, drvs, &mut cache, p))
        })
        .unwrap();
        let path = self.store.write_derivation(&drv, spec.name).unwrap();
        self.drvs.insert(path.clone(), drv);
        path
    }

    fn out(&self, drv: &StorePath, output: &str) -> StorePath {
        self.drvs[drv].outputs[output].path().unwrap().clone()
    }

    /// The physical path of an output.
    fn real(&self, drv: &StorePath) -> PathBuf {
        self.store.real_path(&self.out(drv, "out"))
    }

    fn build(&self, drv: &StorePath, extra: &[&str]) -> std::process::Output {
        let drv = self.path(drv);
        let mut args = vec!["build", drv.as_str(), "--no-out-link"];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn build_ok(&self, drv: &StorePath) -> String {
        let out = self.build(drv, &["--print-out-paths"]);
        assert!(
            out.status.success(),
            "build failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn build_fails(&self, drv: &StorePath, extra: &[&str]) -> String {
        let out = self.build(drv, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "expected failure:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    fn refs(&self, drv: &StorePath) -> Vec<String> {
        let store = self.reopen();
        store
            .references(&self.out(drv, "out"))
            .unwrap()
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    /// A fresh handle: the database as other processes left it.
    fn reopen(&self) -> Store {
        Store::open(StoreConfig {
            root: self.env.root(),
            store_dir: StoreDir::new(STORE_DIR).unwrap(),
        })
        .unwrap()
    }
}

fn drv_hash(
    dir: &StoreDir,
    drvs: &HashMap<StorePath, Derivation>,
    cache: &mut HashMap<StorePath, DrvHash>,
    path: &StorePath,
) -> DrvHash {
    if let Some(h) = cache.get(path) {
        return h.clone();
    }
    let drv = &drvs[path];
    let h = drv
        .hash_modulo::<DerivationError, _>(dir, false, &mut |p| Ok(drv_hash(dir, drvs, cache, p)))
        .unwrap();
    cache.insert(path.clone(), h.clone());
    h
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn builds_a_derivation_links_result_and_keeps_its_log() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
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
fn the_sandbox_has_no_network() {
    if !require_bwrap() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut kit = Kit::new();
    // The build succeeds only if the connection fails.
    let drv = kit.write(Spec {
        env: &[("port", &port)],
        ..Spec::new(
            "no-net",
            "if echo hi | nc -w 2 127.0.0.1 $port; then echo CONNECTED; exit 1; fi; \
             if wget -q -O- http://127.0.0.1:$port/; then echo CONNECTED; exit 1; fi; \
             echo isolated > $out",
        )
    });
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv)), "isolated\n");
    assert!(
        listener.accept().is_err(),
        "the build reached the host's listener"
    );
}

#[test]
fn the_sandbox_shows_only_the_input_closure_and_no_host_dirs() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    // A valid path that is not an input must not be visible.
    let other_src = kit.env.write("other.txt", "not an input");
    let other = kit.store.add_path(&other_src, "other").unwrap();
    let home = kit.env.home().display().to_string();
    let project = env!("CARGO_MANIFEST_DIR");
    let other_path = kit.path(&other);
    let drv = kit.write(Spec {
        env: &[
            ("hosthome", &home),
            ("project", project),
            ("other", &other_path),
        ],
        ..Spec::new(
            "visible",
            "mkdir $out; ls /kiln/store > $out/store; ls /etc > $out/etc; ls / > $out/root; \
             for p in $hosthome $project $other /root /usr /home; do \
               if [ -e $p ]; then echo $p >> $out/leaks; fi; done; true",
        )
    });
    kit.build_ok(&drv);
    let out = kit.real(&drv);
    assert!(
        !out.join("leaks").exists(),
        "visible: {}",
        read(&out.join("leaks"))
    );
    let store_listing = read(&out.join("store"));
    let mut seen: Vec<&str> = store_listing.lines().collect();
    seen.sort();
    let mut expected = vec![kit.busybox.to_string(), kit.out(&drv, "out").to_string()];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(read(&out.join("etc")), "group\nhosts\npasswd\n");
}

#[test]
fn inputs_are_read_only() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let bb = kit.path(&kit.busybox.clone());
    let drv = kit.write(Spec {
        env: &[("bb", &bb)],
        ..Spec::new(
            "ro",
            "if touch $bb/bin/new 2>/dev/null; then exit 1; fi; \
             if rm -f $bb/bin/busybox; then :; fi; \
             if [ ! -x $bb/bin/busybox ]; then exit 2; fi; \
             if echo x >> $bb/bin/busybox; then exit 3; fi; echo ok > $out",
        )
    });
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv)), "ok\n");
}

#[test]
fn builds_run_as_an_unprivileged_user_with_a_fixed_identity() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec::new(
        "ident",
        "mkdir $out; id -u > $out/uid; id -g > $out/gid; id -un > $out/user; \
         hostname > $out/hostname; cat /etc/passwd > $out/passwd; pwd > $out/pwd",
    ));
    kit.build_ok(&drv);
    let out = kit.real(&drv);
    assert_eq!(read(&out.join("uid")), "1000\n");
    assert_eq!(read(&out.join("gid")), "100\n");
    assert_eq!(read(&out.join("user")), "nixbld\n");
    assert_eq!(read(&out.join("hostname")), "localhost\n");
    assert_eq!(read(&out.join("pwd")), "/build\n");
    assert!(read(&out.join("passwd")).contains("nixbld:x:1000:100:"));
}

#[test]
fn the_environment_is_as_designed() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec {
        env: &[
            ("greeting", "hi there"),
            ("passAsFile", "big"),
            ("big", "a big value"),
        ],
        outputs: &["out", "doc"],
        ..Spec::new("envy", "env > $out; cat $bigPath > $doc")
    });
    kit.build_ok(&drv);
    let env: BTreeMap<String, String> = read(&kit.real(&drv))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = kit.path(&kit.out(&drv, "out"));
    let doc = kit.path(&kit.out(&drv, "doc"));
    for (k, v) in [
        ("HOME", "/homeless-shelter"),
        ("PATH", "/path-not-set"),
        ("TMPDIR", "/build"),
        ("TEMPDIR", "/build"),
        ("TMP", "/build"),
        ("TEMP", "/build"),
        ("NIX_BUILD_TOP", "/build"),
        ("NIX_STORE", STORE_DIR),
        ("NIX_LOG_FD", "2"),
        ("TERM", "xterm-256color"),
        ("greeting", "hi there"),
        ("name", "envy"),
        ("out", out.as_str()),
        ("doc", doc.as_str()),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(env.contains_key("NIX_BUILD_CORES"));
    assert!(!env.contains_key("big"));
    assert!(env["bigPath"].starts_with("/build/.attr-"));
    assert!(!env.contains_key("USER") && !env.contains_key("CARGO"));
    assert_eq!(
        read(&kit.store.real_path(&kit.out(&drv, "doc"))),
        "a big value"
    );
}

/// Whether a process whose command line contains `marker` runs on the host.
fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
            .unwrap_or(false)
    })
}

#[test]
fn no_process_survives_the_build() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec::new(
        "daemon",
        "sleep 4242 & (setsid sleep 4243 &) ; nohup sleep 4244 >/dev/null 2>&1 & echo started > $out",
    ));
    kit.build_ok(&drv);
    for marker in ["sleep 4242", "sleep 4243", "sleep 4244"] {
        assert!(!process_running(marker), "{marker} survived the build");
    }
}

#[test]
fn fixed_output_hash_is_checked() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let good = Hash::digest(HashAlgo::Sha256, b"fetched\n");
    let wrong = Hash::digest(HashAlgo::Sha256, b"something else\n");
    let ok = kit.write(Spec {
        fixed: Some((FileIngestionMethod::Flat, good)),
        ..Spec::new("fetched", "echo fetched > $out")
    });
    kit.build_ok(&ok);
    let info = kit
        .reopen()
        .path_info(&kit.out(&ok, "out"))
        .unwrap()
        .unwrap();
    assert_eq!(
        info.ca.as_deref(),
        Some(format!("fixed:{}", good.to_typed_nix32()).as_str())
    );

    let bad = kit.write(Spec {
        fixed: Some((FileIngestionMethod::Flat, wrong)),
        ..Spec::new("fetched-bad", "echo fetched > $out")
    });
    let stderr = kit.build_fails(&bad, &[]);
    assert!(stderr.contains("hash mismatch"), "{stderr}");
    for expected in [
        wrong.to_sri(),
        wrong.to_typed_nix32(),
        good.to_sri(),
        good.to_typed_nix32(),
    ] {
        assert!(stderr.contains(&expected), "{expected} missing:\n{stderr}");
    }
    assert!(!kit.reopen().is_valid(&kit.out(&bad, "out")).unwrap());
}

#[test]
fn references_are_found_by_scanning() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let dep = kit.write(Spec::new("dep", "echo dep > $out"));
    let dep_out = kit.path(&kit.out(&dep, "out"));
    let uses = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("uses", "mkdir $out; echo \"#!$dep/bin\" > $out/script")
    });
    let ignores = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("ignores", "echo nothing > $out")
    });
    let hides = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("hides", "mkdir $out; echo $dep | gzip -9 > $out/data.gz")
    });
    let own = kit.write(Spec::new(
        "own",
        "mkdir $out; echo $out > $out/self; ln -s $out/self $out/link",
    ));
    for d in [&uses, &ignores, &hides, &own] {
        kit.build_ok(d);
    }
    assert_eq!(kit.refs(&uses), vec!["dep"]);
    assert!(kit.refs(&ignores).is_empty());
    assert!(kit.refs(&hides).is_empty(), "{:?}", kit.refs(&hides));
    assert_eq!(kit.refs(&own), vec!["own"]);
}

#[test]
fn allowed_and_disallowed_references_are_enforced() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let dep = kit.write(Spec::new("dep", "echo dep > $out"));
    let dep_out = kit.path(&kit.out(&dep, "out"));
    let allowed_ok = kit.write(Spec {
        env: &[("dep", &dep_out), ("allowedReferences", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("allowed-ok", "echo $dep > $out")
    });
    kit.build_ok(&allowed_ok);
    let allowed_bad = kit.write(Spec {
        env: &[("dep", &dep_out), ("allowedReferences", "")],
        inputs: &[&dep],
        ..Spec::new("allowed-bad", "echo $dep > $out")
    });
    let stderr = kit.build_fails(&allowed_bad, &[]);
    assert!(
        stderr.contains("allowedReferences") && stderr.contains(&dep_out),
        "{stderr}"
    );
    let disallowed = kit.write(Spec {
        env: &[("dep", &dep_out), ("disallowedReferences", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("disallowed", "echo $dep > $out")
    });
    let stderr = kit.build_fails(&disallowed, &[]);
    assert!(stderr.contains("disallowedReferences"), "{stderr}");
    assert!(!kit.reopen().is_valid(&kit.out(&disallowed, "out")).unwrap());
    // Requisites are transitive: `top` refers to `mid`, which refers to `dep`.
    let mid = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("mid", "echo $dep > $out")
    });
    let mid_out = kit.path(&kit.out(&mid, "out"));
    let top = kit.write(Spec {
        env: &[("mid", &mid_out), ("disallowedRequisites", &dep_out)],
        inputs: &[&mid],
        ..Spec::new("top", "echo $mid > $out")
    });
    let stderr = kit.build_fails(&top, &[]);
    assert!(
        stderr.contains("disallowedRequisites") && stderr.contains(&dep_out),
        "{stderr}"
    );
    // Self-references are allowed by naming the output.
    let selfish = kit.write(Spec {
        env: &[("allowedReferences", "out")],
        ..Spec::new("selfish", "echo $out > $out")
    });
    kit.build_ok(&selfish);
}

#[test]
fn a_failed_build_reports_status_log_tail_and_how_to_see_more() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec::new(
        "broken",
        "i=1; while [ $i -le 40 ]; do echo line $i; i=$((i+1)); done; echo > /build/marker; exit 3",
    ));
    let stderr = kit.build_fails(&drv, &["--keep-failed"]);
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
fn missing_outputs_and_timeouts_fail() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let lazy = kit.write(Spec::new("lazy", "echo did nothing"));
    let stderr = kit.build_fails(&lazy, &[]);
    assert!(stderr.contains("did not produce output 'out'"), "{stderr}");

    let slow = kit.write(Spec::new("slow", "echo start; sleep 60; echo > $out"));
    let started = Instant::now();
    let stderr = kit.build_fails(&slow, &["--timeout", "1"]);
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let stderr = kit.build_fails(&slow, &["--max-silent-time", "1"]);
    assert!(stderr.contains("printed nothing"), "{stderr}");
}

#[test]
fn print_build_logs_prefixes_lines() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec::new(
        "chatty",
        "echo first; echo second >&2; echo > $out",
    ));
    let out = kit.build(&drv, &["-L"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("chatty> first\n") && stderr.contains("chatty> second\n"),
        "{stderr}"
    );
}

#[test]
fn dependencies_build_in_order_and_keep_going_continues() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
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
    let stderr = kit.build_fails(&top, &["-j1", "--keep-going"]);
    assert!(
        stderr.contains(&format!("its dependency '{}' failed", kit.path(&fails))),
        "{stderr}"
    );
    assert!(kit.reopen().is_valid(&kit.out(&fine, "out")).unwrap());
}

#[test]
fn check_reports_reproducible_or_the_differing_files() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
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
    let stderr = kit.build_fails(&clock, &["--check"]);
    assert!(stderr.contains("differs when rebuilt"), "{stderr}");
    assert!(
        stderr.contains("stamp") && stderr.contains("bytes, sha256-"),
        "{stderr}"
    );
    assert!(!stderr.contains("  f\n"), "{stderr}");
}

#[test]
fn concurrent_builds_of_one_graph_build_each_derivation_once() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
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

/// `kiln store verify` succeeds and the log says all is intact.
fn assert_store_consistent(kit: &Kit) {
    let out = kit.env.run(&["store", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "store verify failed:\n{stderr}");
}

#[test]
fn sigkill_during_a_build_leaves_a_consistent_store() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
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
    while !process_running("sleep 2.71") {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The sandbox died with kiln.
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_running("sleep 2.71") {
        assert!(Instant::now() < deadline, "the builder survived kiln");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!kit.reopen().is_valid(&kit.out(&drv, "out")).unwrap());
    assert_store_consistent(&kit);
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv).join("b")), "done\n");
    assert_store_consistent(&kit);
}

/// Build a derivation with many output files, and SIGKILL `kiln build`
/// as soon as `phase` is seen: 0 = output processing (the builder is done
/// and an output file is canonical), 1 = registration (the output is in
/// place in the store). Returns how many kills landed before the output
/// became valid; after each, the store must be consistent.
fn kill_in_phase(phase: usize) -> usize {
    let mut kit = Kit::new();
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
        assert_store_consistent(&kit);
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
    assert_store_consistent(&kit);
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

/// `kiln log ARG` until its stdout is `expected`, for at most `limit`.
fn wait_for_log(kit: &Kit, arg: &str, expected: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let out = kit.env.run(&["log", arg]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() && out.stdout == expected.as_bytes() {
            return stderr;
        }
        assert!(
            Instant::now() < deadline,
            "kiln log {arg} never showed {expected:?}; last: {}, stdout {:?}, stderr {stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn log_shows_what_a_running_and_then_killed_build_printed() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec::new(
        "slow-talker",
        "echo one; echo two >&2; echo three; sleep 31.41; echo > $out",
    ));
    let drv_path = kit.path(&drv);
    let out_path = kit.path(&kit.out(&drv, "out"));
    let expected = "one\ntwo\nthree\n";
    let mut child = kit
        .env
        .kiln()
        .args(["build", &drv_path, "--no-out-link"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // While the builder sleeps, its lines are in the log (within about a
    // second of being printed), by derivation and by output.
    let started = Instant::now();
    let stderr = wait_for_log(&kit, &drv_path, expected, Duration::from_secs(15));
    let shown_after = started.elapsed();
    assert!(child.try_wait().unwrap().is_none(), "the build ended early");
    assert!(process_running("sleep 31.41"), "the builder is not running");
    assert!(stderr.contains("is incomplete"), "{stderr}");
    wait_for_log(&kit, &out_path, expected, Duration::from_secs(5));

    // SIGKILL kiln: the sandbox dies with it, the log stays readable.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_running("sleep 31.41") {
        assert!(Instant::now() < deadline, "the builder survived kiln");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = kit.env.run(&["log", &drv_path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(
        stderr.contains(&format!("note: the log of {drv_path} is incomplete")),
        "{stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    eprintln!("the lines were in the log {shown_after:?} after the build started");
}

#[test]
fn missing_bwrap_is_an_error_that_says_what_to_install() {
    let mut kit = Kit::new();
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
    if !require_bwrap() {
        return;
    }
    let kit = Kit::new();
    // Kit::new left a busybox directory in work/.
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
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
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
fn structured_attributes_are_written_to_files() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec {
        env: &[(
            "__json",
            r#"{"name":"structured","words":["a","b c"],"n":3}"#,
        )],
        ..Spec::new(
            "structured",
            "mkdir $out; cat $NIX_ATTRS_SH_FILE > $out/sh; cat $NIX_ATTRS_JSON_FILE > $out/json; \
             echo \"${name:-unset}\" > $out/name",
        )
    });
    kit.build_ok(&drv);
    let out = kit.real(&drv);
    // .attrs.sh is for bash (arrays); busybox sh cannot source it.
    let sh = read(&out.join("sh"));
    assert!(sh.contains("declare -a words=('a' 'b c')"), "{sh}");
    assert!(sh.contains("declare -i n=3"), "{sh}");
    let out_path = kit.path(&kit.out(&drv, "out"));
    assert!(
        sh.contains(&format!("declare -A outputs=(['out']='{out_path}')")),
        "{sh}"
    );
    assert!(read(&out.join("json")).contains(&format!("\"outputs\":{{\"out\":\"{out_path}\"}}")));
    // The attributes are not environment variables.
    assert_eq!(read(&out.join("name")), "unset\n");
}

#[test]
fn fixed_output_derivations_may_use_the_network() {
    if !require_bwrap() {
        return;
    }
    // A one-shot HTTP server on the host's loopback.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut conn, _)) = listener.accept() {
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request);
            let body = "payload\n";
            let _ = write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut kit = Kit::new();
    let hash = Hash::digest(HashAlgo::Sha256, b"payload\n");
    let fetch = kit.write(Spec {
        env: &[("port", &port)],
        fixed: Some((FileIngestionMethod::Flat, hash)),
        ..Spec::new("fetch", "wget -q -O $out http://127.0.0.1:$port/payload")
    });
    kit.build_ok(&fetch);
    server.join().unwrap();
    assert_eq!(read(&kit.real(&fetch)), "payload\n");
}
