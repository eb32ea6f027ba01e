//! Hostile NARs in a bundle whose metadata is all consistent (so only the
//! NAR itself can stop the import): an entry named `..`, a name with `/`,
//! and a symlink followed by an entry of the same name (writing through
//! the symlink). Each is refused, nothing is written outside the store, and
//! the store is unchanged. A root that is itself a symlink pointing outside
//! imports as a symlink, and nothing is written where it points.

use std::collections::BTreeSet;
use std::path::Path;

use kiln_bundle::attest::ProvenanceInput;
use kiln_bundle::collect::Component;
use kiln_bundle::export::assemble;
use kiln_bundle::import::{ImportOptions, Selection, import};
use kiln_bundle::manifest::{Closure, Manifest, PathEntry};
use kiln_bundle::sbom::SbomInput;
use kiln_store::nar::wire::write_str;
use kiln_store::signing::TrustedKeys;
use kiln_store::store::{Store, StoreConfig};
use kiln_store::{Hash, HashAlgo, StoreDir, StorePath};

use super::store_state;
use crate::kit::{STORE_DIR, TestEnv};

/// A NAR from its tokens.
fn nar(tokens: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in [b"nix-archive-1".as_slice()].iter().chain(tokens) {
        write_str(&mut out, t).unwrap();
    }
    out
}

fn dir_entry(name: &[u8], node: &[&'static [u8]]) -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = vec![
        b"entry".to_vec(),
        b"(".to_vec(),
        b"name".to_vec(),
        name.to_vec(),
        b"node".to_vec(),
        b"(".to_vec(),
    ];
    t.extend(node.iter().map(|n| n.to_vec()));
    t.push(b")".to_vec());
    t.push(b")".to_vec());
    t
}

fn directory(entries: Vec<Vec<Vec<u8>>>) -> Vec<u8> {
    let mut tokens: Vec<Vec<u8>> = vec![b"(".to_vec(), b"type".to_vec(), b"directory".to_vec()];
    for e in entries {
        tokens.extend(e);
    }
    tokens.push(b")".to_vec());
    let refs: Vec<&[u8]> = tokens.iter().map(Vec::as_slice).collect();
    nar(&refs)
}

const FILE: &[&[u8]] = &[b"type", b"regular", b"contents", b"pwned\n"];

/// An unsigned bundle holding one path whose NAR is `bytes`.
fn bundle_of(bytes: &[u8], name: &str) -> Vec<u8> {
    bundle_with_threads(bytes, name, 1)
}

fn bundle_with_threads(bytes: &[u8], name: &str, threads: u32) -> Vec<u8> {
    let dir = StoreDir::new(STORE_DIR).unwrap();
    let path = StorePath::from_parts(&[7; 20], name).unwrap();
    let nar_hash = Hash::digest(HashAlgo::Sha256, bytes);
    let manifest = Manifest {
        store_dir: dir.clone(),
        roots: vec![path.clone()],
        paths: vec![PathEntry {
            path: path.clone(),
            closure: Closure::Runtime,
            nar_hash,
            nar_size: bytes.len() as u64,
            references: BTreeSet::new(),
            deriver: None,
            ca: None,
            signatures: Vec::new(),
        }],
        build_deps: Vec::new(),
    };
    let components = vec![Component {
        path: path.clone(),
        name: name.to_string(),
        version: None,
        nar_sha256: nar_hash.to_base16(),
        nar_size: bytes.len() as u64,
        deriver: None,
        licenses: Vec::new(),
        description: None,
        homepage: None,
        sources: Vec::new(),
        references: Vec::new(),
        build_inputs: Vec::new(),
        build_only: false,
        is_root: true,
    }];
    let sbom = SbomInput {
        store_dir: &dir,
        roots: &manifest.roots,
        components: &components,
        timestamp: 0,
    };
    let provenance = ProvenanceInput {
        subjects: Vec::new(),
        external_parameters: serde_json::json!({}),
        internal_parameters: serde_json::json!({}),
        resolved: Vec::new(),
        builder_id: "urn:test".into(),
        started: None,
        finished: None,
        invocation_id: "test".into(),
        byproducts: Vec::new(),
    };
    let mut out = Vec::new();
    assemble(
        &manifest,
        &sbom,
        provenance,
        None,
        threads,
        &mut out,
        &mut |_, w| w.write_all(bytes).map_err(kiln_bundle::BundleError::write),
    )
    .unwrap();
    out
}

fn host(env: &TestEnv) -> Store {
    Store::open(StoreConfig {
        root: env.root(),
        store_dir: StoreDir::new(STORE_DIR).unwrap(),
    })
    .unwrap()
}

fn try_import(
    store: &Store,
    bundle: &[u8],
) -> Result<kiln_bundle::import::ImportReport, kiln_bundle::BundleError> {
    import(
        store,
        bundle,
        &ImportOptions {
            trusted: &TrustedKeys::default(),
            check_sigs: false,
            select: Selection::All,
        },
    )
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn hostile_nars_are_refused_and_nothing_is_written_outside_the_store() {
    let env = TestEnv::new();
    let victim = env.work().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let victim_str = victim.to_str().unwrap().as_bytes().to_vec();
    let store = host(&env);
    let before = store_state(&env, &env.root());

    let dotdot = directory(vec![dir_entry(b"..", FILE)]);
    let slash = directory(vec![dir_entry(b"a/b", FILE)]);
    let victim_static: &'static [u8] = Box::leak(victim_str.clone().into_boxed_slice());
    let through_symlink = directory(vec![
        dir_entry(b"x", &[b"type", b"symlink", b"target", victim_static]),
        dir_entry(
            b"x",
            &[
                b"type",
                b"directory",
                b"entry",
                b"(",
                b"name",
                b"pwned",
                b"node",
                b"(",
                b"type",
                b"regular",
                b"contents",
                b"pwned\n",
                b")",
                b")",
            ],
        ),
    ]);
    for (what, bytes, why) in [
        ("an entry named ..", dotdot, "not allowed"),
        ("a name with /", slash, "'/'"),
        ("a symlink then the same name", through_symlink, ""),
    ] {
        let bundle = bundle_of(&bytes, "evil");
        // The bundle is consistent: only the NAR is wrong.
        let err = match try_import(&store, &bundle) {
            Ok(_) => panic!("{what}: imported"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("nar/") && err.contains(why), "{what}: {err}");
        assert!(empty(&victim), "{what}: wrote outside the store");
        assert!(!env.root().join("evil").exists() && !env.work().join("pwned").exists());
        assert_eq!(
            store_state(&env, &env.root()),
            before,
            "{what}: the store changed"
        );
    }

    // A path that is a symlink to outside imports as a symlink; nothing is
    // written where it points.
    let link = nar(&[b"(", b"type", b"symlink", b"target", &victim_str, b")"]);
    let report = try_import(&store, &bundle_of(&link, "link")).unwrap();
    assert_eq!(report.new.len(), 1);
    let real = store.real_path(&report.new[0]);
    assert_eq!(std::fs::read_link(&real).unwrap(), victim);
    assert!(empty(&victim));
}

/// zstd's multi-threaded output does not depend on the number of workers,
/// so a bundle's bytes do not depend on the exporting machine's CPUs.
#[test]
fn the_bytes_do_not_depend_on_the_number_of_zstd_workers() {
    let mut rng = crate::kit::Prng::new(3);
    // Large enough for several zstd jobs (8 MiB each).
    let data = rng.bytes(20 << 20);
    let contents: Vec<u8> = data.iter().map(|b| b % 16 + b'a').collect();
    let one = nar(&[b"(", b"type", b"regular", b"contents", &contents, b")"]);
    let a = bundle_with_threads(&one, "data", 1);
    let b = bundle_with_threads(&one, "data", 2);
    let c = bundle_with_threads(&one, "data", 5);
    assert!(
        a == b && b == c,
        "the bundle's bytes changed with the number of workers"
    );
}
