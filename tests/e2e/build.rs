//! `kiln build` and `kiln log` end to end: derivations are written with the
//! store API (a static busybox added as a source path is the only tool),
//! then built by the binary in a bwrap sandbox.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_store::derivation::{
    Derivation, DerivationError, DerivationOutput, DrvHash, FixedOutputHash,
};
use kiln_store::store::{Store, StoreConfig};
use kiln_store::{FileIngestionMethod, Hash, HashAlgo, StoreDir, StorePath};

use crate::harness::{TestEnv, require_bwrap};

const STORE_DIR: &str = "/kiln/store";

/// A test root with busybox in its store, and derivations written so far.
struct Kit {
    env: TestEnv,
    store: Store,
    busybox: StorePath,
    drvs: HashMap<StorePath, Derivation>,
}

/// How to write one derivation.
struct Spec<'a> {
    name: &'a str,
    script: &'a str,
    env: &'a [(&'a str, &'a str)],
    /// Input derivations whose `out` is used.
    inputs: &'a [&'a StorePath],
    outputs: &'a [&'a str],
    /// A fixed output: (method, sha256 hash).
    fixed: Option<(FileIngestionMethod, Hash)>,
}

impl<'a> Spec<'a> {
    fn new(name: &'a str, script: &'a str) -> Spec<'a> {
        Spec {
            name,
            script,
            env: &[],
            inputs: &[],
            outputs: &["out"],
            fixed: None,
        }
    }
}

impl Kit {
    fn new() -> Kit {
        let env = TestEnv::new();
        let store = Store::open(StoreConfig {
            root: env.root(),
            store_dir: StoreDir::new(STORE_DIR).unwrap(),
        })
        .unwrap();
        let src = env.work().join("busybox");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", src.join("bin/busybox")).unwrap();
        let busybox = store.add_path(&src, "busybox").unwrap();
        Kit {
            env,
            store,
            busybox,
            drvs: HashMap::new(),
        }
    }

    fn sh(&self) -> String {
        format!("{}/bin/busybox", self.store.print_path(&self.busybox))
    }

    fn path(&self, p: &StorePath) -> String {
        self.store.print_path(p)
    }

    fn write(&mut self, spec: Spec<'_>) -> StorePath {
        let mut drv = Derivation {
            system: "x86_64-linux".into(),
            builder: self.sh(),
            args: vec!["sh".into(), "-c".into(), spec.script.into()],
            ..Derivation::default()
        };
        drv.input_srcs.insert(self.busybox.clone());
        drv.env.insert("name".into(), spec.name.into());
        drv.env.insert("builder".into(), self.sh());
        drv.env.insert("system".into(), "x86_64-linux".into());
        for (k, v) in spec.env {
            drv.env.insert(k.to_string(), v.to_string());
        }
        for input in spec.inputs {
            drv.input_drvs
                .insert((*input).clone(), BTreeSet::from(["out".to_string()]));
        }
        let dir = self.store.store_dir().clone();
        match spec.fixed {
            Some((method, hash)) => {
                let out = DerivationOutput::fixed(
                    &dir,
                    spec.name,
                    "out",
                    FixedOutputHash { method, hash },
                )
                .unwrap();
                drv.outputs.insert("out".into(), out);
            }
            None => {
                for name in spec.outputs {
                    drv.outputs
                        .insert(name.to_string(), DerivationOutput::Deferred);
                }
                drv.env.insert("outputs".into(), spec.outputs.join(" "));
            }
        }
        let drvs = &self.drvs;
        let mut cache = HashMap::new();
        drv.fill_output_paths::<DerivationError>(&dir, spec.name, &mut |p| {
            Ok(drv_hash(&dir, drvs, &mut cache, p))
        })
        .unwrap();
        let path = self.store.write_derivation(&drv, spec.name).unwrap();
        self.drvs.insert(path.clone(), drv);
        path
    }

    fn out(&self, drv: &StorePath, output: &str) -> StorePath {
        self.drvs[drv].outputs[output].path().unwrap().clone()
    }

    /// The physical path of an output.
    fn real(&self, drv: &StorePath) -> PathBuf {
        self.store.real_path(&self.out(drv, "out"))
    }

    fn build(&self, drv: &StorePath, extra: &[&str]) -> std::process::Output {
        let drv = self.path(drv);
        let mut args = vec!["build", drv.as_str(), "--no-out-link"];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    fn build_ok(&self, drv: &StorePath) -> String {
        let out = self.build(drv, &["--print-out-paths"]);
        assert!(
            out.status.success(),
            "build failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn build_fails(&self, drv: &StorePath, extra: &[&str]) -> String {
        let out = self.build(drv, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "expected failure:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    fn refs(&self, drv: &StorePath) -> Vec<String> {
        let store = self.reopen();
        store
            .references(&self.out(drv, "out"))
            .unwrap()
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    /// A fresh handle: the database as other processes left it.
    fn reopen(&self) -> Store {
        Store::open(StoreConfig {
            root: self.env.root(),
            store_dir: StoreDir::new(STORE_DIR).unwrap(),
        })
        .unwrap()
    }
}

fn drv_hash(
    dir: &StoreDir,
    drvs: &HashMap<StorePath, Derivation>,
    cache: &mut HashMap<StorePath, DrvHash>,
    path: &StorePath,
) -> DrvHash {
    if let Some(h) = cache.get(path) {
        return h.clone();
    }
    let drv = &drvs[path];
    let h = drv
        .hash_modulo::<DerivationError>(dir, false, &mut |p| Ok(drv_hash(dir, drvs, cache, p)))
        .unwrap();
    cache.insert(path.clone(), h.clone());
    h
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn builds_a_derivation_links_result_and_keeps_its_log() {
    if !require_bwrap() {
        return;
    }
    let mut kit = Kit::new();
    let drv = kit.write(Spec::new(
        "hello",
        "echo building hello; mkdir $out; echo hello > $out/greeting",
    ));
    let printed = kit.build_ok(&drv);
    let out = kit.out(&drv, "out");
    assert_eq!(printed.trim(), kit.path(&out));
    assert_eq!(read(&kit.real(&drv).join("greeting")), "hello\n");

    // Canonical: read-only, mtime 1.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(kit.real(&drv).join("greeting")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o444);
    assert_eq!(meta.mtime(), 1);

    // Registered with the derivation as deriver.
    let info = kit.reopen().path_info(&out).unwrap().unwrap();
    assert_eq!(info.deriver.as_ref(), Some(&drv));

    // `result` link and its GC root.
    kit.env.ok(&["build", &kit.path(&drv)]);
    let link = kit.env.work().join("result");
    assert_eq!(std::fs::read_link(&link).unwrap(), kit.real(&drv));
    let roots: Vec<PathBuf> = std::fs::read_dir(kit.env.root().join("kiln/var/kiln/gcroots/auto"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(roots, vec![link]);

    // The log, by derivation and by output.
    let log = kit.env.ok(&["log", &kit.path(&drv)]);
    assert_eq!(log, "building hello\n");
    assert_eq!(kit.env.ok(&["log", &kit.path(&out)]), log);
}
