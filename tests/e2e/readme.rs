//! The README's quick start stays true: `kiln build examples/hello.nix`
//! builds in the sandbox and leaves a `result` link to the greeting.

use std::path::Path;

use crate::kit::{TestEnv, require_bwrap};

#[test]
fn readme_example_builds_and_links_result() {
    if !require_bwrap() {
        return;
    }
    if !Path::new("/usr/bin/busybox").exists() {
        eprintln!("skipped: /usr/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let env = TestEnv::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.nix");
    let out = env.ok(&["build", "--print-out-paths", example.to_str().unwrap()]);
    let out_path = out.trim();
    assert!(
        out_path.starts_with("/kiln/store/") && out_path.ends_with("-hello"),
        "{out}"
    );
    let greeting = std::fs::read_to_string(env.work().join("result")).unwrap();
    assert_eq!(greeting, "Hello from hello, built in a kiln sandbox\n");

    // A second build has nothing to do and gives the same path.
    let again = env.ok(&["build", "--print-out-paths", example.to_str().unwrap()]);
    assert_eq!(again, out);
}

/// The quick start block of the README (the first `sh` block after its
/// heading).
fn quick_start() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme.find("## Quick start").expect("a quick start")..];
    let block = &section[section.find("```sh\n").expect("an sh block") + 6..];
    block[..block.find("```").unwrap()].to_string()
}

/// Read literally, the quick start installs everything a fresh Debian
/// machine lacks (Rust too, at the version Cargo.toml requires), and
/// `.ci/run` follows the same steps.
#[test]
fn readme_quick_start_installs_what_a_fresh_machine_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let block = quick_start();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    for package in [
        "bubblewrap",
        "busybox-static",
        "gcc",
        "curl",
        "ca-certificates",
    ] {
        assert!(block.contains(package), "the quick start lacks {package}");
        assert!(ci.contains(package), ".ci/run lacks {package}");
    }
    // cargo is not on a fresh machine: rustup installs it, in both.
    let rustup =
        "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal";
    assert!(block.contains(rustup), "{block}");
    assert!(ci.contains(rustup), ".ci/run installs Rust otherwise");
    assert!(block.contains(". \"$HOME/.cargo/env\""), "{block}");
    // The Rust version the README names is the one Cargo.toml declares,
    // and .ci/run checks the workspace with it.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {msrv} or newer")),
        "the README names another Rust version than {msrv}"
    );
    assert!(ci.contains("rust-version"), ".ci/run checks the MSRV");
}

/// The quick start's kiln command, run as written (on this test's root).
#[test]
fn readme_quick_start_kiln_command_works_as_written() {
    if !require_bwrap() {
        return;
    }
    if !Path::new("/usr/bin/busybox").exists() {
        eprintln!("skipped: /usr/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let block = quick_start();
    let command = block
        .lines()
        .find_map(|l| {
            l.split(" && ")
                .find(|c| c.starts_with("./target/release/kiln "))
        })
        .expect("the quick start runs ./target/release/kiln");
    let env = TestEnv::new();
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    // This test's own root instead of /tmp/kiln-demo.
    let at = args.iter().position(|a| a == "--root").expect("--root");
    args[at + 1] = env.root().to_str().unwrap().to_owned();
    let checkout = env.work().join("checkout");
    std::fs::create_dir_all(checkout.join("examples")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.nix"),
        checkout.join("examples/hello.nix"),
    )
    .unwrap();
    let out = env
        .kiln()
        .env_remove("KILN_ROOT")
        .current_dir(&checkout)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `&& cat result`
    assert!(
        block.contains(&format!("{command} && cat result")),
        "{block}"
    );
    let greeting = std::fs::read_to_string(checkout.join("result")).unwrap();
    assert_eq!(greeting, "Hello from hello, built in a kiln sandbox\n");
}
