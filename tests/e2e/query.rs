//! `kiln store query` (tree, graph, deriver, outputs, referrers closure,
//! hash, size), `store show-derivation` of an output path and `kiln log`
//! of an installable: byte for byte against Nix 2.8 where Nix has the
//! question, and the structure otherwise.

use std::process::Command;

use serde_json::Value;

use crate::kit::{TestEnv, require_bwrap, which};

/// Four derivations whose outputs refer to each other (a → b, c, d and a
/// text file; b → c; d → c) and one whose output refers to itself, built
/// with the static busybox in `work/busybox`.
const GRAPH_NIX: &str = r#"let
  bb = builtins.path { path = ./busybox; name = "busybox"; };
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" script ];
  };
  c = mk "c" "echo c > $out";
  b = mk "b" "echo ${c} > $out";
  d = mk "d" "echo ${c} > $out";
  src = builtins.toFile "src" "x";
in {
  a = mk "a" "echo ${b} ${c} ${d} ${src} > $out";
  inherit c;
  self = mk "self" "echo $out > $out";
  two = derivation {
    name = "two";
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" "echo > $out; echo > $dev" ];
    outputs = [ "out" "dev" ];
  };
  # Its JSON is larger than a pipe's buffer.
  big = derivation {
    name = "big";
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    blob = builtins.concatStringsSep "" (builtins.genList (x: "0123456789") 20000);
  };
}
"#;

/// A test root with GRAPH_NIX and busybox in `work/`.
fn graph_env() -> TestEnv {
    let env = TestEnv::new();
    let bin = env.work().join("busybox/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    env.write("graph.nix", GRAPH_NIX);
    env
}

/// Run `nix-store`/`nix-instantiate` on a store of its own in the test's
/// directory, without a daemon or substituters.
fn nix(env: &TestEnv, program: &str, args: &[&str]) -> String {
    let store = env.dir.path().join("nix");
    let out = Command::new(program)
        .arg("--store")
        .arg(&store)
        .args(["--option", "substituters", ""])
        .args(args)
        .env("NIX_REMOTE", "")
        .current_dir(env.work())
        .output()
        .expect("run nix");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn have_nix() -> bool {
    if which("nix-store").is_some() && which("nix-instantiate").is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Nix 2.8 (nix-store, nix-instantiate) is missing under CI");
    }
    eprintln!("skipped: Nix is not installed");
    false
}

/// `kiln --store-dir /nix/store ARGS…`, which must succeed.
fn kiln(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["--store-dir", "/nix/store"];
    all.extend_from_slice(args);
    env.ok(&all)
}

/// Nix and kiln evaluate and build the same file; every query gives the
/// same bytes in both, on derivations and on built outputs.
#[test]
fn queries_print_what_nix_store_prints() {
    if !have_nix() || !require_bwrap() {
        return;
    }
    let env = graph_env();
    let mut drvs = Vec::new();
    for attr in ["a", "c", "self", "two"] {
        let ours = kiln(&env, &["instantiate", "graph.nix", "-A", attr]);
        let theirs = nix(&env, "nix-instantiate", &["graph.nix", "-A", attr]);
        assert_eq!(ours, theirs, "the .drv of {attr}");
        drvs.push(ours.trim().to_owned());
    }
    for drv in &drvs[..3] {
        kiln(&env, &["build", drv, "--no-out-link"]);
        nix(&env, "nix-store", &["--realise", drv]);
    }
    let output = |drv: &str| {
        let ours = kiln(&env, &["store", "query", "--outputs", drv]);
        assert_eq!(ours, nix(&env, "nix-store", &["-q", "--outputs", drv]));
        ours.trim().to_owned()
    };
    let (a_drv, c_drv, self_drv, two_drv) = (&drvs[0], &drvs[1], &drvs[2], &drvs[3]);
    let (a, c, selfref) = (output(a_drv), output(c_drv), output(self_drv));
    // Two outputs, one line each.
    assert_eq!(output(two_drv).lines().count(), 2);

    let questions: Vec<Vec<&str>> = vec![
        vec!["--tree", a_drv],
        vec!["--tree", &a],
        vec!["--tree", &selfref],
        vec!["--tree", &a, &selfref, &c],
        vec!["--graph", a_drv],
        vec!["--graph", &a],
        vec!["--graph", &selfref],
        vec!["--deriver", &a, &selfref, a_drv],
        vec!["--requisites", &a],
        vec!["--requisites", "--include-outputs", a_drv],
        vec!["--referrers-closure", c_drv],
        vec!["--referrers-closure", &c],
        vec!["--referrers", &c],
        vec!["--references", &a],
        vec!["--references", "--use-output", a_drv],
        vec!["--hash", &a, &selfref],
        vec!["--size", &a, &selfref],
    ];
    for question in questions {
        let mut ours = vec!["store", "query"];
        ours.extend(&question);
        let mut theirs = vec!["-q"];
        theirs.extend(&question);
        assert_eq!(
            kiln(&env, &ours),
            nix(&env, "nix-store", &theirs),
            "{question:?}"
        );
    }
    // The tree is not empty talk: a's output has its three derivations'
    // outputs and the text file below it, c twice (once as `[...]`).
    let tree = kiln(&env, &["store", "query", "--tree", &a]);
    assert_eq!(tree.lines().count(), 7, "{tree}");
    assert_eq!(tree.matches(" [...]").count(), 2, "{tree}");
    assert_eq!(
        kiln(&env, &["store", "query", "--deriver", &a]).trim(),
        a_drv
    );
}

/// Structure and errors, without Nix: the JSON form, --use-output on an
/// unbuilt derivation, show-derivation of an output path, log of an
/// installable, and closed pipes.
#[test]
fn outputs_stand_for_their_derivation() {
    if !require_bwrap() {
        return;
    }
    let env = graph_env();
    let c_drv = env.ok(&["instantiate", "graph.nix", "-A", "c"]);
    let c_drv = c_drv.trim();
    let two_drv = env.ok(&["instantiate", "graph.nix", "-A", "two"]);
    let two_drv = two_drv.trim();
    let c = env.ok(&["build", "graph.nix", "-A", "c", "--no-out-link"]);
    let c = c.trim();

    // show-derivation of the output is the derivation's JSON.
    let by_drv: Value =
        serde_json::from_str(&env.ok(&["store", "show-derivation", c_drv])).unwrap();
    let by_out: Value = serde_json::from_str(&env.ok(&["store", "show-derivation", c])).unwrap();
    assert_eq!(by_drv, by_out);
    assert_eq!(by_out[c_drv]["outputs"]["out"]["path"], c);
    // An unbuilt output stands for the valid .drv that declares it.
    let two_outs = env.ok(&["store", "query", "--outputs", two_drv]);
    let two_out = two_outs.lines().find(|l| l.ends_with("-two")).unwrap();
    let two: Value = serde_json::from_str(&env.ok(&["store", "show-derivation", two_out])).unwrap();
    assert!(two.get(two_drv).is_some(), "{two}");
    // A source path has no derivation.
    let bb = env.ok(&["store", "query", "--references", c_drv]);
    let bb = bb.lines().find(|l| l.ends_with("-busybox")).unwrap();
    let err = env.fails(&["store", "show-derivation", bb], 2);
    assert!(err.contains("not a derivation"), "{err}");
    assert_eq!(
        env.ok(&["store", "query", "--deriver", bb]),
        "unknown-deriver\n"
    );

    // --use-output needs the outputs built.
    let err = env.fails(&["store", "query", "-u", "--references", two_drv], 2);
    assert!(err.contains("is not valid (build it first)"), "{err}");
    // JSON for lists; the tree and the graph have none.
    let json: Value =
        serde_json::from_str(&env.ok(&["store", "query", "--json", "-R", c])).unwrap();
    assert_eq!(json, serde_json::json!([c]));
    env.fails(&["store", "query", "--json", "--tree", c], 2);
    env.fails(&["store", "query", "--tree", "--graph", c], 2);
    env.fails(&["store", "query", "--include-outputs", "--tree", c], 2);

    // The log of an attribute, of an expression, of a file's attribute.
    let by_path = env.ok(&["log", c]);
    env.write("default.nix", "import ./graph.nix");
    assert_eq!(env.ok(&["log", "-A", "c"]), by_path);
    assert_eq!(env.ok(&["log", "graph.nix", "-A", "c"]), by_path);
    assert_eq!(env.ok(&["log", "-E", "(import ./graph.nix).c"]), by_path);
    // Nothing built for `self`: no log, and exit 1.
    let err = env.fails(&["log", "-A", "self"], 1);
    assert!(err.contains("no build log for"), "{err}");
    let err = env.fails(&["log", "-A", "nope"], 2);
    assert!(err.contains("nope"), "{err}");
    let err = env.fails(&["log"], 2);
    assert!(err.contains("-A"), "{err}");

    // `| head -1` ends quietly, also when serde_json writes: the JSON of
    // `big` does not fit in the pipe, so the reader is gone mid-write.
    let big = env.ok(&["instantiate", "graph.nix", "-A", "big"]);
    assert_quiet_under_head(&env, &["store", "show-derivation", big.trim()]);
    assert_quiet_under_head(&env, &["store", "query", "--graph", c]);
}

/// `kiln ARGS | head -1` exits 0 and prints nothing on stderr.
fn assert_quiet_under_head(env: &TestEnv, args: &[&str]) {
    let mut kiln = env.kiln();
    kiln.args(args).stdout(std::process::Stdio::piped());
    let mut child = kiln.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let head = Command::new("head")
        .arg("-1")
        .stdin(stdout)
        .output()
        .unwrap();
    assert_eq!(head.stdout.iter().filter(|b| **b == b'\n').count(), 1);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
}
