//! `kiln instantiate` and derivations in `kiln eval`, end to end.

use std::path::Path;

use kiln_store::StoreDir;
use kiln_store::store::{Store, StoreConfig};

use crate::kit::TestEnv;

fn vectors() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("store/tests/vectors/derivations")
}

/// The drvPath Nix 2.8 recorded for vector `name`.
fn nix_drv_path(name: &str) -> String {
    let tsv = std::fs::read_to_string(vectors().join("paths.tsv")).expect("paths.tsv");
    tsv.lines()
        .find_map(|line| {
            let mut cols = line.split('\t');
            (cols.next() == Some(name)).then(|| cols.next().unwrap_or_default().to_owned())
        })
        .expect("case in paths.tsv")
}

const MULTI: &str = r#"
let d = derivation {
  name = "m"; system = "x86_64-linux"; builder = "/bin/sh";
  outputs = [ "out" "dev" ];
};
in {
  b = d;
  a = d.dev;
  nested = { x = d; };
  text = "not a derivation";
  meta-demo = derivation {
    name = "with-meta"; system = "x86_64-linux"; builder = "/bin/sh";
  } // { meta = { description = "demo"; license = "MIT"; homepage = "https://example.org"; }; };
}
"#;

#[test]
fn writes_nix_identical_drv_files_and_prints_their_paths() {
    let env = TestEnv::new();
    // dep-chain pulls in two other vectors through `import`.
    for case in [
        "dep-chain",
        "src-builtins-path",
        "tofile-input",
        "fod-recursive-sha256-sri",
    ] {
        let file = vectors().join(format!("{case}.nix"));
        let out = env.ok(&[
            "--store-dir",
            "/nix/store",
            "instantiate",
            file.to_str().unwrap(),
        ]);
        let want = nix_drv_path(case);
        assert_eq!(out, format!("{want}\n"), "{case}");
        let written = env.root().join(want.trim_start_matches('/'));
        let bytes = std::fs::read(&written).expect("the .drv is in the store");
        let nix_bytes = std::fs::read(vectors().join(format!("{case}.drv"))).unwrap();
        assert_eq!(bytes, nix_bytes, "{case}: .drv bytes");
    }
    // The .drv and its inputs are registered valid.
    let store = Store::open(StoreConfig {
        root: env.root(),
        store_dir: StoreDir::new("/nix/store").unwrap(),
    })
    .unwrap();
    let drv = store
        .store_dir()
        .parse_path(&nix_drv_path("dep-chain"))
        .unwrap();
    assert!(store.is_valid(&drv).unwrap());
    let closure = store.closure(std::slice::from_ref(&drv)).unwrap();
    assert!(
        closure.iter().any(|p| p.name() == "dep-simple.drv"),
        "input derivations are in the closure: {closure:?}"
    );
}

#[test]
fn dry_run_prints_the_same_path_and_writes_nothing() {
    let env = TestEnv::new();
    let file = vectors().join("src-dir.nix");
    let args = [
        "--store-dir",
        "/nix/store",
        "instantiate",
        "--dry",
        file.to_str().unwrap(),
    ];
    let out = env.ok(&args);
    assert_eq!(out, format!("{}\n", nix_drv_path("src-dir")));
    let store_dir = env.root().join("nix/store");
    let entries = std::fs::read_dir(&store_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 0, "--dry wrote into {}", store_dir.display());
}

#[test]
fn finds_derivations_like_nix_instantiate_and_records_meta() {
    let env = TestEnv::new();
    env.write("multi.nix", MULTI);
    // Exactly what `nix-instantiate multi.nix` (Nix 2.8) prints: a (the
    // dev output), b, meta-demo; `nested` is not searched, `text` ignored.
    let out = env.ok(&["--store-dir", "/nix/store", "instantiate", "multi.nix"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/nix/store/47lbs0zpyhvc0syl9f7wbplc4ifv6jw9-m.drv!dev",
            "/nix/store/47lbs0zpyhvc0syl9f7wbplc4ifv6jw9-m.drv",
            "/nix/store/92hqpjb4l0ki746kzg3c2vy7gqqljf3b-with-meta.drv",
        ]
    );
    let store = Store::open(StoreConfig {
        root: env.root(),
        store_dir: StoreDir::new("/nix/store").unwrap(),
    })
    .unwrap();
    let drv = store.store_dir().parse_path(lines[2]).unwrap();
    let meta = store.derivation_meta(&drv).unwrap().expect("meta recorded");
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["description"], "demo");
    assert_eq!(meta["homepage"], "https://example.org");
    assert_eq!(meta["licenses"][0]["spdxId"], "MIT");

    // -A picks one; a list is searched element by element.
    let out = env.ok(&[
        "--store-dir",
        "/nix/store",
        "instantiate",
        "multi.nix",
        "-A",
        "a",
    ]);
    assert_eq!(
        out,
        "/nix/store/47lbs0zpyhvc0syl9f7wbplc4ifv6jw9-m.drv!dev\n"
    );
    let out = env.ok(&[
        "--store-dir",
        "/nix/store",
        "instantiate",
        "-E",
        "with import ./multi.nix; [ b [ a ] ]",
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");

    // Not a derivation: a user error.
    let err = env.fails(&["instantiate", "multi.nix", "-A", "text"], 2);
    assert!(err.contains("does not evaluate to a derivation"), "{err}");
}

#[test]
fn auto_args_reach_a_top_level_function() {
    let env = TestEnv::new();
    env.write(
        "f.nix",
        r#"{ name, n ? 1 }: derivation {
             inherit name; system = "x86_64-linux"; builder = "/bin/sh";
             n = n + 1;
           }"#,
    );
    let a = env.ok(&[
        "instantiate",
        "--dry",
        "f.nix",
        "--argstr",
        "name",
        "a",
        "--arg",
        "n",
        "41",
    ]);
    let b = env.ok(&["instantiate", "--dry", "f.nix", "--argstr", "name", "a"]);
    assert!(a.trim_end().ends_with("-a.drv"), "{a}");
    assert_ne!(a, b, "--arg n changes the derivation");
    // The default store dir is /kiln/store.
    assert!(a.starts_with("/kiln/store/"), "{a}");
}

#[test]
fn eval_prints_a_derivation_the_way_nix_does() {
    let env = TestEnv::new();
    let expr = r#"derivation { name = "x"; system = "s"; builder = "/b"; }"#;
    // Both strings are `NIX_REMOTE= nix-instantiate --eval [--strict]`
    // output (Nix 2.8).
    let lazy = env.ok(&["--store-dir", "/nix/store", "eval", "-E", expr]);
    assert_eq!(
        lazy,
        "{ all = <CODE>; builder = \"/b\"; drvAttrs = { builder = \"/b\"; name = \"x\"; system = \"s\"; }; drvPath = <CODE>; name = \"x\"; out = «repeated»; outPath = <CODE>; outputName = \"out\"; system = \"s\"; type = \"derivation\"; }\n"
    );
    let strict = env.ok(&["--store-dir", "/nix/store", "eval", "--strict", "-E", expr]);
    assert_eq!(
        strict,
        "{ all = [ «repeated» ]; builder = \"/b\"; drvAttrs = { builder = \"/b\"; name = \"x\"; system = \"s\"; }; drvPath = \"/nix/store/cmb8q6cmqa3my5qg8bwjjxww4gf9hgxl-x.drv\"; name = \"x\"; out = «repeated»; outPath = \"/nix/store/irfh3cry3rcd0iby28idy248a9jnp02n-x\"; outputName = \"out\"; system = \"s\"; type = \"derivation\"; }\n"
    );
}
