//! nixpkgs-mini end to end: real Nix 2.8 agrees on every package's `.drv`
//! path; every package carries an SPDX license; a missing seed names the
//! fetch command; and, where the seed cache exists (under CI it must),
//! the whole set builds from an empty store, runs, rebuilds bit for bit
//! (`--check`), and its runtime closures hold no toolchain.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kit::{TestEnv, require_bwrap, which};

fn set_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nixpkgs-mini")
}

fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The set's packages: its attributes that are derivations.
fn package_names(env: &TestEnv) -> Vec<String> {
    let expr = "let p = import <nixpkgs-mini>; in \
                builtins.filter (n: (p.${n}.type or null) == \"derivation\") (builtins.attrNames p)";
    let out = env.ok(&["eval", "--json", "-E", expr]);
    serde_json::from_str(&out).expect("a JSON list of names")
}

#[test]
fn the_set_is_on_the_default_search_path_and_every_package_has_an_spdx_license() {
    let env = TestEnv::new();
    let names = package_names(&env);
    assert!(names.len() >= 12, "at least 12 packages: {names:?}");
    for wanted in [
        "hello", "make", "zlib", "pigz", "zpipe", "bzip2", "lua", "xz", "tree",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
    // meta.license is a license (or a list of them) with an SPDX id.
    let expr = "let p = import <nixpkgs-mini>; \
                ids = l: if builtins.isList l then map (x: x.spdxId) l else [ l.spdxId ]; in \
                map (n: { name = n; ids = ids p.${n}.meta.license; \
                          description = p.${n}.meta.description; }) NAMES";
    let list = format!(
        "[ {} ]",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = env.ok(&[
        "eval",
        "--json",
        "--strict",
        "-E",
        &expr.replace("NAMES", &list),
    ]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    // An SPDX id (or `A OR B`), or a LicenseRef-.
    let spdx_id = |id: &str| {
        id.split(" OR ").all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c))
        })
    };
    for entry in &entries {
        let ids = entry["ids"].as_array().unwrap();
        assert!(!ids.is_empty(), "{entry}");
        for id in ids {
            assert!(spdx_id(id.as_str().unwrap()), "{entry}");
        }
        assert!(
            !entry["description"].as_str().unwrap().is_empty(),
            "{entry}"
        );
    }
    let hello = entries.iter().find(|e| e["name"] == "hello").unwrap();
    assert_eq!(hello["ids"][0], "GPL-3.0-or-later");

    // From another directory, `<nixpkgs-mini>` as the file argument.
    let out = env.ok(&["instantiate", "<nixpkgs-mini>", "-A", "hello"]);
    assert!(out.trim().ends_with("-hello-2.10.drv"), "{out}");
}

#[test]
fn nix_instantiate_agrees_on_every_drv_path() {
    if which("nix-instantiate").is_none() {
        if under_ci() {
            panic!("Nix 2.8 (nix-instantiate) is missing under CI: .ci/run installs nix-bin");
        }
        eprintln!("skipped: nix-instantiate not installed");
        return;
    }
    let env = TestEnv::new();
    let names = package_names(&env);
    let mut args: Vec<String> = vec![set_dir().display().to_string()];
    for n in &names {
        args.push("-A".into());
        args.push(n.clone());
    }
    let nix_root = env.dir.path().join("nix-root");
    let nix = Command::new("nix-instantiate")
        .env("NIX_REMOTE", "")
        .env("HOME", env.home())
        .env_remove("NIX_PATH")
        .arg("--store")
        .arg(format!("local?root={}", nix_root.display()))
        .args(["--option", "substituters", ""])
        .args(&args)
        .output()
        .expect("run nix-instantiate");
    assert!(
        nix.status.success(),
        "nix-instantiate failed:\n{}",
        String::from_utf8_lossy(&nix.stderr)
    );
    let mut kiln_args = vec!["instantiate", "--store-dir", "/nix/store"];
    kiln_args.extend(args.iter().map(String::as_str));
    let kiln = env.ok(&kiln_args);
    let nix = String::from_utf8(nix.stdout).unwrap();
    assert_eq!(kiln.lines().count(), names.len(), "{kiln}");
    for ((name, k), n) in names.iter().zip(kiln.lines()).zip(nix.lines()) {
        assert_eq!(k, n, "{name}: kiln and Nix 2.8 disagree on the .drv path");
        assert!(k.starts_with("/nix/store/") && k.ends_with(".drv"), "{k}");
    }
}

#[test]
fn a_missing_seed_names_the_fetch_command() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    // A build failure (exit 100, as Nix's), naming the command to run.
    let err = env.fails(
        &["build", "<nixpkgs-mini>", "-A", "hello", "--no-out-link"],
        100,
    );
    assert!(err.contains("nixpkgs-mini/seed/fetch"), "{err}");
}

/// The seed cache: $KILN_SEED_CACHE, else ~/.cache/kiln/seed (where
/// `nixpkgs-mini/seed/fetch` puts it).
fn seed_cache() -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_SEED_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/kiln/seed"),
    };
    let lock = std::fs::read_to_string(set_dir().join("seed/lock.tsv")).unwrap();
    let complete = lock
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .all(|l| dir.join(l.split('\t').nth(1).unwrap()).is_file());
    complete.then_some(dir)
}

fn requisites(env: &TestEnv, path: &str) -> Vec<String> {
    env.ok(&["store", "query", "--requisites", path])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_whole_set_builds_from_an_empty_store_reproducibly_without_the_toolchain_at_run_time() {
    if !require_bwrap() {
        return;
    }
    let Some(cache) = seed_cache() else {
        if under_ci() {
            panic!(
                "the nixpkgs-mini seed cache is missing under CI: .ci/run runs \
                 `nixpkgs-mini/seed/fetch --only-cache` (or set KILN_SEED_CACHE)"
            );
        }
        eprintln!("skipped: no seed cache (run nixpkgs-mini/seed/fetch --only-cache)");
        return;
    };
    let env = TestEnv::new();
    // The fetch script adds the cached seed and sources: nothing is fetched.
    let fetch = Command::new(set_dir().join("seed/fetch"))
        .env("KILN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_ROOT", env.root())
        .arg("--cache")
        .arg(&cache)
        .output()
        .expect("run seed/fetch");
    assert!(
        fetch.status.success(),
        "seed/fetch failed:\n{}",
        String::from_utf8_lossy(&fetch.stderr)
    );

    let names = package_names(&env);
    let mut args = vec![
        "build",
        "<nixpkgs-mini>",
        "-j",
        "2",
        "--cores",
        "2",
        "--no-out-link",
    ];
    for n in &names {
        args.push("-A");
        args.push(n);
    }
    let out = env.ok(&args);
    let paths: Vec<&str> = out.lines().collect();
    let find = |suffix: &str| -> String {
        paths
            .iter()
            .find(|p| p.ends_with(suffix))
            .unwrap_or_else(|| panic!("no output ending in {suffix} in {paths:?}"))
            .to_string()
    };
    let real = |p: &str| env.root().join(p.trim_start_matches('/'));

    // hello runs (a static binary runs from anywhere) and passed make check.
    let hello = find("-hello-2.10");
    let greeting = Command::new(real(&hello).join("bin/hello"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&greeting.stdout), "Hello, world!\n");
    let log = env.ok(&["log", &hello]);
    assert!(
        log.contains("@phase checkPhase") && log.contains("# PASS:  4"),
        "{log}"
    );

    // zlib: the static library in out, headers in dev; pigz and zpipe
    // agree on its streams (zlib-roundtrip ran them).
    let zlib = find("-zlib-1.3.1");
    assert!(real(&zlib).join("lib/libz.a").is_file());
    assert!(!real(&zlib).join("include").exists());
    assert!(
        real(&find("-zlib-1.3.1-dev"))
            .join("include/zlib.h")
            .is_file()
    );
    let roundtrip = std::fs::read_to_string(real(&find("-zlib-roundtrip"))).unwrap();
    assert!(roundtrip.contains("round-tripped"), "{roundtrip}");
    // make's documents are in its doc output; tree's patch moved its man page.
    assert!(
        real(&find("-make-4.4.1-doc"))
            .join("share/doc/make/NEWS")
            .is_file()
    );
    assert!(!real(&find("-make-4.4.1")).join("share/doc").exists());
    assert!(
        real(&find("-tree-2.1.0"))
            .join("share/man/man1/tree.1")
            .is_file()
    );

    // Shebangs point into the store (greet's own, bzip2's bzgrep).
    for script in [
        format!("{}/bin/greet", find("-greet-1.0")),
        format!("{}/bin/bzgrep", find("-bzip2-1.0.8")),
    ] {
        let text = std::fs::read_to_string(real(&script)).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("#!/kiln/store/") && first.ends_with("/bin/sh"),
            "{script}: {first}"
        );
    }

    // Runtime closures hold no toolchain, no make, no stdenv.
    for pkg in [
        "-hello-2.10",
        "-zlib-1.3.1",
        "-pigz-2.8",
        "-lua-5.4.7",
        "-tree-2.1.0",
        "-greet-1.0",
        "-xz-5.4.1",
        "-nixpkgs-mini-tools",
    ] {
        let path = find(pkg);
        for req in requisites(&env, &path) {
            for bad in [
                "zig",
                "cc-wrapper",
                "make-boot",
                "stdenv-mini",
                "install-sh-mini",
                ".orig.tar",
            ] {
                assert!(!req.contains(bad), "{path} needs {req} at run time");
            }
        }
    }
    assert!(
        requisites(&env, &hello) == vec![hello.clone()],
        "hello refers to nothing"
    );

    // A second build has nothing to do.
    let again = env.ok(&args);
    assert_eq!(again, out);

    // Rebuilt, they are bit for bit the same.
    env.ok(&[
        "build",
        "<nixpkgs-mini>",
        "-A",
        "zlib",
        "-A",
        "tree",
        "-A",
        "bzip2",
        "--check",
        "--no-out-link",
    ]);
    env.assert_store_consistent();
}
