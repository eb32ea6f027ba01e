//! `kiln key`: Nix-format ed25519 keys, interchangeable with Nix 2.8's.

use std::os::unix::fs::PermissionsExt;

use crate::kit::{TestEnv, which};

#[test]
fn generate_writes_a_private_secret_and_a_public_key() {
    let env = TestEnv::new();
    env.ok(&["key", "generate", "ci-1", "--out-dir", "."]);
    let sec = env.work().join("ci-1.sec");
    let public = env.work().join("ci-1.pub");
    let mode = std::fs::metadata(&sec).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the secret key must be readable by its owner only"
    );
    let sec_text = std::fs::read_to_string(&sec).unwrap();
    let pub_text = std::fs::read_to_string(&public).unwrap();
    assert!(sec_text.starts_with("ci-1:"), "{sec_text}");
    assert!(pub_text.starts_with("ci-1:"), "{pub_text}");
    // `key public` derives the same public key from the secret one.
    assert_eq!(env.ok(&["key", "public", "ci-1.sec"]), pub_text);
    // Never overwrite a key.
    let err = env.fails(&["key", "generate", "ci-1", "--out-dir", "."], 1);
    assert!(err.contains("exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&sec).unwrap(), sec_text);
    // A bad name or a bad file is the user's input.
    env.fails(&["key", "generate", "a:b"], 2);
    env.write("bad.sec", "ci-1:AAAA\n");
    let err = env.fails(&["key", "public", "bad.sec"], 2);
    assert!(err.contains("bytes"), "{err}");
}

/// Keys made by either tool work in the other: Nix's key loads in kiln
/// with the same public half, and Nix signs and verifies a path with
/// kiln's key.
#[test]
fn keys_interoperate_with_nix() {
    let (Some(_), Some(_)) = (which("nix-store"), which("nix")) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Nix 2.8 (nix-store, nix) is missing under CI");
        }
        eprintln!("skipped: Nix is not installed");
        return;
    };
    let env = TestEnv::new();
    let nix = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .env("NIX_REMOTE", "")
            .current_dir(env.work())
            .output()
            .expect("run nix");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    nix(&[
        "nix-store",
        "--generate-binary-cache-key",
        "nix-1",
        "nix.sec",
        "nix.pub",
    ]);
    let nix_pub = std::fs::read_to_string(env.work().join("nix.pub")).unwrap();
    assert_eq!(env.ok(&["key", "public", "nix.sec"]).trim(), nix_pub.trim());

    env.ok(&["key", "generate", "kiln-1"]);
    let kiln_pub = std::fs::read_to_string(env.work().join("kiln-1.pub")).unwrap();
    let store = env.dir.path().join("nix-store");
    let store = store.to_str().unwrap();
    env.write("f", "hello\n");
    let path = nix(&["nix-store", "--store", store, "--add", "f"]);
    let path = path.trim();
    let exp = "--extra-experimental-features";
    nix(&[
        "nix",
        exp,
        "nix-command",
        "store",
        "sign",
        "--store",
        store,
        "-k",
        "kiln-1.sec",
        path,
    ]);
    // Nix checks the signature with kiln's public key.
    nix(&[
        "nix",
        exp,
        "nix-command",
        "store",
        "verify",
        "--store",
        store,
        "--no-contents",
        "--sigs-needed",
        "1",
        "--trusted-public-keys",
        kiln_pub.trim(),
        path,
    ]);
}
