//! Nix 2.8's language test suite, run against kiln's evaluator.
//!
//! The suite lives outside the project, in `../shared/conformance/nix-lang/`
//! (see its README and MANIFEST.tsv); it is read at run time and never
//! copied. When it is absent the test says `skipped: …` and passes.
//!
//! For each test, as upstream's runner does (working directory = the
//! suite, `TEST_VAR=foo`, search path `dir3:dir4` after any `-I` of the
//! test's `.flags`):
//! - `parse-okay-*` must parse and `parse-fail-*` must not;
//! - `eval-fail-*` must fail to evaluate (without `--strict`);
//! - `eval-okay-*` must print exactly `NAME.exp` (`--strict`), or
//!   `NAME.exp.xml` (`--xml --strict`).
//!
//! Tests named in `known-failing.txt` may fail; one of them that passes
//! fails the run, so the list stays honest. Prints `N passed, N failed`
//! and the names of failures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kiln_eval::{AutoArg, EvalOptions, Evaluation, OutputFormat, SearchPathEntry};

/// Print past the test harness's output capture, so the counts and the
/// failures show in every run (CI logs included), not only on failure.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nix-lang")
}

#[derive(Debug)]
struct Case {
    name: String,
    kind: String,
}

fn read_manifest(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() >= 4 && cols[3] == "yes").then(|| Case {
                name: cols[0].to_owned(),
                kind: cols[1].to_owned(),
            })
        })
        .collect()
}

/// The test's flags: (-I entries, --arg/--argstr, -A paths).
fn read_flags(dir: &Path, name: &str) -> (Vec<String>, Vec<(String, AutoArg)>, Vec<String>) {
    let mut includes = Vec::new();
    let mut args = Vec::new();
    let mut attrs = Vec::new();
    let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.flags"))) else {
        return (includes, args, attrs);
    };
    let text = text.replace("lang/", "./");
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        match words[i] {
            "-I" if i + 1 < words.len() => {
                includes.push(words[i + 1].to_owned());
                i += 2;
            }
            "--arg" if i + 2 < words.len() => {
                args.push((
                    words[i + 1].to_owned(),
                    AutoArg::Expr(words[i + 2].to_owned()),
                ));
                i += 3;
            }
            "--argstr" if i + 2 < words.len() => {
                args.push((
                    words[i + 1].to_owned(),
                    AutoArg::Str(words[i + 2].to_owned()),
                ));
                i += 3;
            }
            "-A" if i + 1 < words.len() => {
                attrs.push(words[i + 1].to_owned());
                i += 2;
            }
            _ => i += 1,
        }
    }
    (includes, args, attrs)
}

/// Run one test; `Ok(())` when it behaves as expected, else why not.
fn run_case(dir: PathBuf, case_name: String, kind: String) -> Result<(), String> {
    let file = dir.join(format!("{case_name}.nix"));
    let (includes, args, attrs) = read_flags(&dir, &case_name);
    let mut search_path: Vec<SearchPathEntry> = includes
        .iter()
        .map(|i| SearchPathEntry::parse(i, &dir))
        .collect();
    search_path.extend(SearchPathEntry::parse_list("dir3:dir4", &dir));
    let options = EvalOptions {
        search_path,
        base_dir: dir.clone(),
        ..EvalOptions::default()
    };
    let mut session = Evaluation::new(options);
    match kind.as_str() {
        "parse-okay" | "parse-fail" => {
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            let parsed = session.check_syntax(&text, &file);
            match (kind.as_str(), parsed) {
                ("parse-okay", Err(e)) => Err(format!("does not parse: {e}")),
                ("parse-fail", Ok(())) => Err("parses but should not".into()),
                _ => Ok(()),
            }
        }
        "eval-fail" => {
            let result = session
                .eval_file(&file)
                .and_then(|v| session.render(&v, OutputFormat::Nix, false));
            match result {
                Ok(out) => Err(format!("evaluates to {out}")),
                Err(_) => Ok(()),
            }
        }
        _ => {
            let xml = dir.join(format!("{case_name}.exp.xml"));
            let (expected_file, format) = if xml.exists() {
                (xml, OutputFormat::Xml)
            } else {
                (dir.join(format!("{case_name}.exp")), OutputFormat::Nix)
            };
            let expected = std::fs::read_to_string(&expected_file).map_err(|e| e.to_string())?;
            let result = (|| {
                let root = session.eval_file(&file)?;
                let path = attrs.first().map(String::as_str).unwrap_or("");
                let value = session.select_path(root, path, &args)?;
                let mut out = session.render(&value, format, true)?;
                if format == OutputFormat::Nix {
                    out.push('\n');
                }
                Ok(out)
            })();
            match result {
                Ok(out) if out == expected => Ok(()),
                Ok(out) => Err(format!("expected {:?}\n  got      {:?}", expected, out)),
                Err(e) => Err(format!("error: {}", session.render_error(&e))),
            }
        }
    }
}

#[test]
fn nix_language_suite() {
    let dir = suite_dir();
    if !dir.join("MANIFEST.tsv").exists() {
        // Under CI the data must be there: a suite that silently runs no
        // case would let CI pass by accident.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the Nix language suite is missing at {}",
            dir.display()
        );
        say!("skipped: Nix language suite not found at {}", dir.display());
        return;
    }
    let dir = std::fs::canonicalize(&dir).expect("canonical suite path");
    // SAFETY: this is the only test in this binary, so no other thread
    // reads the environment concurrently. The suite needs TEST_VAR=foo.
    unsafe { std::env::set_var("TEST_VAR", "foo") };
    let known_failing: BTreeSet<String> = include_str!("known-failing.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();

    let cases = read_manifest(&dir);
    let (mut passed, mut failed) = (0, 0);
    let mut unexpected_failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    let mut eval_okay = (0, 0);
    for case in &cases {
        let (d, n, k) = (dir.clone(), case.name.clone(), case.kind.clone());
        let outcome = std::panic::catch_unwind(move || {
            kiln_eval::run_with_big_stack(move || run_case(d, n, k))
        })
        .unwrap_or_else(|_| Err("panicked".into()));
        if case.kind == "eval-okay" {
            eval_okay.1 += 1;
        }
        match outcome {
            Ok(()) => {
                passed += 1;
                if case.kind == "eval-okay" {
                    eval_okay.0 += 1;
                }
                if known_failing.contains(&case.name) {
                    unexpected_passes.push(case.name.clone());
                }
            }
            Err(why) => {
                failed += 1;
                say!("FAIL {}: {}", case.name, why);
                if !known_failing.contains(&case.name) {
                    unexpected_failures.push(case.name.clone());
                }
            }
        }
    }
    say!(
        "{passed} passed, {failed} failed (eval-okay: {} of {})",
        eval_okay.0,
        eval_okay.1
    );
    assert!(
        unexpected_failures.is_empty(),
        "failures not listed in known-failing.txt: {unexpected_failures:?}"
    );
    assert!(
        unexpected_passes.is_empty(),
        "listed in known-failing.txt but now passing (remove them): {unexpected_passes:?}"
    );
    assert!(
        eval_okay.0 * 10 >= eval_okay.1 * 9,
        "fewer than 90% of eval-okay tests pass"
    );
}
