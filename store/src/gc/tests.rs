use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::derivation::{Derivation, DerivationError, DerivationOutput};
use crate::gc::{GcAction, GcOptions, RootKind, TRASH_PREFIX};
use crate::nar::hash_regular_bytes;
use crate::store::{Locking, NewPath, Staged, Store, StoreConfig, StoreError, ValidPathInfo};
use crate::store_path::{StoreDir, StorePath};

fn open(root: &Path) -> Store {
    Store::open(StoreConfig {
        root: root.to_path_buf(),
        store_dir: StoreDir::new("/kiln/store").unwrap(),
    })
    .unwrap()
}

fn text(store: &Store, name: &str, refs: &[&StorePath]) -> StorePath {
    let refs: BTreeSet<StorePath> = refs.iter().map(|p| (*p).clone()).collect();
    store.add_text(name, name.as_bytes(), &refs).unwrap()
}

/// A derivation and its (installed) output.
fn drv_and_output(store: &Store, name: &str) -> (StorePath, StorePath) {
    let mut drv = Derivation {
        system: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        ..Derivation::default()
    };
    drv.env.insert("name".into(), name.into());
    drv.outputs.insert("out".into(), DerivationOutput::Deferred);
    drv.fill_output_paths::<DerivationError, crate::derivation::DrvHash>(
        store.store_dir(),
        name,
        &mut |_| unreachable!("no inputs"),
    )
    .unwrap();
    let drv_path = store.write_derivation(&drv, name).unwrap();
    let out = drv.outputs["out"].path().unwrap().clone();
    let (nar_hash, nar_size) = hash_regular_bytes(b"built");
    store
        .install(
            vec![NewPath {
                info: ValidPathInfo {
                    path: out.clone(),
                    nar_hash,
                    nar_size,
                    deriver: Some(drv_path.clone()),
                    references: BTreeSet::new(),
                    registration_time: 1,
                    ca: None,
                    signatures: Vec::new(),
                },
                content: Staged::File(b"built".to_vec()),
            }],
            Locking::Take,
        )
        .unwrap();
    (drv_path, out)
}

/// A collection by a store handle of its own (as another process would).
fn gc(root: &Path, options: GcOptions) -> Result<crate::gc::GcReport, StoreError> {
    open(root).collect_garbage(&options)
}

fn valid(root: &Path, path: &StorePath) -> bool {
    open(root).is_valid(path).unwrap()
}

fn on_disk(store: &Store, path: &StorePath) -> bool {
    fs::symlink_metadata(store.real_path(path)).is_ok()
}

#[test]
fn dead_paths_go_and_a_direct_root_keeps_its_closure() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let dead = {
        let store = open(&root);
        let lib = text(&store, "lib", &[]);
        let app = text(&store, "app", &[&lib]);
        store
            .add_root(&app, &store.gc_roots_dir().join("app"))
            .unwrap();
        let dead_lib = text(&store, "dead-lib", &[]);
        let dead_app = text(&store, "dead-app", &[&dead_lib]);
        (lib, app, dead_lib, dead_app)
    };
    let (lib, app, dead_lib, dead_app) = dead;
    let report = gc(&root, GcOptions::default()).unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    let mut expected = vec![dead_lib.clone(), dead_app.clone()];
    expected.sort();
    assert_eq!(deleted, expected);
    assert!(report.bytes_freed >= 8, "{report:?}");
    let store = open(&root);
    for p in [&lib, &app] {
        assert!(store.is_valid(p).unwrap() && on_disk(&store, p));
    }
    for p in [&dead_lib, &dead_app] {
        assert!(!store.is_valid(p).unwrap());
        assert!(!on_disk(&store, p), "{p} is still on disk");
    }
    let trash = fs::read_dir(store.physical_store_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TRASH_PREFIX))
        .count();
    assert_eq!(trash, 0);
}

#[test]
fn an_indirect_root_holds_until_its_link_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let link = tmp.path().join("result");
    let path = {
        let store = open(&root);
        let path = text(&store, "held", &[]);
        store.add_root(&path, &link).unwrap();
        let roots = store.roots().unwrap();
        assert_eq!(roots.len(), 2, "{roots:?}"); // the link, and our temp root
        assert_eq!(roots[0].kind, RootKind::Indirect);
        assert_eq!(roots[0].holder.to_string(), link.display().to_string());
        path
    };
    assert!(gc(&root, GcOptions::default()).unwrap().deleted.is_empty());
    assert!(valid(&root, &path));
    fs::remove_file(&link).unwrap();
    let report = gc(&root, GcOptions::default()).unwrap();
    assert_eq!(report.deleted, std::slice::from_ref(&path));
    let auto = open(&root).gc_roots_dir().join("auto");
    assert_eq!(
        fs::read_dir(auto).unwrap().count(),
        0,
        "the stale entry goes"
    );
}

#[test]
fn a_live_temp_root_holds_and_dies_with_its_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let user = open(&root);
    let dep = text(&user, "dep", &[]);
    let top = text(&user, "top", &[&dep]);
    let report = gc(&root, GcOptions::default()).unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    let roots = open(&root).roots().unwrap();
    assert!(
        roots
            .iter()
            .all(|r| r.kind == RootKind::Temp && r.holder.to_string().contains("process")),
        "{roots:?}"
    );
    drop(user);
    let mut deleted = gc(&root, GcOptions::default()).unwrap().deleted;
    deleted.sort();
    let mut expected = vec![dep, top];
    expected.sort();
    assert_eq!(deleted, expected);
}

#[test]
fn keep_outputs_and_keep_derivations() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (drv, out) = {
        let store = open(&root);
        let (drv, out) = drv_and_output(&store, "p");
        store.add_root(&out, &tmp.path().join("result")).unwrap();
        (drv, out)
    };
    // The output is rooted: keep-derivations keeps its .drv.
    let dry = |keep_outputs, keep_derivations| {
        let options = GcOptions {
            dry_run: true,
            keep_outputs,
            keep_derivations,
            ..GcOptions::default()
        };
        gc(&root, options).unwrap().deleted
    };
    assert!(dry(true, true).is_empty());
    assert_eq!(dry(true, false), std::slice::from_ref(&drv));
    // Root the .drv instead: keep-outputs keeps the output.
    fs::remove_file(tmp.path().join("result")).unwrap();
    open(&root)
        .add_root(&drv, &tmp.path().join("drv-link"))
        .unwrap();
    assert!(dry(true, true).is_empty());
    assert_eq!(dry(false, true), std::slice::from_ref(&out));
    assert!(valid(&root, &out), "a dry run deletes nothing");
}

#[test]
fn max_freed_takes_referrers_along_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let chain = {
        let store = open(&root);
        let a = text(&store, "aaaa", &[]);
        let b = text(&store, "bbbb", &[&a]);
        let c = text(&store, "cccc", &[&b]);
        let other = text(&store, "other", &[]);
        (a, b, c, other)
    };
    let (a, b, c, other) = chain;
    // `a` is oldest: taking it takes what refers to it, then the 1 byte is
    // reached and `other` stays.
    let options = GcOptions {
        max_freed: Some(1),
        ..GcOptions::default()
    };
    let mut deleted = gc(&root, options).unwrap().deleted;
    deleted.sort();
    let mut expected = vec![a, b, c];
    expected.sort();
    assert_eq!(deleted, expected);
    assert!(valid(&root, &other));
}

#[test]
fn delete_refuses_an_alive_path_and_names_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let link = tmp.path().join("result");
    let (lib, app, loose) = {
        let store = open(&root);
        let lib = text(&store, "lib", &[]);
        let app = text(&store, "app", &[&lib]);
        store.add_root(&app, &link).unwrap();
        let loose = text(&store, "loose", &[]);
        (lib, app, loose)
    };
    let specific = |paths: Vec<StorePath>| GcOptions {
        action: GcAction::DeleteSpecific(paths),
        ..GcOptions::default()
    };
    let err = gc(&root, specific(vec![loose.clone(), lib.clone()])).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Alive { .. }), "{message}");
    assert!(message.contains(&link.display().to_string()), "{message}");
    assert!(message.contains(app.base_name()), "{message}");
    assert!(valid(&root, &loose), "a refused delete deletes nothing");
    let report = gc(&root, specific(vec![loose.clone()])).unwrap();
    assert_eq!(report.deleted, [loose]);
    assert!(valid(&root, &lib) && valid(&root, &app));
}

#[test]
fn leftovers_and_trash_of_an_interrupted_collection_are_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let store = open(&root);
    let dir = store.physical_store_dir().to_path_buf();
    // An unregistered path, a half-deleted trash tree (read-only, as store
    // paths are), and something that is not a store path at all.
    let leftover = "0c6kzph7l0dcbfmjap64f0czdafn3b7x-leftover";
    fs::create_dir_all(dir.join(leftover).join("sub")).unwrap();
    let trash = dir.join(format!("{TRASH_PREFIX}1c6kzph7l0dcbfmjap64f0czdafn3b7x-x"));
    fs::create_dir_all(trash.join("d")).unwrap();
    fs::write(trash.join("d/f"), b"12345").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for d in [trash.join("d"), trash.clone()] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
    }
    fs::write(dir.join("README"), b"not mine").unwrap();
    drop(store);
    let report = gc(&root, GcOptions::default()).unwrap();
    assert_eq!(report.leftovers, [leftover]);
    assert_eq!(report.bytes_freed, 5);
    assert!(!dir.join(leftover).exists() && !trash.exists());
    assert!(dir.join("README").exists());
}

#[test]
fn a_self_referencing_path_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let path = StorePath::from_base_name("2c6kzph7l0dcbfmjap64f0czdafn3b7x-self").unwrap();
    {
        let store = open(&root);
        let (nar_hash, nar_size) = hash_regular_bytes(b"me");
        store
            .install(
                vec![NewPath {
                    info: ValidPathInfo {
                        path: path.clone(),
                        nar_hash,
                        nar_size,
                        deriver: None,
                        references: BTreeSet::from([path.clone()]),
                        registration_time: 1,
                        ca: None,
                        signatures: Vec::new(),
                    },
                    content: Staged::File(b"me".to_vec()),
                }],
                Locking::Take,
            )
            .unwrap();
    }
    assert_eq!(gc(&root, GcOptions::default()).unwrap().deleted, [path]);
}

/// A shell root directory holds while its `project` file exists; once the
/// file is gone its links hold nothing and a collection removes it.
#[test]
fn a_shell_root_holds_until_its_project_file_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let project = tmp.path().join("shell.nix");
    fs::write(&project, "{}").unwrap();
    let (path, dir) = {
        let store = open(&root);
        let path = text(&store, "shell-input", &[]);
        let dir = store.shell_roots_dir().join("p");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&project, dir.join("project")).unwrap();
        store.add_root(&path, &dir.join("input")).unwrap();
        (path, dir)
    };
    let store = open(&root);
    let kinds: Vec<RootKind> = store.roots().unwrap().iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [RootKind::Shell]);
    assert!(gc(&root, GcOptions::default()).unwrap().deleted.is_empty());
    assert!(valid(&root, &path));
    fs::remove_file(&project).unwrap();
    assert!(
        store.roots().unwrap().is_empty(),
        "a stale shell root still holds"
    );
    let report = gc(&root, GcOptions::default()).unwrap();
    assert_eq!(report.deleted, std::slice::from_ref(&path));
    assert!(!dir.exists(), "the stale shell root directory is removed");
}
