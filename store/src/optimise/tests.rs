use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::gc::{GcAction, GcOptions};
use crate::optimise::OptimiseOptions;
use crate::store::{Store, StoreConfig};
use crate::store_path::{StoreDir, StorePath};
use crate::verify::{VerifyOptions, verify_store};

fn open(root: &Path) -> Store {
    Store::open(StoreConfig {
        root: root.to_path_buf(),
        store_dir: StoreDir::new("/kiln/store").unwrap(),
    })
    .unwrap()
}

/// A tree with `shared` (4 KiB), an executable with the same bytes, and
/// a file of its own.
fn add_tree(store: &Store, dir: &Path, name: &str) -> StorePath {
    let src = dir.join(name);
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/shared"), vec![b'x'; 4096]).unwrap();
    fs::write(src.join("exec"), vec![b'x'; 4096]).unwrap();
    fs::set_permissions(src.join("exec"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(src.join("own"), name).unwrap();
    store.add_path(&src, name).unwrap()
}

fn clean(store: &Store) {
    let report = verify_store(
        store,
        VerifyOptions {
            check_contents: true,
        },
    )
    .unwrap();
    assert!(!report.is_damaged(), "{:?}", report.problems);
    assert!(report.strays.is_empty(), "{:?}", report.strays);
}

#[test]
fn identical_files_share_an_inode_and_paths_stay_canonical() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("root"));
    let a = add_tree(&store, tmp.path(), "a");
    let b = add_tree(&store, tmp.path(), "b");
    let ino = |p: &StorePath, f: &str| fs::metadata(store.real_path(p).join(f)).unwrap().ino();
    assert_ne!(ino(&a, "sub/shared"), ino(&b, "sub/shared"));

    let dry = store.optimise(OptimiseOptions { dry_run: true }).unwrap();
    assert_eq!((dry.files_linked, dry.bytes_saved), (2, 8192));
    assert_ne!(
        ino(&a, "sub/shared"),
        ino(&b, "sub/shared"),
        "dry run changed nothing"
    );

    let report = store.optimise(OptimiseOptions::default()).unwrap();
    assert_eq!(report.paths, 2);
    assert_eq!(report.files, 6);
    // sub/shared and exec of b; the executable bit keeps exec apart from shared.
    assert_eq!((report.files_linked, report.bytes_saved), (2, 8192));
    assert_eq!(ino(&a, "sub/shared"), ino(&b, "sub/shared"));
    assert_eq!(ino(&a, "exec"), ino(&b, "exec"));
    assert_ne!(ino(&a, "exec"), ino(&a, "sub/shared"));
    assert_ne!(ino(&a, "own"), ino(&b, "own"));
    let meta = fs::metadata(store.real_path(&b).join("sub")).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o555, 1));
    clean(&store);

    // Idempotent, and a dry run agrees.
    let again = store.optimise(OptimiseOptions::default()).unwrap();
    assert_eq!(again.files_linked, 0);
    assert_eq!(
        store
            .optimise(OptimiseOptions { dry_run: true })
            .unwrap()
            .files_linked,
        0
    );
}

#[test]
fn gc_keeps_the_other_copy_and_removes_unused_links() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let store = open(&root);
    let a = add_tree(&store, tmp.path(), "a");
    let b = add_tree(&store, tmp.path(), "b");
    drop(store);
    let store = open(&root);
    store.optimise(OptimiseOptions::default()).unwrap();
    let links = store.physical_store_dir().join(".links");
    let count = || fs::read_dir(&links).unwrap().count();
    // shared, exec, a/own, b/own: each first file of its contents.
    assert_eq!(count(), 4);
    drop(store);

    let report = open(&root)
        .collect_garbage(&GcOptions {
            action: GcAction::DeleteSpecific(vec![a.clone()]),
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(report.deleted, vec![a]);
    // a's own file was its only copy: its .links entry went with it; the
    // shared bytes are still b's, so nothing else was freed.
    assert_eq!(report.bytes_freed, 1);
    assert_eq!(count(), 3);
    let store = open(&root);
    assert_eq!(
        fs::read(store.real_path(&b).join("sub/shared")).unwrap(),
        vec![b'x'; 4096]
    );
    clean(&store);
}

#[test]
fn an_interrupted_run_is_finished_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("root"));
    let a = add_tree(&store, tmp.path(), "a");
    // What a kill between "made writable" and "restored" leaves.
    let dir = store.real_path(&a).join("sub");
    let state = store.state_dir();
    fs::write(
        state.join("optimise.pending"),
        format!("{}\n{}\n1\n0\n", dir.display(), 0o40555),
    )
    .unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let links = store.physical_store_dir().join(".links");
    fs::create_dir_all(&links).unwrap();
    fs::write(links.join(".tmp-1-0"), "left").unwrap();
    assert!(
        verify_store(&store, VerifyOptions::default())
            .unwrap()
            .is_damaged()
    );

    store.optimise(OptimiseOptions::default()).unwrap();
    assert!(!state.join("optimise.pending").exists());
    assert!(!links.join(".tmp-1-0").exists());
    clean(&store);
}
