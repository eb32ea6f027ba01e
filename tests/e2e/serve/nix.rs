//! Real Nix 2.8 on either side of the serve protocol: kiln's client
//! talking to `nix-store --serve --write`, and `nix copy` through an `ssh`
//! that runs `kiln store serve --stdio --write`.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kiln_store::StorePath;
use kiln_store::store::Store;

use super::{connect, kiln_serve, open};
use crate::cache::kit::{need, nix, nix_command, nix_ok};
use crate::kit::TestEnv;

const NIX_STORE_DIR: &str = "/nix/store";

/// A tree (a file, an executable, a symlink, a 300 KB file) and a text
/// file that refers to it, added to `store`: `[tree, text]` in reference order.
fn two_paths(env: &TestEnv, store: &Store) -> Vec<StorePath> {
    let tree = env.work().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/run"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(tree.join("bin/run"), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(tree.join("data"), vec![7u8; 300_000]).unwrap();
    std::os::unix::fs::symlink("bin/run", tree.join("link")).unwrap();
    let tree = store.add_path(&tree, "tree").unwrap();
    let text = format!("uses {}", store.print_path(&tree));
    let refs = BTreeSet::from([tree.clone()]);
    let text = store.add_text("uses-tree", text.as_bytes(), &refs).unwrap();
    vec![tree, text]
}

/// `kiln store verify --check-contents` on the `/nix/store` store at `env`.
fn assert_consistent(env: &TestEnv) {
    let out = env
        .kiln()
        .env("KILN_STORE_DIR", NIX_STORE_DIR)
        .args(["store", "verify", "--check-contents"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "store verify failed:\n{stderr}");
}

/// `nix-store -q --hash PATH` on the Nix store at `root`, parsed.
fn nix_hash(root: &Path, path: &str) -> kiln_store::Hash {
    let store = root.to_str().unwrap();
    let printed = nix_ok(root, &["nix-store", "--store", store, "-q", "--hash", path]);
    kiln_store::Hash::parse(printed.trim(), None).unwrap()
}

/// `nix-store --serve [--write]` on the Nix store at `root`.
fn nix_serve(root: &Path, write: bool) -> std::process::Command {
    let mut cmd = nix_command(root, "nix-store");
    cmd.arg("--store").arg(root).arg("--serve");
    if write {
        cmd.arg("--write");
    }
    cmd
}

#[test]
fn kiln_copies_a_closure_to_and_from_nix_store_serve() {
    if !need("nix-store") {
        return;
    }
    let env = TestEnv::new();
    let local = open(&env.root(), NIX_STORE_DIR);
    let paths = two_paths(&env, &local);
    let nix_root = env.dir.path().join("nix-remote");
    // Without --write Nix refuses the import, and kiln says so.
    let mut client = connect(nix_serve(&nix_root, false), NIX_STORE_DIR);
    assert!(client.copy_to(&local, &paths).is_err());
    drop(client);
    let mut client = connect(nix_serve(&nix_root, true), NIX_STORE_DIR);
    client.copy_to(&local, &paths).unwrap();
    assert_eq!(
        client.query_valid_paths(&paths).unwrap(),
        paths.iter().cloned().collect()
    );
    for path in &paths {
        let ours = local.path_info(path).unwrap().unwrap().nar_hash;
        assert_eq!(nix_hash(&nix_root, &local.print_path(path)), ours);
    }
    // Nix's references, as kiln sent them.
    let store = nix_root.to_str().unwrap();
    let refs = nix_ok(
        &nix_root,
        &[
            "nix-store",
            "--store",
            store,
            "-q",
            "--references",
            &local.print_path(&paths[1]),
        ],
    );
    assert_eq!(refs.trim(), local.print_path(&paths[0]));
    drop(client);

    // Back into a second, empty kiln store: the whole closure, verified.
    let other = TestEnv::new();
    let back = open(&other.root(), NIX_STORE_DIR);
    let mut client = connect(nix_serve(&nix_root, false), NIX_STORE_DIR);
    client.copy_from(&back, &paths[1..]).unwrap();
    for path in &paths {
        let info = back.path_info(path).unwrap().expect("copied back");
        assert_eq!(
            info.nar_hash,
            local.path_info(path).unwrap().unwrap().nar_hash
        );
    }
    assert_eq!(
        std::fs::read(back.real_path(&paths[0]).join("data")).unwrap(),
        vec![7u8; 300_000]
    );
    assert_consistent(&other);
}

/// A directory with an `ssh` that ignores its arguments (host, options,
/// `nix-store --serve --write`) and runs `kiln store serve --stdio --write`
/// on `root`, as a remote host with kiln would.
fn fake_ssh(env: &TestEnv, root: &Path) -> std::path::PathBuf {
    let bin = env.dir.path().join("fake-ssh");
    std::fs::create_dir_all(&bin).unwrap();
    let serve = kiln_serve(root, NIX_STORE_DIR, true);
    let line: Vec<String> = std::iter::once(serve.get_program())
        .chain(serve.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let script = format!("#!/bin/sh\nexec {}\n", line.join(" "));
    std::fs::write(bin.join("ssh"), script).unwrap();
    std::fs::set_permissions(bin.join("ssh"), PermissionsExt::from_mode(0o755)).unwrap();
    bin
}

/// `nix --extra-experimental-features nix-command ARGS` on the Nix store
/// at `root`, with `bin` (the fake `ssh`) first in PATH.
fn nix_via_ssh(root: &Path, bin: &Path, args: &[&str]) {
    let path_var = format!("PATH={}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut all = vec![
        "env",
        &path_var,
        "nix",
        "--extra-experimental-features",
        "nix-command",
    ];
    all.extend_from_slice(args);
    let out = nix(root, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nix_copy_over_ssh_to_and_from_kiln_store_serve() {
    if !need("nix-store") || !need("nix") {
        return;
    }
    let env = TestEnv::new();
    // The path starts in a Nix store.
    let nix_root = env.dir.path().join("nix-local");
    let src = env.work().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a"), "a\n").unwrap();
    std::fs::write(src.join("big"), vec![3u8; 200_000]).unwrap();
    let store = nix_root.to_str().unwrap();
    let added = nix_ok(
        &nix_root,
        &[
            "nix-store",
            "--store",
            store,
            "--add",
            src.to_str().unwrap(),
        ],
    );
    let added = added.trim();
    let bin = fake_ssh(&env, &env.root());
    nix_via_ssh(
        &nix_root,
        &bin,
        &["copy", "--store", store, "--to", "ssh://kiln-host", added],
    );
    let kiln = open(&env.root(), NIX_STORE_DIR);
    let path = kiln.store_dir().parse_path(added).unwrap();
    let info = kiln
        .path_info(&path)
        .unwrap()
        .expect("nix copy --to put it in kiln's store");
    assert_eq!(info.nar_hash, nix_hash(&nix_root, added));
    assert_eq!(
        std::fs::read(kiln.real_path(&path).join("sub/a")).unwrap(),
        b"a\n"
    );
    assert_consistent(&env);

    // And back, into an empty Nix store, which checks the NAR hash.
    let fresh = env.dir.path().join("nix-fresh");
    let fresh_store = fresh.to_str().unwrap();
    nix_via_ssh(
        &fresh,
        &bin,
        &[
            "copy",
            "--store",
            fresh_store,
            "--from",
            "ssh://kiln-host",
            "--no-check-sigs",
            added,
        ],
    );
    assert_eq!(nix_hash(&fresh, added), info.nar_hash);
    let verify = nix(
        &fresh,
        &[
            "nix-store",
            "--store",
            fresh_store,
            "--verify",
            "--check-contents",
        ],
    );
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
