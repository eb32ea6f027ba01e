//! Push and fetch through a directory and through nginx; trust; down and
//! slow caches; priority; substitution in `kiln build`.

use std::net::TcpListener;

use super::kit::{Nginx, closure, field, key, narinfo_file, need, run, valid};
use crate::kit::{DrvKit, Spec, TestEnv};

#[test]
fn push_writes_nix_s_format_and_fetch_installs_the_closure() {
    let env = TestEnv::new();
    let public = key(&env, "ci-1");
    let (drv, tree) = closure(&env, None);
    let cache = env.dir.path().join("cache");
    let dest = format!("file://{}", cache.display());
    env.ok(&[
        "cache",
        "push",
        &dest,
        &drv,
        &tree,
        "--key-file",
        "ci-1.sec",
    ]);
    assert_eq!(
        std::fs::read_to_string(cache.join("nix-cache-info")).unwrap(),
        "StoreDir: /kiln/store\nWantMassQuery: 1\n"
    );
    // Every field, in Nix's order.
    let text = std::fs::read_to_string(narinfo_file(&cache, &drv)).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "StorePath",
            "URL",
            "Compression",
            "FileHash",
            "FileSize",
            "NarHash",
            "NarSize",
            "References",
            "Sig",
            "CA"
        ],
        "{text}"
    );
    assert_eq!(field(&text, "StorePath"), drv);
    assert_eq!(field(&text, "Compression"), "zstd");
    let url = field(&text, "URL");
    assert!(
        url.starts_with("nar/") && url.ends_with(".nar.zst"),
        "{url}"
    );
    assert_eq!(
        &url[4..56],
        field(&text, "FileHash").strip_prefix("sha256:").unwrap()
    );
    let nar = std::fs::read(cache.join(&url)).unwrap();
    assert_eq!(nar.len().to_string(), field(&text, "FileSize"));
    assert!(field(&text, "References").ends_with("-b"), "{text}");
    assert!(field(&text, "Sig").starts_with("ci-1:"));
    assert!(field(&text, "CA").starts_with("text:sha256:"));
    // Pushing again uploads nothing.
    let out = env
        .kiln()
        .args(["cache", "push", &dest, &drv, &tree, "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pushed"].as_array().unwrap().len(), 0);
    assert_eq!(json["present"], 4);

    // Another store fetches the closure, references and all.
    let other = TestEnv::new();
    other.ok(&[
        "cache",
        "fetch",
        &drv,
        &tree,
        "--substituters",
        &dest,
        "--trusted-public-keys",
        &public,
    ]);
    assert!(valid(&other, &drv) && valid(&other, &tree));
    let refs = other.ok(&["store", "query", "--requisites", &drv]);
    assert_eq!(refs.lines().count(), 3, "{refs}");
    other.assert_store_consistent();
    let info = other.ok(&["store", "path-info", "--json", &tree]);
    let mine = env.ok(&["store", "path-info", "--json", &tree]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&info).unwrap(),
        serde_json::from_str(&mine).unwrap(),
    );
    assert_eq!(a[0]["narHash"], b[0]["narHash"]);
}

#[test]
fn unsigned_and_untrusted_paths_are_refused() {
    let env = TestEnv::new();
    key(&env, "ci-1");
    let other_key = key(&env, "ci-2");
    let (_, tree) = closure(&env, None);
    let unsigned = format!("file://{}", env.dir.path().join("unsigned").display());
    let signed = format!("file://{}", env.dir.path().join("signed").display());
    let (ok, err) = run(&env, &["cache", "push", &unsigned, &tree]);
    assert!(ok && err.contains("unsigned"), "{err}");
    env.ok(&["cache", "push", &signed, &tree, "--key-file", "ci-1.sec"]);
    let other = TestEnv::new();
    let (ok, err) = run(
        &other,
        &[
            "cache",
            "fetch",
            &tree,
            "--substituters",
            &unsigned,
            "--trusted-public-keys",
            &other_key,
        ],
    );
    assert!(!ok && err.contains("not signed"), "{err}");
    // Signed, but by a key this store does not trust.
    let (ok, err) = run(
        &other,
        &[
            "cache",
            "fetch",
            &tree,
            "--substituters",
            &signed,
            "--trusted-public-keys",
            &other_key,
        ],
    );
    assert!(
        !ok && err.contains("no trusted key is named \"ci-1\""),
        "{err}"
    );
    // A key of the same name that is not the signer's.
    let impostor = TestEnv::new();
    let same_name = key(&impostor, "ci-1");
    let (ok, err) = run(
        &other,
        &[
            "cache",
            "fetch",
            &tree,
            "--substituters",
            &signed,
            "--trusted-public-keys",
            &same_name,
        ],
    );
    assert!(!ok && err.contains("does not match"), "{err}");
    assert!(!valid(&other, &tree));
    other.assert_store_consistent();
}

#[test]
fn down_and_silent_caches_are_skipped_with_a_warning_and_priority_is_kept() {
    let env = TestEnv::new();
    let public = key(&env, "ci-1");
    let (_, tree) = closure(&env, None);
    let first = env.dir.path().join("first");
    let second = env.dir.path().join("second");
    for dir in [&first, &second] {
        env.ok(&[
            "cache",
            "push",
            dir.to_str().unwrap(),
            &tree,
            "--key-file",
            "ci-1.sec",
        ]);
    }
    // The second cache says it is asked first.
    std::fs::write(
        second.join("nix-cache-info"),
        "StoreDir: /kiln/store\nPriority: 10\n",
    )
    .unwrap();
    // A server that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let other = TestEnv::new();
    std::fs::create_dir_all(other.home().join(".config/kiln")).unwrap();
    std::fs::write(
        other.home().join(".config/kiln/kiln.conf"),
        format!(
            "# Nix's setting names\nstalled-download-timeout = 2\nconnect-timeout = 2\n\
             trusted-public-keys = {public}\n"
        ),
    )
    .unwrap();
    let urls = format!(
        "http://127.0.0.1:1 {silent_url} file://{} file://{}",
        first.display(),
        second.display()
    );
    let (ok, err) = run(&other, &["cache", "fetch", &tree, "--substituters", &urls]);
    assert!(ok, "{err}");
    assert!(
        err.contains("skipping the binary cache http://127.0.0.1:1"),
        "{err}"
    );
    assert!(
        err.contains(&format!("skipping the binary cache {silent_url}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("from 'file://{}'", second.display())),
        "priority 10 is asked before the default 50:\n{err}"
    );
    assert!(valid(&other, &tree));
    drop(silent);
}

#[test]
fn nginx_takes_pushes_by_put_and_serves_substitution() {
    if !need("nginx") {
        return;
    }
    let env = TestEnv::new();
    let public = key(&env, "ci-1");
    let (drv, tree) = closure(&env, None);
    let nginx = Nginx::start(&env.dir.path().join("nginx"));
    let url = nginx.url("/cache");
    for compression in ["xz", "none"] {
        let dest = format!("{url}-{compression}/");
        env.ok(&[
            "cache",
            "push",
            &dest,
            &drv,
            &tree,
            "--key-file",
            "ci-1.sec",
            "--compression",
            compression,
        ]);
        let dir = nginx.root.join(format!("cache-{compression}"));
        let text = std::fs::read_to_string(narinfo_file(&dir, &tree)).unwrap();
        assert_eq!(field(&text, "Compression"), compression);
        let other = TestEnv::new();
        other.ok(&[
            "cache",
            "fetch",
            &drv,
            &tree,
            "--substituters",
            &dest,
            "--trusted-public-keys",
            &public,
        ]);
        assert!(valid(&other, &drv) && valid(&other, &tree));
        other.assert_store_consistent();
    }
}

/// `kiln build --substituters`: what a cache has is fetched, not built;
/// a corrupt NAR is refused and the path built instead.
#[test]
fn build_substitutes_what_caches_have_and_builds_the_rest() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let dep = kit.write(Spec::new("dep", "echo BUILDING-dep; echo dep > $out"));
    let dep_out = kit.path(&kit.out(&dep, "out"));
    let script = format!("echo BUILDING-top; echo {dep_out} > $out");
    let top = kit.write(Spec {
        inputs: &[&dep],
        ..Spec::new("top", &script)
    });
    kit.build_ok(&top);
    let public = key(&kit.env, "ci-1");
    let cache = kit.env.dir.path().join("cache");
    let top_out = kit.path(&kit.out(&top, "out"));
    kit.env.ok(&[
        "cache",
        "push",
        cache.to_str().unwrap(),
        &top_out,
        "--key-file",
        "ci-1.sec",
    ]);

    // A second machine with the same derivations.
    let mut other = DrvKit::new();
    let dep2 = other.write(Spec::new("dep", "echo BUILDING-dep; echo dep > $out"));
    let top2 = other.write(Spec {
        inputs: &[&dep2],
        ..Spec::new("top", &script)
    });
    assert_eq!(top2, top);
    let subst = format!("file://{}", cache.display());
    let out = other.build(
        &top,
        &[
            "-L",
            "--substituters",
            &subst,
            "--trusted-public-keys",
            &public,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("BUILDING-"), "nothing is built:\n{err}");
    assert!(err.contains("copied path"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), top_out);
    other.assert_store_consistent();

    // A third machine, and the cache's NAR of top is corrupt: top is
    // built, dep is still fetched (a new round of lookups below top).
    let mut third = DrvKit::new();
    let dep3 = third.write(Spec::new("dep", "echo BUILDING-dep; echo dep > $out"));
    third.write(Spec {
        inputs: &[&dep3],
        ..Spec::new("top", &script)
    });
    let text = std::fs::read_to_string(narinfo_file(&cache, &top_out)).unwrap();
    let nar = cache.join(field(&text, "URL"));
    let mut bytes = std::fs::read(&nar).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 7);
    std::fs::write(&nar, bytes).unwrap();
    let out = third.build(
        &top,
        &[
            "-L",
            "--option",
            "substituters",
            &subst,
            "--option",
            "trusted-public-keys",
            &public,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("not substituting"), "{err}");
    assert!(err.contains("BUILDING-top"), "top is built:\n{err}");
    assert!(
        !err.contains("BUILDING-dep"),
        "dep comes from the cache:\n{err}"
    );
    third.assert_store_consistent();
}
