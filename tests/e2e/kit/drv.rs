//! A test root with a static busybox in its store, and derivations written
//! with the store API: the builds that e2e tests run.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use kiln_store::derivation::{
    Derivation, DerivationError, DerivationOutput, DrvHash, FixedOutputHash,
};
use kiln_store::store::{Store, StoreConfig};
use kiln_store::{FileIngestionMethod, Hash, StoreDir, StorePath};

use super::TestEnv;

pub const STORE_DIR: &str = "/kiln/store";

/// A test root with busybox in its store, and derivations written so far.
pub struct DrvKit {
    pub env: TestEnv,
    pub store: Store,
    pub busybox: StorePath,
    pub drvs: HashMap<StorePath, Derivation>,
}

/// How to write one derivation.
pub struct Spec<'a> {
    pub name: &'a str,
    pub script: &'a str,
    pub env: &'a [(&'a str, &'a str)],
    /// Input derivations whose `out` is used.
    pub inputs: &'a [&'a StorePath],
    /// Input sources besides busybox.
    pub srcs: &'a [&'a StorePath],
    pub outputs: &'a [&'a str],
    /// A fixed output: (method, sha256 hash).
    pub fixed: Option<(FileIngestionMethod, Hash)>,
}

impl<'a> Spec<'a> {
    pub fn new(name: &'a str, script: &'a str) -> Spec<'a> {
        Spec {
            name,
            script,
            env: &[],
            inputs: &[],
            srcs: &[],
            outputs: &["out"],
            fixed: None,
        }
    }
}

impl DrvKit {
    /// A kit for a test that builds in the sandbox, or `None` (after saying
    /// `skipped: …`) where bubblewrap is missing outside CI.
    pub fn sandboxed() -> Option<DrvKit> {
        super::require_bwrap().then(DrvKit::new)
    }

    pub fn new() -> DrvKit {
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
        DrvKit {
            env,
            store,
            busybox,
            drvs: HashMap::new(),
        }
    }

    pub fn sh(&self) -> String {
        format!("{}/bin/busybox", self.store.print_path(&self.busybox))
    }

    pub fn path(&self, p: &StorePath) -> String {
        self.store.print_path(p)
    }

    pub fn write(&mut self, spec: Spec<'_>) -> StorePath {
        let mut drv = Derivation {
            system: "x86_64-linux".into(),
            builder: self.sh(),
            args: vec!["sh".into(), "-c".into(), spec.script.into()],
            ..Derivation::default()
        };
        drv.input_srcs.insert(self.busybox.clone());
        drv.input_srcs
            .extend(spec.srcs.iter().map(|p| (*p).clone()));
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
        drv.fill_output_paths::<DerivationError, _>(&dir, spec.name, &mut |p| {
            Ok(drv_hash(&dir, drvs, &mut cache, p))
        })
        .unwrap();
        let path = self.store.write_derivation(&drv, spec.name).unwrap();
        self.drvs.insert(path.clone(), drv);
        path
    }

    pub fn out(&self, drv: &StorePath, output: &str) -> StorePath {
        self.drvs[drv].outputs[output].path().unwrap().clone()
    }

    /// The physical path of an output.
    pub fn real(&self, drv: &StorePath) -> PathBuf {
        self.store.real_path(&self.out(drv, "out"))
    }

    pub fn build(&self, drv: &StorePath, extra: &[&str]) -> std::process::Output {
        let drv = self.path(drv);
        let mut args = vec!["build", drv.as_str(), "--no-out-link"];
        args.extend_from_slice(extra);
        self.env.run(&args)
    }

    pub fn build_ok(&self, drv: &StorePath) -> String {
        let out = self.build(drv, &["--print-out-paths"]);
        assert!(
            out.status.success(),
            "build failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Builds `drv`, which fails: exit 1 (around the build) or one of
    /// Nix's build failure codes, 100 to 104 (`build_fails_with` checks
    /// which).
    pub fn build_fails(&self, drv: &StorePath, extra: &[&str]) -> String {
        let out = self.build(drv, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code();
        assert!(
            code == Some(1) || code.is_some_and(|c| (100..=104).contains(&c)),
            "expected failure, got {code:?}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    /// Builds `drv`, which fails with Nix's exit `code` (101 a timeout,
    /// 102 a hash mismatch, 104 `--check` found a difference, 1 a failure
    /// around the build).
    pub fn build_fails_with(&self, drv: &StorePath, extra: &[&str], code: i32) -> String {
        let out = self.build(drv, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "expected failure:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    pub fn refs(&self, drv: &StorePath) -> Vec<String> {
        let store = self.reopen();
        store
            .references(&self.out(drv, "out"))
            .unwrap()
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    /// `kiln store verify` succeeds: the store is consistent.
    pub fn assert_store_consistent(&self) {
        self.env.assert_store_consistent();
    }

    /// A fresh handle: the database as other processes left it.
    pub fn reopen(&self) -> Store {
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
        .hash_modulo::<DerivationError, _>(dir, false, &mut |p| Ok(drv_hash(dir, drvs, cache, p)))
        .unwrap();
    cache.insert(path.clone(), h.clone());
    h
}
