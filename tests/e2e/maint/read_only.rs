//! Read-only commands work for a user who cannot write the store: a
//! root-owned store is queried by `nobody` (through `setpriv`), with the
//! database opened read-only instead of failing with SQLITE_READONLY.

use std::collections::BTreeSet;
use std::process::Output;

use kiln_store::StoreDir;
use kiln_store::store::{Store, StoreConfig};

use crate::kit::TestEnv;

/// Run kiln as uid/gid 65534 on `env`'s root, or `None` (skipped) when
/// the tests do not run as root or setpriv is missing.
fn as_nobody(env: &TestEnv, home: &std::path::Path, args: &[&str]) -> Option<Output> {
    let setpriv = crate::kit::which("setpriv")?;
    let mut cmd = std::process::Command::new(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_kiln"));
    for var in crate::kit::KILN_ENV_VARS {
        cmd.env_remove(var);
    }
    Some(
        cmd.env("HOME", home)
            .current_dir(home)
            .arg("--root")
            .arg(env.root())
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn nobody_reads_a_root_owned_store() {
    if unsafe { libc::geteuid() } != 0 || crate::kit::which("setpriv").is_none() {
        eprintln!("skipped: needs root and setpriv to make a root-owned store");
        return;
    }
    let env = TestEnv::new();
    let (dep, user) = {
        let store = Store::open(StoreConfig {
            root: env.root(),
            store_dir: StoreDir::new("/kiln/store").unwrap(),
        })
        .unwrap();
        let src = env.write("dep/file", "dependency\n");
        let dep = store.add_path(src.parent().unwrap(), "dep").unwrap();
        let text = format!("uses {}\n", store.print_path(&dep));
        let user = store
            .add_text("user", text.as_bytes(), &BTreeSet::from([dep.clone()]))
            .unwrap();
        (store.print_path(&dep), store.print_path(&user))
    };
    // Everyone may traverse the test dir; the store stays root's.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = env.dir.path().join("nobody-home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let db = env.root().join("kiln/var/kiln/db");
    assert!(
        db.join("db.sqlite-shm").exists() && db.join("db.sqlite-wal").exists(),
        "the writer keeps -wal and -shm for readers"
    );

    let ok = |args: &[&str]| -> String {
        let out = as_nobody(&env, &home, args).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} as nobody: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let info = ok(&["store", "path-info", "-rsS", &user]);
    assert!(
        info.contains(&dep) && info.contains(&user),
        "path-info -r: {info}"
    );
    let requisites = ok(&["store", "query", "--requisites", &user]);
    assert_eq!(requisites, format!("{dep}\n{user}\n"));
    ok(&["store", "verify", "--check-contents"]);
    let dumped = ok(&["store", "dump", &dep]);
    assert!(dumped.contains("dependency"));
    assert_eq!(ok(&["eval", "--expr", "1 + 1"]).trim(), "2");
    let why = ok(&["why-depends", "--precise", &user, &dep]);
    assert!(why.contains(&format!("→ {dep}")), "{why}");

    // Writing is refused with an error, not a crash, and changes nothing.
    let out = as_nobody(&env, &home, &["store", "gc"]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    env.assert_store_consistent();
}
