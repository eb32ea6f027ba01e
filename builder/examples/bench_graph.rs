//! Writes a benchmark graph of trivial derivations into a store and prints
//! the target `.drv` paths, one per line (used by `bench/build/run.sh`).
//!
//! Usage: `bench_graph ROOT STORE_DIR BUSYBOX_DIR (chain|refchain|dag) N`
//!
//! Every node runs the static busybox from BUSYBOX_DIR (added as the source
//! path `busybox`) with `sh -c 'echo NAME > $out'`, and names its
//! dependencies' outputs in the `deps` attribute (so they are inputs, but
//! not references). `chain`: node i depends on node i-1. `dag`: ten nodes
//! wide; node i depends on nodes i-10 and i-11 (when they exist); the
//! targets are the nodes nothing depends on. `refchain`: a chain whose
//! nodes write their dependency's path into `$out`, so each output refers
//! to the previous one and build i has an input closure of i paths (what
//! real packages look like to the sandbox). The same graph as
//! `bench/build/graph.nix`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_store::derivation::{Derivation, DerivationError, DerivationOutput, DrvHash};
use kiln_store::store::{Store, StoreConfig};
use kiln_store::{StoreDir, StorePath};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, store_dir, busybox, shape, n] = args.as_slice() else {
        eprintln!("usage: bench_graph ROOT STORE_DIR BUSYBOX_DIR (chain|refchain|dag) N");
        return ExitCode::from(2);
    };
    match run(root, store_dir, busybox, shape, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_graph: {e}");
            ExitCode::FAILURE
        }
    }
}

fn deps_of(shape: &str, i: usize) -> Vec<usize> {
    match shape {
        "chain" | "refchain" if i > 0 => vec![i - 1],
        "dag" => [i.checked_sub(10), i.checked_sub(11)]
            .into_iter()
            .flatten()
            .collect(),
        _ => Vec::new(),
    }
}

fn run(
    root: &str,
    store_dir: &str,
    busybox: &str,
    shape: &str,
    n: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = n.parse()?;
    if !["chain", "refchain", "dag"].contains(&shape) {
        return Err(format!("unknown shape {shape}").into());
    }
    let store = Store::open(StoreConfig {
        root: PathBuf::from(root),
        store_dir: StoreDir::new(store_dir)?,
    })?;
    let dir = store.store_dir().clone();
    let bb = store.add_path(std::path::Path::new(busybox), "busybox")?;
    let builder = format!("{}/bin/busybox", store.print_path(&bb));

    let mut drvs: HashMap<StorePath, Derivation> = HashMap::new();
    let mut nodes: Vec<(StorePath, StorePath)> = Vec::new(); // (drv, out)
    let mut has_dependents = vec![false; n];
    for i in 0..n {
        let name = format!("node-{i}");
        let deps = deps_of(shape, i);
        let mut drv = Derivation {
            system: "x86_64-linux".into(),
            builder: builder.clone(),
            args: vec!["sh".into(), "-c".into(), script(shape).into()],
            ..Derivation::default()
        };
        drv.input_srcs.insert(bb.clone());
        drv.env.insert("builder".into(), builder.clone());
        drv.env.insert("name".into(), name.clone());
        drv.env.insert("system".into(), "x86_64-linux".into());
        let dep_outs: Vec<String> = deps
            .iter()
            .map(|&d| store.print_path(&nodes[d].1))
            .collect();
        drv.env.insert("deps".into(), dep_outs.join(" "));
        for &d in &deps {
            has_dependents[d] = true;
            drv.input_drvs
                .insert(nodes[d].0.clone(), BTreeSet::from(["out".to_string()]));
        }
        drv.outputs.insert("out".into(), DerivationOutput::Deferred);
        let mut cache = HashMap::new();
        drv.fill_output_paths::<DerivationError, _>(&dir, &name, &mut |p| {
            Ok(hash_of(&dir, &drvs, &mut cache, p))
        })?;
        let out = drv.outputs["out"]
            .path()
            .ok_or("output path not computed")?
            .clone();
        let drv_path = store.write_derivation(&drv, &name)?;
        drvs.insert(drv_path.clone(), drv);
        nodes.push((drv_path, out));
    }
    for (i, (drv, _)) in nodes.iter().enumerate() {
        if !has_dependents[i] {
            println!("{}", store.print_path(drv));
        }
    }
    Ok(())
}

/// The node's builder script (the same as `graph.nix`'s).
fn script(shape: &str) -> &'static str {
    match shape {
        "refchain" => "echo $name $deps > $out",
        _ => "echo $name > $out",
    }
}

fn hash_of(
    dir: &StoreDir,
    drvs: &HashMap<StorePath, Derivation>,
    cache: &mut HashMap<StorePath, DrvHash>,
    path: &StorePath,
) -> DrvHash {
    if let Some(h) = cache.get(path) {
        return h.clone();
    }
    let h = drvs[path]
        .hash_modulo::<DerivationError, _>(dir, false, &mut |p| Ok(hash_of(dir, drvs, cache, p)))
        .expect("inputs were written by this program");
    cache.insert(path.clone(), h.clone());
    h
}
