//! `builtin:fetchurl` end to end: `kiln build -E 'import <nix/fetchurl.nix>
//! { … }'` against a small HTTP server on 127.0.0.1 started by the test,
//! with `--store-dir /nix/store` so that output paths can be compared with
//! Nix 2.8's.
//!
//! The expected paths were computed once with Nix 2.8.0
//! (`NIX_REMOTE= nix-instantiate --store /tmp/x --eval -E
//! '(import <nix/fetchurl.nix> { … }).outPath'`). A fixed output's path
//! depends only on its name, hash and hash mode, not on the URL, so the
//! random port of the test server does not change them.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use kiln_store::store::{Store, StoreConfig};
use kiln_store::{StoreDir, StorePath};

use crate::kit::{Server, TestEnv, require_bwrap};

/// Served at `/f`; sha256 d8d2c488…
const SERVED: &[u8] = b"served by the kiln test server\n";
const SERVED_SHA256: &str = "d8d2c48879dc0925dc1df143bcad830a6c6eb2203861898a7b4effe02ca57791";
/// Nix 2.8: `{ url = "…/f"; sha256 = SERVED_SHA256; }`.
const SERVED_OUT: &str = "/nix/store/kabwsjddv5bkis733yx60yvjmyb9p1hk-f";

/// Served at `/tool`; the sha256 of its NAR as an executable file.
const TOOL: &[u8] = b"#!/bin/sh\necho hi\n";
const TOOL_NAR_SHA256: &str = "183p8jhjfcpk6kac6hxwp4gzp9brkvkibylz27jfbvgd5kqcq2jy";
/// Nix 2.8: `{ url = "…/tool"; sha256 = TOOL_NAR_SHA256; executable = true; }`.
const TOOL_OUT: &str = "/nix/store/860m3n18i31src977h670af46q751xf4-tool";

/// A local file fetched with `file://`.
const LOCAL: &[u8] = b"a local file\n";
const LOCAL_SHA256: &str = "2b81b06fc5b87c5471f1d8f529f667ebe659f94295323f7c60b503655593939e";
/// Nix 2.8: `{ url = "file:///…/local.txt"; sha256 = LOCAL_SHA256; }`.
const LOCAL_OUT: &str = "/nix/store/nizcgal0xvay115qg8pxxgmcxj0vzbq8-local.txt";

/// The NAR hash of the tree `sub/hello` ("hi\n") + `link -> sub/hello`.
const TREE_NAR_SHA256: &str = "1cabw3qs257dz0pmlx214r7brknxd1j1cfwbs34gqmk4640k10xx";
/// Nix 2.8: `{ url = "…/tree.nar"; sha256 = TREE_NAR_SHA256; unpack = true; }`.
const TREE_OUT: &str = "/nix/store/s96z6hm9sxzm2vxvnfsvss0xzbkd74ws-tree.nar";

const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

/// `kiln --store-dir /nix/store build --no-out-link --print-out-paths -E EXPR`.
fn build(env: &TestEnv, expr: &str) -> std::process::Output {
    let mut cmd = env.kiln();
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.args([
        "--store-dir",
        "/nix/store",
        "build",
        "--no-out-link",
        "--print-out-paths",
        "-E",
        expr,
    ])
    .output()
    .expect("run kiln")
}

fn build_ok(env: &TestEnv, expr: &str) -> String {
    let out = build(env, expr);
    assert!(
        out.status.success(),
        "build of {expr} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Builds `expr`, which fails with Nix's exit `code` (100 a failed
/// download, 102 a hash mismatch, 1 a refusal before the download).
fn build_fails(env: &TestEnv, expr: &str, code: i32) -> String {
    let out = build(env, expr);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected a failure:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn fetchurl(url: &str, extra: &str) -> String {
    format!("import <nix/fetchurl.nix> {{ url = \"{url}\"; {extra} }}")
}

/// Where a `/nix/store/…` path is on disk under the test root.
fn real(env: &TestEnv, path: &str) -> PathBuf {
    env.root().join(path.trim_start_matches('/'))
}

fn store(env: &TestEnv) -> Store {
    Store::open(StoreConfig {
        root: env.root(),
        store_dir: StoreDir::new("/nix/store").unwrap(),
    })
    .unwrap()
}

fn is_valid(env: &TestEnv, path: &str) -> bool {
    let path: StorePath = path.trim_start_matches("/nix/store/").parse().unwrap();
    store(env).is_valid(&path).unwrap()
}

fn assert_store_consistent(env: &TestEnv) {
    let out = env.run(&[
        "--store-dir",
        "/nix/store",
        "store",
        "verify",
        "--check-contents",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "store verify failed:\n{stderr}");
}

#[test]
fn downloads_over_http_to_the_path_nix_computes() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let server = Server::start(vec![("/f", "200 OK", SERVED.to_vec())]);
    let url = server.url("/f");
    let out = build_ok(
        &env,
        &fetchurl(&url, &format!("sha256 = \"{SERVED_SHA256}\";")),
    );
    assert_eq!(out, SERVED_OUT);
    let file = real(&env, SERVED_OUT);
    assert_eq!(std::fs::read(&file).unwrap(), SERVED);
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o7777, 0o444);
    assert!(is_valid(&env, SERVED_OUT));

    // The download's progress is in the build log.
    let log = env.ok(&["--store-dir", "/nix/store", "log", SERVED_OUT]);
    assert!(log.contains(&format!("downloading '{url}'")), "{log}");
    assert!(
        log.contains(&format!("size: {} bytes", SERVED.len())),
        "{log}"
    );
    assert_store_consistent(&env);
}

#[test]
fn redirects_are_followed() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let server = Server::start(vec![
        (
            "/old/f",
            "301 Moved Permanently\r\nLocation: /f",
            Vec::new(),
        ),
        ("/f", "200 OK", SERVED.to_vec()),
    ]);
    let expr = fetchurl(
        &server.url("/old/f"),
        &format!("sha256 = \"{SERVED_SHA256}\";"),
    );
    assert_eq!(build_ok(&env, &expr), SERVED_OUT);
    assert_eq!(std::fs::read(real(&env, SERVED_OUT)).unwrap(), SERVED);
}

#[test]
fn a_wrong_hash_fails_and_registers_nothing() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let server = Server::start(vec![("/f", "200 OK", SERVED.to_vec())]);
    // The hash of the local file's contents, not of what is served.
    let expr = fetchurl(&server.url("/f"), &format!("sha256 = \"{LOCAL_SHA256}\";"));
    let stderr = build_fails(&env, &expr, 102);
    assert!(
        stderr.contains("hash mismatch in fixed-output derivation"),
        "{stderr}"
    );
    // Both hashes are named, as SRI.
    assert!(
        stderr.contains("sha256-2NLEiHncCSXcHfFDvK2DCmxusiA4YYmKe07/4Cyld5E="),
        "{stderr}"
    );
    let wrong_out: String = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .expect("the mismatch names the path")
        .trim()
        .to_string();
    assert!(!is_valid(&env, &wrong_out));
    assert!(!real(&env, &wrong_out).exists());
    assert_store_consistent(&env);
}

#[test]
fn http_errors_fail_with_the_url_and_status() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let server = Server::start(Vec::new());
    let url = server.url("/f");
    let stderr = build_fails(
        &env,
        &fetchurl(&url, &format!("sha256 = \"{SERVED_SHA256}\";")),
        100,
    );
    assert!(
        stderr.contains(&format!(
            "unable to download '{url}': HTTP error 404 (Not Found)"
        )),
        "{stderr}"
    );
    assert!(!is_valid(&env, SERVED_OUT));
    assert!(!real(&env, SERVED_OUT).exists());
    assert_store_consistent(&env);
}

#[test]
fn executable_gives_mode_0555_and_the_recursive_hash() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let server = Server::start(vec![("/tool", "200 OK", TOOL.to_vec())]);
    let expr = fetchurl(
        &server.url("/tool"),
        &format!("sha256 = \"{TOOL_NAR_SHA256}\"; executable = true;"),
    );
    assert_eq!(build_ok(&env, &expr), TOOL_OUT);
    let file = real(&env, TOOL_OUT);
    assert_eq!(std::fs::read(&file).unwrap(), TOOL);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o555);
    let path: StorePath = TOOL_OUT.trim_start_matches("/nix/store/").parse().unwrap();
    let info = store(&env).path_info(&path).unwrap().unwrap();
    assert_eq!(
        info.ca.as_deref(),
        Some(format!("fixed:r:sha256:{TOOL_NAR_SHA256}").as_str())
    );
}

#[test]
fn file_urls_are_copied() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let local = env.write("local.txt", LOCAL);
    let expr = fetchurl(
        &format!("file://{}", local.display()),
        &format!("sha256 = \"{LOCAL_SHA256}\";"),
    );
    assert_eq!(build_ok(&env, &expr), LOCAL_OUT);
    assert_eq!(std::fs::read(real(&env, LOCAL_OUT)).unwrap(), LOCAL);
}

#[test]
fn a_run_of_downloads_only_needs_no_bubblewrap() {
    // No `require_bwrap`: this is the case where it is not needed.
    let env = TestEnv::new();
    let local = env.write("local.txt", LOCAL);
    let expr = fetchurl(
        &format!("file://{}", local.display()),
        &format!("sha256 = \"{LOCAL_SHA256}\";"),
    );
    let empty = env.work().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = env
        .kiln()
        .env("PATH", &empty)
        .args([
            "--store-dir",
            "/nix/store",
            "build",
            "--no-out-link",
            "--print-out-paths",
            "-E",
            &expr,
        ])
        .output()
        .expect("run kiln");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_OUT);
    assert_eq!(std::fs::read(real(&env, LOCAL_OUT)).unwrap(), LOCAL);
}

#[test]
fn unpack_restores_a_served_nar() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let tree = env.work().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/hello"), b"hi\n").unwrap();
    std::os::unix::fs::symlink("sub/hello", tree.join("link")).unwrap();
    let mut nar = Vec::new();
    kiln_store::nar::dump_path(&tree, &mut nar).unwrap();
    let server = Server::start(vec![("/tree.nar", "200 OK", nar)]);
    let expr = fetchurl(
        &server.url("/tree.nar"),
        &format!("sha256 = \"{TREE_NAR_SHA256}\"; unpack = true;"),
    );
    assert_eq!(build_ok(&env, &expr), TREE_OUT);
    let out = real(&env, TREE_OUT);
    assert_eq!(std::fs::read(out.join("sub/hello")).unwrap(), b"hi\n");
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        PathBuf::from("sub/hello")
    );
}

#[test]
fn only_fixed_output_derivations_may_use_it() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let expr = r#"derivation {
        name = "not-fixed"; system = "builtin"; builder = "builtin:fetchurl";
        url = "file:///dev/null";
    }"#;
    let stderr = build_fails(&env, expr, 1);
    assert!(
        stderr.contains("'builtin:fetchurl' must be a fixed-output derivation"),
        "{stderr}"
    );
}
