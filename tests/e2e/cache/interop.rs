//! Real Nix 2.8 on both sides of a cache: Nix substitutes a closure kiln
//! pushed to nginx, with the same NAR hashes; kiln fetches a closure that
//! `nix copy --to file://…` wrote with xz.

use super::kit::{Nginx, closure, key, need, nix_ok};
use crate::kit::TestEnv;

#[test]
fn nix_substitutes_a_closure_kiln_pushed_to_nginx() {
    if !need("nginx") || !need("nix-store") {
        return;
    }
    let env = TestEnv::new();
    let public = key(&env, "ci-1");
    let (drv, tree) = closure(&env, Some("/nix/store"));
    let nginx = Nginx::start(&env.dir.path().join("nginx"));
    let url = nginx.url("/nixcache");
    for compression in ["zstd", "xz"] {
        let dest = format!("{url}-{compression}");
        let out = env
            .kiln()
            .env("KILN_STORE_DIR", "/nix/store")
            .args([
                "cache",
                "push",
                &dest,
                &drv,
                &tree,
                "--key-file",
                "ci-1.sec",
                "--compression",
                compression,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The text file the .drv refers to, and so its closure, and the tree.
        let requisites = env
            .kiln()
            .env("KILN_STORE_DIR", "/nix/store")
            .args(["store", "query", "--requisites", &drv])
            .output()
            .unwrap();
        let requisites = String::from_utf8(requisites.stdout).unwrap();
        let b = requisites
            .lines()
            .find(|l| l.ends_with("-b"))
            .unwrap()
            .to_string();
        let root = env.dir.path().join(format!("nix-{compression}"));
        let store = root.to_str().unwrap();
        nix_ok(
            &root,
            &[
                "nix-store",
                "--store",
                store,
                "-r",
                &b,
                &tree,
                "--option",
                "substituters",
                &dest,
                "--option",
                "trusted-public-keys",
                &public,
            ],
        );
        for path in [&b, &tree] {
            let theirs = nix_ok(
                &root,
                &["nix-store", "--store", store, "-q", "--hash", path],
            );
            let ours = env
                .kiln()
                .env("KILN_STORE_DIR", "/nix/store")
                .args(["store", "path-info", "--json", path])
                .output()
                .unwrap();
            let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
            let ours = ours[0]["narHash"].as_str().unwrap().to_string();
            let theirs = theirs.trim();
            // Nix prints sha256:<nix32>; kiln's JSON has the same or SRI.
            let same = ours == theirs
                || kiln_store::Hash::parse(&ours, None).unwrap()
                    == kiln_store::Hash::parse(theirs, None).unwrap();
            assert!(same, "{path}: kiln {ours}, Nix {theirs}");
        }
        let refs = nix_ok(
            &root,
            &["nix-store", "--store", store, "-q", "--references", &b],
        );
        assert!(refs.trim().ends_with("-a"), "{refs}");
        // Nix checks the store it got.
        nix_ok(
            &root,
            &[
                "nix-store",
                "--store",
                store,
                "--verify",
                "--check-contents",
            ],
        );
    }
}

#[test]
fn kiln_fetches_what_nix_copy_wrote_with_xz() {
    if !need("nix-store") {
        return;
    }
    let env = TestEnv::new();
    let root = env.dir.path().join("nix");
    let store = root.to_str().unwrap();
    nix_ok(
        &root,
        &[
            "nix-store",
            "--generate-binary-cache-key",
            "nix-1",
            &format!("{store}/../nix.sec"),
            &format!("{store}/../nix.pub"),
        ],
    );
    let public = std::fs::read_to_string(env.dir.path().join("nix.pub")).unwrap();
    let b = nix_ok(
        &root,
        &[
            "nix-instantiate",
            "--store",
            store,
            "--eval",
            "--read-write-mode",
            "-E",
            r#"builtins.toFile "b" "${builtins.toFile "a" "hello from nix"}""#,
        ],
    );
    let b = b.trim().trim_matches('"').to_string();
    std::fs::write(env.work().join("f"), vec![42u8; 100_000]).unwrap();
    let f = nix_ok(
        &root,
        &[
            "nix-store",
            "--store",
            store,
            "--add",
            env.work().join("f").to_str().unwrap(),
        ],
    );
    let f = f.trim().to_string();
    let cache = env.dir.path().join("cache");
    let to = format!(
        "file://{}?compression=xz&secret-key={}",
        cache.display(),
        env.dir.path().join("nix.sec").display()
    );
    nix_ok(
        &root,
        &[
            "nix",
            "--extra-experimental-features",
            "nix-command",
            "copy",
            "--store",
            store,
            "--to",
            &to,
            &b,
            &f,
        ],
    );
    assert!(std::fs::read_dir(cache.join("nar")).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".nar.xz")
    }));
    let out = env
        .kiln()
        .env("KILN_STORE_DIR", "/nix/store")
        .args([
            "cache",
            "fetch",
            &b,
            &f,
            "--substituters",
            &format!("file://{}", cache.display()),
            "--trusted-public-keys",
            public.trim(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let has = |p: &str| {
        env.kiln()
            .env("KILN_STORE_DIR", "/nix/store")
            .args(["store", "path-info", p])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(has(&b) && has(&f));
    let refs = env
        .kiln()
        .env("KILN_STORE_DIR", "/nix/store")
        .args(["store", "query", "--references", &b])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refs.stdout).trim().ends_with("-a"));
    let verify = env
        .kiln()
        .env("KILN_STORE_DIR", "/nix/store")
        .args(["store", "verify", "--check-contents"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
