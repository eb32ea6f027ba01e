//! `kiln store verify --repair` and `kiln build` of outputs deleted or
//! corrupted by hand: rebuilt from their derivation, never a dangling
//! `result`; paths no derivation builds are reported, not invented.

use std::os::unix::fs::PermissionsExt;

use crate::kit::{DrvKit, Spec};

fn make_writable(path: &std::path::Path) {
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Remove a store tree written read-only.
fn remove_by_hand(path: &std::path::Path) {
    if path.is_dir() {
        for entry in walk(path) {
            if entry.is_dir() {
                make_writable(&entry);
            }
        }
        std::fs::remove_dir_all(path).unwrap();
    } else {
        std::fs::remove_file(path).unwrap();
    }
}

fn walk(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![path.to_path_buf()];
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            all.extend(walk(&entry.unwrap().path()));
        }
    }
    all
}

#[test]
fn build_rebuilds_an_output_deleted_by_hand_and_links_a_real_result() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "deleted",
        "mkdir -p $out/bin; echo hello > $out/bin/greeting",
    ));
    let drv_path = kit.path(&drv);
    kit.env.ok(&["build", &drv_path]);
    let real = kit.real(&drv);
    remove_by_hand(&real);
    std::fs::remove_file(kit.env.work().join("result")).unwrap();

    // The output is still registered; the build must notice and rebuild.
    let out = kit.env.run(&["build", &drv_path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let result = kit.env.work().join("result");
    assert_eq!(
        std::fs::read_to_string(result.join("bin/greeting"))
            .unwrap_or_else(|e| panic!("result dangles ({e}): {stderr}")),
        "hello\n"
    );
    kit.env.ok(&["store", "verify", "--check-contents"]);
}

#[test]
fn build_refuses_clearly_when_an_input_source_was_deleted_by_hand() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let src = kit.env.write("input.txt", "input\n");
    let src = kit.store.add_path(&src, "input.txt").unwrap();
    let src_printed = kit.path(&src);
    let drv = kit.write(Spec {
        env: &[("src", &src_printed)],
        srcs: &[&src],
        ..Spec::new("uses-src", "cat $src > $out")
    });
    std::fs::remove_file(kit.store.real_path(&src)).unwrap();
    let stderr = kit.build_fails(&drv, &[]);
    assert!(
        stderr.contains("registered as valid but its files are missing")
            && stderr.contains("kiln store verify --repair"),
        "{stderr}"
    );
    assert!(!kit.env.work().join("result").exists());
}

#[test]
fn repair_rebuilds_corrupted_and_deleted_outputs_and_names_what_it_cannot() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let corrupt = kit.write(Spec::new(
        "corrupt",
        "mkdir -p $out/sub; echo original > $out/sub/file",
    ));
    let deleted = kit.write(Spec::new("deleted", "echo gone > $out"));
    let deleted_out = kit.path(&kit.out(&deleted, "out"));
    let dependent = kit.write(Spec {
        env: &[("dep", &deleted_out)],
        inputs: &[&deleted],
        ..Spec::new("dependent", "echo $dep > $out")
    });
    for drv in [&corrupt, &dependent] {
        kit.build_ok(drv);
    }
    let added = kit.env.write("added.txt", "added by hand\n");
    let added = kit.store.add_path(&added, "added.txt").unwrap();
    kit.env.ok(&["store", "verify", "--check-contents"]);

    // Same-size corruption with canonical metadata: only the hash shows it.
    let file = kit.real(&corrupt).join("sub/file");
    make_writable(&file);
    std::fs::write(&file, "ORIGINAL\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let one = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
    std::fs::File::open(&file)
        .unwrap()
        .set_modified(one)
        .unwrap();
    remove_by_hand(&kit.real(&deleted));
    std::fs::remove_file(kit.store.real_path(&added)).unwrap();

    let out = kit
        .env
        .run(&["store", "verify", "--check-contents", "--repair", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The added file cannot come back: still damaged, exit 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let repairs = report["repairs"].as_array().unwrap();
    let by_path = |p: &str| {
        repairs
            .iter()
            .find(|r| r["path"] == p)
            .unwrap_or_else(|| panic!("no repair entry for {p}: {report}"))
    };
    let corrupt_out = kit.path(&kit.out(&corrupt, "out"));
    assert_eq!(by_path(&corrupt_out)["how"], "rebuilt", "{report}");
    assert_eq!(by_path(&corrupt_out)["deriver"], kit.path(&corrupt));
    assert_eq!(by_path(&deleted_out)["how"], "rebuilt", "{report}");
    let cannot = by_path(&kit.path(&added));
    assert_eq!(cannot["repaired"], false);
    assert!(
        cannot["reason"]
            .as_str()
            .unwrap()
            .contains("add the same files again"),
        "{report}"
    );
    // After the repair only the added file is damaged.
    let left: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![kit.path(&added)], "{report}");
    assert_eq!(
        std::fs::read_to_string(kit.real(&corrupt).join("sub/file")).unwrap(),
        "original\n"
    );
    assert_eq!(
        std::fs::read_to_string(kit.real(&deleted)).unwrap(),
        "gone\n"
    );

    // Adding the same file again puts it back; then all is intact.
    let again = kit.env.write("added.txt", "added by hand\n");
    kit.env.ok(&["store", "add", again.to_str().unwrap()]);
    kit.env.ok(&["store", "verify", "--check-contents"]);
}

#[test]
fn repair_without_a_deriver_on_disk_keeps_the_damaged_files() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new("orphan", "echo content > $out"));
    kit.build_ok(&drv);
    // The derivation file itself goes: nothing can rebuild the output.
    let drv_real = kit.store.real_path(&drv);
    std::fs::remove_file(&drv_real).unwrap();
    let out_real = kit.real(&drv);
    make_writable(&out_real);
    std::fs::write(&out_real, "CONTENT\n").unwrap();
    std::fs::set_permissions(&out_real, std::fs::Permissions::from_mode(0o444)).unwrap();
    let one = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
    std::fs::File::open(&out_real)
        .unwrap()
        .set_modified(one)
        .unwrap();

    let stderr = kit
        .env
        .fails(&["store", "verify", "--check-contents", "--repair"], 1);
    assert!(
        stderr.contains(&format!(
            "cannot repair {}: its derivation {} is not in the store any more",
            kit.path(&kit.out(&drv, "out")),
            kit.path(&drv)
        )),
        "{stderr}"
    );
    // The damaged files were not moved away.
    assert_eq!(std::fs::read_to_string(&out_real).unwrap(), "CONTENT\n");
}
