//! Instantiation against Nix 2.8: every expression in
//! `store/tests/vectors/derivations/` must give exactly the `.drv` path,
//! the `.drv` bytes and the output paths Nix recorded (`paths.tsv`).
//!
//! Each case is evaluated twice: with a dry-run store (paths only) and
//! with a real store in a temporary root (the written `.drv` is compared
//! byte for byte). Failures are collected and named together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use kiln_eval::{EvalOptions, EvalStore, Evaluation, KilnEvalStore, Value};
use kiln_store::StoreDir;
use kiln_store::store::{Store, StoreConfig};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/tests/vectors/derivations")
}

struct Expected {
    drv_path: String,
    outputs: BTreeMap<String, String>,
}

fn expected() -> BTreeMap<String, Expected> {
    let text = std::fs::read_to_string(vectors().join("paths.tsv")).expect("paths.tsv");
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(name), Some(drv_path)) = (cols.next(), cols.next()) else {
            continue;
        };
        let outputs = cols
            .filter_map(|c| c.split_once('='))
            .map(|(o, p)| (o.to_owned(), p.to_owned()))
            .collect();
        out.insert(
            name.to_owned(),
            Expected {
                drv_path: drv_path.to_owned(),
                outputs,
            },
        );
    }
    out
}

/// Evaluate `file`, returning its drvPath and the outPath of each output.
fn instantiate(
    store: Rc<dyn EvalStore>,
    file: &Path,
    outputs: &[String],
) -> Result<(String, BTreeMap<String, String>), String> {
    let options = EvalOptions {
        base_dir: vectors(),
        ..EvalOptions::default()
    };
    let mut session = Evaluation::with_store(options, store.clone());
    let result = (|| {
        let value = session.eval_file(file)?;
        let drv_path = string_at(&mut session, &value, "drvPath")?;
        let mut paths = BTreeMap::new();
        for output in outputs {
            let out = session.select_path(value.clone(), &format!("{output}.outPath"), &[])?;
            let text = session.machine().force_string(&out)?;
            paths.insert(output.clone(), text.as_str().to_owned());
        }
        Ok((drv_path, paths))
    })();
    let result = result.map_err(|e| session.render_error(&e))?;
    store.flush()?;
    Ok(result)
}

fn string_at(session: &mut Evaluation, value: &Value, attr: &str) -> kiln_eval::EvalResult<String> {
    let v = session.select_path(value.clone(), attr, &[])?;
    Ok(session.machine().force_string(&v)?.as_str().to_owned())
}

#[test]
fn every_vector_instantiates_to_nixs_paths_and_bytes() {
    let cases = expected();
    assert_eq!(cases.len(), 54, "paths.tsv should list 54 cases");
    let dir = StoreDir::new("/nix/store").expect("store dir");
    let root = tempfile::tempdir().expect("temp root");
    let store = Store::open(StoreConfig {
        root: root.path().to_path_buf(),
        store_dir: dir.clone(),
    })
    .expect("open store");
    let writing: Rc<dyn EvalStore> = Rc::new(KilnEvalStore::writing(store));
    let physical = root.path().join("nix/store");

    let mut failures = Vec::new();
    for (name, want) in &cases {
        let file = vectors().join(format!("{name}.nix"));
        let outputs: Vec<String> = want.outputs.keys().cloned().collect();
        let dry: Rc<dyn EvalStore> = Rc::new(KilnEvalStore::dry_run(dir.clone()));
        for (mode, store) in [("dry-run", dry), ("writing", writing.clone())] {
            match instantiate(store, &file, &outputs) {
                Err(e) => failures.push(format!("{name} ({mode}): evaluation failed: {e}")),
                Ok((drv_path, paths)) => {
                    if drv_path != want.drv_path {
                        failures.push(format!(
                            "{name} ({mode}): drvPath {drv_path}, Nix has {}",
                            want.drv_path
                        ));
                    }
                    for (output, want_path) in &want.outputs {
                        // Floating CA outputs have no path (a placeholder).
                        if !want_path.is_empty() && paths.get(output) != Some(want_path) {
                            failures.push(format!(
                                "{name} ({mode}): output {output} is {:?}, Nix has {want_path}",
                                paths.get(output)
                            ));
                        }
                    }
                }
            }
        }
        let want_bytes = std::fs::read(vectors().join(format!("{name}.drv"))).expect("drv file");
        let base = want.drv_path.trim_start_matches("/nix/store/");
        match std::fs::read(physical.join(base)) {
            Ok(bytes) if bytes == want_bytes => {}
            Ok(_) => failures.push(format!("{name}: written .drv bytes differ from Nix's")),
            Err(e) => failures.push(format!("{name}: .drv not written at {base}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
