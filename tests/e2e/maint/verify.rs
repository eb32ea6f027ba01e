//! `kiln store verify`: a file corrupted and a path deleted by hand are
//! found; an intact store passes.

use std::os::unix::fs::PermissionsExt;

use crate::kit::TestEnv;

fn make_writable(path: &std::path::Path) {
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The physical location of a logical store path printed by kiln.
fn real(env: &TestEnv, printed: &str) -> std::path::PathBuf {
    env.root().join(printed.trim().trim_start_matches('/'))
}

#[test]
fn verify_finds_a_corrupted_file_and_a_deleted_path() {
    let env = TestEnv::new();
    env.write("tree/a", "alpha\n");
    env.write("tree/sub/b", "beta\n");
    env.write("gone", "soon deleted\n");
    env.write("other", "stays\n");
    let tree = env.ok(&["store", "add", "tree"]);
    let gone = env.ok(&["store", "add", "gone"]);
    env.ok(&["store", "add", "other"]);
    let clean = env.ok(&["store", "verify", "--check-contents", "--json"]);
    let clean: serde_json::Value = serde_json::from_str(&clean).unwrap();
    assert_eq!(clean["checked"], 3);
    assert_eq!(clean["problems"], serde_json::json!([]));

    // Corrupt one file (same size, so only the hash tells), keep its
    // metadata canonical, and delete another path.
    let file = real(&env, &tree).join("sub/b");
    make_writable(&file);
    std::fs::write(&file, "BETA\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let one = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
    std::fs::File::open(&file)
        .unwrap()
        .set_modified(one)
        .unwrap();
    std::fs::remove_file(real(&env, &gone)).unwrap();

    // The quick check sees the deleted path only.
    let stderr = env.fails(&["store", "verify"], 1);
    assert!(
        stderr.contains(&format!("{}: registered as valid but missing", gone.trim())),
        "{stderr}"
    );
    assert!(!stderr.contains(tree.trim()), "{stderr}");

    let stderr = env.fails(&["store", "verify", "--check-contents"], 1);
    assert!(
        stderr.contains(&format!("{}: contents changed", tree.trim())),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 of 3 valid paths are damaged"),
        "{stderr}"
    );

    let out = env.run(&["store", "verify", "--check-contents", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    problems.sort();
    let mut want = vec![
        (tree.trim().to_string(), "modified".to_string()),
        (gone.trim().to_string(), "missing".to_string()),
    ];
    want.sort();
    assert_eq!(problems, want);
}

#[test]
fn verify_reports_metadata_and_strays_without_failing_on_strays() {
    let env = TestEnv::new();
    env.write("f", "data\n");
    let path = env.ok(&["store", "add", "f"]);
    let store_dir = env.root().join("kiln/store");
    std::fs::write(store_dir.join("not-a-path"), "x").unwrap();
    let out = env.run(&["store", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: stray"), "{stderr}");
    assert!(stderr.contains("not-a-path: not a store path"), "{stderr}");

    let file = real(&env, &path);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let stderr = env.fails(&["store", "verify"], 1);
    assert!(stderr.contains("mode is 4755, not 0555"), "{stderr}");
}
