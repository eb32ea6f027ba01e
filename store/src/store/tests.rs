use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::*;
use crate::hash::HashAlgo;
use crate::store_path::FileIngestionMethod;

fn open(root: &Path, dir: &str) -> Store {
    Store::open(StoreConfig {
        root: root.to_path_buf(),
        store_dir: StoreDir::new(dir).unwrap(),
    })
    .unwrap()
}

fn sample_tree(at: &Path) {
    fs::create_dir_all(at.join("sub/empty")).unwrap();
    fs::write(at.join("a.txt"), b"hello\n").unwrap();
    fs::write(at.join("sub/run"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(at.join("sub/run"), fs::Permissions::from_mode(0o775)).unwrap();
    symlink("../a.txt", at.join("sub/link")).unwrap();
}

#[test]
fn layout_follows_root_and_store_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), "/nix/store");
    assert_eq!(store.physical_store_dir(), tmp.path().join("nix/store"));
    assert_eq!(store.state_dir(), tmp.path().join("kiln/var/kiln"));
    assert!(tmp.path().join("kiln/var/kiln/db/db.sqlite").is_file());
}

#[test]
fn add_path_copies_canonicalises_and_registers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let store = open(&tmp.path().join("root"), "/kiln/store");

    let path = store.add_path(&src, "src").unwrap();
    let real = store.real_path(&path);
    assert_eq!(fs::read(real.join("a.txt")).unwrap(), b"hello\n");
    assert_eq!(
        fs::read_link(real.join("sub/link")).unwrap(),
        Path::new("../a.txt")
    );
    let mode = |p: &str| fs::symlink_metadata(real.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode(""), 0o555);
    assert_eq!(mode("a.txt"), 0o444);
    assert_eq!(mode("sub/run"), 0o555);
    assert_eq!(fs::symlink_metadata(&real).unwrap().mtime(), 1);

    // The recorded NAR hash is that of the files now in the store, and the
    // path is the source path of that hash.
    let info = store.path_info(&path).unwrap().unwrap();
    let (hash, size) = crate::nar::hash_path(&real, HashAlgo::Sha256).unwrap();
    assert_eq!(info.nar_hash, hash);
    assert_eq!(info.nar_size, size);
    let expected =
        crate::store_path::make_source_path(store.store_dir(), "src", &hash, &BTreeSet::new())
            .unwrap();
    assert_eq!(path, expected);
    assert_eq!(
        info.ca.as_deref(),
        Some(format!("fixed:r:{}", hash.to_typed_nix32()).as_str())
    );

    // Adding again is a no-op with the same answer, and leaves no temp dirs.
    assert_eq!(store.add_path(&src, "src").unwrap(), path);
    let leftovers: Vec<_> = fs::read_dir(store.physical_store_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_unregistered_leftover_at_the_target_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("f");
    fs::write(&src, b"content").unwrap();
    let store = open(&tmp.path().join("root"), "/kiln/store");
    let path = store.add_path(&src, "f").unwrap();
    // Simulate a crash between the rename and the registration: the files
    // are there (here: wrong ones) but the database does not know them.
    store.database_forget_for_test(&path);
    let real = store.real_path(&path);
    fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&real, b"partial").unwrap();
    assert!(!store.is_valid(&path).unwrap());

    assert_eq!(store.add_path(&src, "f").unwrap(), path);
    assert_eq!(fs::read(&real).unwrap(), b"content");
    assert!(store.is_valid(&path).unwrap());
}

#[test]
fn stale_temp_dirs_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let store = open(&root, "/kiln/store");
    // A temp dir whose lock nobody holds: what a killed process leaves.
    let stale = store.physical_store_dir().join(".tmp-kiln-999999-0-0");
    fs::create_dir_all(stale.join("content/deep")).unwrap();
    fs::set_permissions(stale.join("content"), fs::Permissions::from_mode(0o555)).unwrap();
    // And one that a live process holds.
    let live = store.temp_dir().unwrap();

    let src = tmp.path().join("f");
    fs::write(&src, b"x").unwrap();
    let again = open(&root, "/kiln/store");
    again.add_path(&src, "f").unwrap();
    assert!(!stale.exists(), "stale temp dir must be removed");
    assert!(live.path().exists(), "a live temp dir must be kept");
}

#[test]
fn fixed_paths_match_nix_vectors() {
    // From store-paths.tsv (Nix 2.8): store-paths-inputs/fixed.txt, "fixed\n".
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fixed.txt");
    fs::write(&src, b"fixed\n").unwrap();
    let store = open(&tmp.path().join("root"), "/nix/store");
    let cases = [
        (
            FileIngestionMethod::Recursive,
            HashAlgo::Sha256,
            "g5zn7ff2jgfwx2i5nj2q6nvv30991xfa",
        ),
        (
            FileIngestionMethod::Recursive,
            HashAlgo::Sha1,
            "viqw3qv2yxll7s5cyx75ar6xi4jm73l1",
        ),
        (
            FileIngestionMethod::Recursive,
            HashAlgo::Md5,
            "p34vqm12b0ayi2f02an82svd2mkjabbg",
        ),
        (
            FileIngestionMethod::Flat,
            HashAlgo::Sha256,
            "6q1rkyz2b5m41r3gm2zvp5ndqqilq8ym",
        ),
        (
            FileIngestionMethod::Flat,
            HashAlgo::Sha512,
            "dlci4rmvnhcxhj3fsdygq6579inavqfz",
        ),
    ];
    for (method, algo, hash_part) in cases {
        let path = store.add_fixed(&src, method, algo, "fixed.txt").unwrap();
        assert_eq!(path.hash_part(), hash_part, "{method:?} {algo:?}");
        assert_eq!(fs::read(store.real_path(&path)).unwrap(), b"fixed\n");
    }
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    let err = store
        .add_fixed(&dir, FileIngestionMethod::Flat, HashAlgo::Sha256, "d")
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
}

#[test]
fn text_paths_references_and_closures() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), "/kiln/store");
    let none = BTreeSet::new();
    let c = store.add_text("c", b"leaf", &none).unwrap();
    let b = store
        .add_text("b", b"mid", &BTreeSet::from([c.clone()]))
        .unwrap();
    let a = store
        .add_text("a", b"top", &BTreeSet::from([b.clone(), c.clone()]))
        .unwrap();

    assert_eq!(
        store.references(&a).unwrap(),
        BTreeSet::from([b.clone(), c.clone()])
    );
    assert_eq!(
        store.referrers(&c).unwrap(),
        BTreeSet::from([a.clone(), b.clone()])
    );
    assert_eq!(
        store.closure(std::slice::from_ref(&b)).unwrap(),
        BTreeSet::from([b.clone(), c.clone()])
    );
    let sizes: u64 = [&a, &b, &c]
        .iter()
        .map(|p| store.path_info(p).unwrap().unwrap().nar_size)
        .sum();
    assert_eq!(store.closure_size(std::slice::from_ref(&a)).unwrap(), sizes);
    // Dependencies first.
    let order = store
        .topo_sort(&store.closure(std::slice::from_ref(&a)).unwrap())
        .unwrap();
    assert_eq!(order, vec![c.clone(), b.clone(), a.clone()]);

    // A reference that is not valid is refused and nothing is registered.
    let ghost = StorePath::from_base_name("00000000000000000000000000000000-ghost").unwrap();
    let err = store
        .add_text("bad", b"x", &BTreeSet::from([ghost]))
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    let unknown = store.referrers(&c).unwrap();
    assert_eq!(unknown.len(), 2);
}

/// A tree staged in a temp dir of `store`, as a build leaves its outputs.
fn staged_tree(store: &Store, temp: &temp::TempDir, name: &str, body: &str) -> PathBuf {
    let dir = temp.path().join(name);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("file"), body).unwrap();
    let _ = store;
    dir
}

fn info_of(path: &StorePath, content: &Path, refs: &[&StorePath]) -> ValidPathInfo {
    let (nar_hash, nar_size) = crate::nar::hash_path(content, HashAlgo::Sha256).unwrap();
    ValidPathInfo {
        path: path.clone(),
        nar_hash,
        nar_size,
        deriver: None,
        references: refs.iter().map(|p| (*p).clone()).collect(),
        registration_time: 5,
        ca: None,
        signatures: vec![],
    }
}

#[test]
fn install_is_one_transaction_and_replaces_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), "/kiln/store");
    let out = StorePath::from_base_name("11111111111111111111111111111111-out").unwrap();
    let dep = StorePath::from_base_name("22222222222222222222222222222222-dep").unwrap();
    let missing = StorePath::from_base_name("33333333333333333333333333333333-gone").unwrap();
    // What a crash between rename and registration leaves at `out`.
    fs::write(store.real_path(&out), "garbage").unwrap();

    // A batch with a reference that is neither valid nor in the batch
    // registers nothing.
    let temp = store.temp_dir().unwrap();
    let out_dir = staged_tree(&store, &temp, "out", "out");
    let bad = vec![NewPath {
        info: info_of(&out, &out_dir, &[&missing]),
        content: Staged::Tree {
            path: out_dir.clone(),
            canonical: false,
        },
    }];
    assert!(store.install(bad, Locking::Take).is_err());
    assert!(!store.is_valid(&out).unwrap());

    // `out` refers to `dep`, installed in the same batch, and to itself.
    let temp = store.temp_dir().unwrap();
    let out_dir = staged_tree(&store, &temp, "out", "out");
    let dep_dir = staged_tree(&store, &temp, "dep", "dep");
    let batch = vec![
        NewPath {
            info: info_of(&out, &out_dir, &[&dep, &out]),
            content: Staged::Tree {
                path: out_dir,
                canonical: false,
            },
        },
        NewPath {
            info: info_of(&dep, &dep_dir, &[]),
            content: Staged::Tree {
                path: dep_dir,
                canonical: false,
            },
        },
    ];
    let installed = store.install(batch, Locking::Take).unwrap();
    assert_eq!(installed.new, vec![out.clone(), dep.clone()]);
    assert_eq!(store.references(&out).unwrap().len(), 2);
    assert_eq!(store.path_info(&out).unwrap().unwrap().registration_time, 5);
    let real = store.real_path(&out);
    assert_eq!(fs::read_to_string(real.join("file")).unwrap(), "out");
    assert_eq!(fs::symlink_metadata(&real).unwrap().mode() & 0o7777, 0o555);
    assert_eq!(fs::symlink_metadata(real.join("file")).unwrap().mtime(), 1);

    // Installing a valid path again changes nothing.
    let again = vec![NewPath {
        info: info_of(&dep, &store.real_path(&dep), &[]),
        content: Staged::File(b"other".to_vec()),
    }];
    assert!(store.install(again, Locking::Take).unwrap().new.is_empty());
    assert_eq!(
        fs::read_to_string(store.real_path(&dep).join("file")).unwrap(),
        "dep"
    );
}

#[test]
fn derivation_meta_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), "/kiln/store");
    let drv = store
        .add_text("x.drv", b"not really", &BTreeSet::new())
        .unwrap();
    assert_eq!(store.derivation_meta(&drv).unwrap(), None);
    store
        .set_derivation_meta(&drv, r#"{"license":"mit"}"#)
        .unwrap();
    assert_eq!(
        store.derivation_meta(&drv).unwrap().as_deref(),
        Some(r#"{"license":"mit"}"#)
    );
}

#[test]
fn concurrent_adds_of_one_path_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let root = tmp.path().join("root");
    let _ = open(&root, "/kiln/store");
    let paths: Vec<StorePath> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| open(&root, "/kiln/store").add_path(&src, "src").unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn install_records_drv_outputs_from_the_given_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), "/kiln/store");
    let (drv, aterm, out) = honest_drv(&store, "x");
    let plain = StorePath::from_base_name("33333333333333333333333333333333-y.drv").unwrap();
    let file = |path: &StorePath, bytes: &[u8]| {
        let (nar_hash, nar_size) = crate::nar::hash_regular_bytes(bytes);
        NewPath {
            info: ValidPathInfo {
                path: path.clone(),
                nar_hash,
                nar_size,
                deriver: None,
                references: BTreeSet::new(),
                registration_time: 5,
                ca: None,
                signatures: vec![],
            },
            content: Staged::File(bytes.to_vec()),
        }
    };
    store
        .install(
            vec![file(&drv, &aterm), file(&plain, b"just text")],
            Locking::Take,
        )
        .unwrap();
    assert!(store.is_valid(&drv).unwrap() && store.is_valid(&plain).unwrap());
    assert_eq!(fs::read(store.real_path(&drv)).unwrap(), aterm);
    let outputs = store.derivation_outputs(&drv).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs["out"], out);
    assert!(store.derivation_outputs(&plain).unwrap().is_empty());
    // The in-memory NAR hash is the one of the file on disk.
    let on_disk = crate::nar::hash_path(&store.real_path(&drv), HashAlgo::Sha256).unwrap();
    assert_eq!(store.path_info(&drv).unwrap().unwrap().nar_hash, on_disk.0);
}

/// A derivation `name` with its output path and `out` filled in from its
/// contents: its `.drv` path, its bytes and its output path.
fn honest_drv(store: &Store, name: &str) -> (StorePath, Vec<u8>, StorePath) {
    let aterm = r#"Derive([("out","","","")],[],[],"x86_64-linux","/bin/sh",[],[("out","")])"#;
    let mut drv =
        crate::derivation::Derivation::parse(store.store_dir(), aterm.as_bytes()).unwrap();
    drv.fill_output_paths::<crate::derivation::DerivationError, crate::derivation::DrvHash>(
        store.store_dir(),
        name,
        &mut |_| unreachable!("no inputs"),
    )
    .unwrap();
    let out = drv.outputs["out"].path().unwrap().clone();
    (
        drv.drv_path(store.store_dir(), name).unwrap(),
        drv.to_aterm(store.store_dir()),
        out,
    )
}

#[test]
fn install_refuses_a_drv_whose_output_path_is_not_its_own_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), "/kiln/store");
    let (_, honest, out) = honest_drv(&store, "x");
    let victim = "/kiln/store/11111111111111111111111111111111-victim";
    let forged = String::from_utf8(honest)
        .unwrap()
        .replace(&store.print_path(&out), victim);
    let path = StorePath::from_base_name("22222222222222222222222222222222-x.drv").unwrap();
    let (nar_hash, nar_size) = crate::nar::hash_regular_bytes(forged.as_bytes());
    let new = NewPath {
        info: ValidPathInfo {
            path: path.clone(),
            nar_hash,
            nar_size,
            deriver: None,
            references: BTreeSet::new(),
            registration_time: 5,
            ca: None,
            signatures: vec![],
        },
        content: Staged::File(forged.into_bytes()),
    };
    let err = store.install(vec![new], Locking::Take).unwrap_err();
    assert!(matches!(err, StoreError::BadDerivation(_)), "{err}");
    assert!(!store.is_valid(&path).unwrap());
    assert!(!store.real_path(&path).exists());
}

/// A store add killed while it created the database leaves a file with no
/// schema yet. Read-only commands of the store's owner then open it the
/// writing way (which finishes the schema) instead of failing: the path
/// is simply not valid.
#[test]
fn read_only_open_of_a_half_created_database_by_its_owner_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        root: tmp.path().to_path_buf(),
        store_dir: StoreDir::new("/kiln/store").unwrap(),
    };
    let db_path = config.db_path();
    fs::create_dir_all(db_path.parent().unwrap()).unwrap();
    // An SQLite file with no tables and user_version 0.
    rusqlite::Connection::open(&db_path)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    assert!(Database::open_read_only(&db_path).is_err());
    let store = Store::open_read_only(config).unwrap();
    let path = store
        .store_dir()
        .parse_path("/kiln/store/00000000000000000000000000000000-x")
        .unwrap();
    assert!(!store.is_valid(&path).unwrap());
}
