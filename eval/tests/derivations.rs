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
    store.flush().map_err(|e| e.to_string())?;
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

/// String context through the string builtins, compared with what
/// `nix-instantiate --eval --strict` (Nix 2.8) printed for the same
/// expression (evaluated in the vectors directory, for `./src/hello.txt`).
#[test]
fn string_context_propagates_like_nix() {
    const EXPRESSION: &str = r#"let
  d = derivation { name = "d"; system = "x"; builder = "/b"; outputs = [ "out" "dev" ]; };
  f = builtins.toFile "f" "hello";
  s = "${d} ${d.dev} ${f}";
  g = builtins.getContext;
in {
  interp = g s;
  concat = g (d.outPath + "/x");
  tostring = g (toString [ d f ]);
  replace = g (builtins.replaceStrings [ "a" ] [ "${f}" ] "xax");
  replace2 = g (builtins.replaceStrings [ "x" ] [ "y" ] s);
  substr = g (builtins.substring 0 5 s);
  substrEmpty = g (builtins.substring 0 0 s);
  json = g (builtins.toJSON { a = d; b = [ f ]; });
  drvpath = g d.drvPath;
  discard = builtins.hasContext (builtins.unsafeDiscardStringContext s);
  discardOut = g (builtins.unsafeDiscardOutputDependency d.drvPath);
  concatSep = g (builtins.concatStringsSep "," [ f d.dev ]);
  baseName = g (baseNameOf d.outPath);
  dirName = g (dirOf d.outPath);
  split = g (builtins.elemAt (builtins.split "-" "${d}") 0);
  match = builtins.match "(.*)" "${f}";
  append = g (builtins.appendContext "x" { ${builtins.unsafeDiscardStringContext d.drvPath} = { outputs = [ "dev" ]; }; });
  tofile = g (builtins.toFile "t" "${f}");
  placeholder = builtins.placeholder "out";
  storeDir = builtins.storeDir;
  path = g (builtins.path { path = ./src/hello.txt; name = "c"; });
  interpPath = g "${./src/hello.txt}";
}"#;
    const NIX_PRINTED: &str = r#"{ append = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "dev" ]; }; }; baseName = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "out" ]; }; }; concat = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "out" ]; }; }; concatSep = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "dev" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; dirName = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "out" ]; }; }; discard = false; discardOut = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { path = true; }; }; drvpath = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { allOutputs = true; }; }; interp = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "dev" "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; interpPath = { "/nix/store/0x1yyvwmk8pp53kxl8c8w0n1bqh2yvyf-hello.txt" = { path = true; }; }; json = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; match = [ "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" ]; path = { "/nix/store/k43vq7pq4qzjcvhw8a92avhxdwvjwcgn-c" = { path = true; }; }; placeholder = "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"; replace = { "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; replace2 = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "dev" "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; split = { }; storeDir = "/nix/store"; substr = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "dev" "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; substrEmpty = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "dev" "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; tofile = { "/nix/store/x2ya54alyshszfy6c7a8aihidnzhb9js-t" = { path = true; }; }; tostring = { "/nix/store/04s49lw7m6vgvdrrkq4iilvzfq7848vy-d.drv" = { outputs = [ "out" ]; }; "/nix/store/r7f24v08nr4mqdf5qaxa8d0irqf3zl0q-f" = { path = true; }; }; }"#;
    let dir = StoreDir::new("/nix/store").expect("store dir");
    let options = EvalOptions {
        base_dir: vectors(),
        ..EvalOptions::default()
    };
    let mut session = Evaluation::with_store(options, Rc::new(KilnEvalStore::dry_run(dir)));
    let printed = session
        .eval_source(EXPRESSION, None, true)
        .map(|(text, _)| text)
        .map_err(|e| session.render_error(&e));
    assert_eq!(printed.as_deref(), Ok(NIX_PRINTED));
}

/// Evaluate `expr` strictly in the vectors directory with a dry-run
/// `/nix/store`; the printed value or the error message.
fn eval_in_vectors(expr: &str) -> Result<String, String> {
    let dir = StoreDir::new("/nix/store").expect("store dir");
    let options = EvalOptions {
        base_dir: vectors(),
        ..EvalOptions::default()
    };
    let mut session = Evaluation::with_store(options, Rc::new(KilnEvalStore::dry_run(dir)));
    session
        .eval_source(expr, None, true)
        .map(|(text, _)| text)
        .map_err(|e| e.to_string())
}

#[test]
fn builtins_path_checks_sha256_like_nix() {
    // Paths printed by `nix-instantiate --eval` (Nix 2.8) for the same calls.
    assert_eq!(
        eval_in_vectors(
            r#"builtins.path { path = ./src/hello.txt; sha256 = "16pn2s7n9npx0n0v2553vd0v9zwcg4l34fs5r8r8i3frhwp9gn5c"; }"#
        ),
        Ok("\"/nix/store/0x1yyvwmk8pp53kxl8c8w0n1bqh2yvyf-hello.txt\"".to_owned())
    );
    assert_eq!(
        eval_in_vectors(
            r#"builtins.path { path = ./src/hello.txt; recursive = false; sha256 = "0zspw3qjwgdw1wacyaz4hf4zndlhzd9dj1z0vargkly05sciv70p"; }"#
        ),
        Ok("\"/nix/store/hiipndxn86bk6kjw893b4h1f9zzg8avf-hello.txt\"".to_owned())
    );
    let err = eval_in_vectors(
        r#"builtins.path { path = ./src/hello.txt; sha256 = "0000000000000000000000000000000000000000000000000000"; }"#,
    )
    .expect_err("a wrong hash is an error");
    assert!(err.contains("store path mismatch"), "{err}");
}

#[test]
fn derivation_errors_name_the_problem() {
    let cases = [
        (
            r#"(derivation { name = "x"; system = "s"; }).drvPath"#,
            "required attribute 'builder' missing",
        ),
        (
            r#"(derivation { name = "x"; builder = "s"; }).drvPath"#,
            "required attribute 'system' missing",
        ),
        (
            r#"(derivation { name = "x.drv"; builder = "b"; system = "s"; }).drvPath"#,
            "not allowed to end in '.drv'",
        ),
        (
            r#"(derivation { name = "x"; builder = "b"; system = "s"; outputs = [ "a" "a" ]; }).drvPath"#,
            "duplicate derivation output 'a'",
        ),
        (
            r#"(derivation { name = "x"; builder = "b"; system = "s"; f = x: x; }).drvPath"#,
            "cannot coerce a function to a string",
        ),
        (
            r#"let d = derivation { name = "x"; builder = "b"; system = "s"; }; in builtins.toFile "t" "${d}""#,
            "must not contain a reference to a derivation",
        ),
        (
            r#"(derivation { name = "x"; builder = "b"; system = "s"; outputHash = "abc"; outputHashAlgo = "sha256"; }).drvPath"#,
            "invalid outputHash",
        ),
    ];
    for (expr, want) in cases {
        let err = eval_in_vectors(expr).expect_err(expr);
        assert!(err.contains(want), "{expr}: {err}");
    }
    // Laziness: a derivation with a broken attribute can be inspected
    // without computing its paths.
    assert_eq!(
        eval_in_vectors(
            r#"(derivation { name = "x"; builder = "b"; system = "s"; f = x: x; }).name"#
        ),
        Ok("\"x\"".to_owned())
    );
}
