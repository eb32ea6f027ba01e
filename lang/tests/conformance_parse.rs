//! Nix 2.8's language tests, parse half: every `parse-okay-*.nix` must
//! parse, every `parse-fail-*.nix` must fail, and every `eval-*.nix` must
//! parse, except `eval-fail-path-slash.nix`, whose error Nix raises while
//! parsing.
//!
//! The files are read at run time from `../shared/conformance/nix-lang`
//! next to the workspace (they are not part of the project); when that
//! directory is absent the test says `skipped: …` and passes.

use std::path::{Path, PathBuf};

use kiln_lang::{Interner, SourceMap};

/// Print past the test harness's output capture, so the counts and the
/// failures show in every run (CI logs included), not only on failure.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eval-*` tests that fail at parse time in Nix 2.8 too.
const EVAL_TESTS_FAILING_AT_PARSE: &[&str] = &["eval-fail-path-slash"];

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nix-lang")
}

#[test]
fn conformance_parse() {
    let dir = suite_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // Under CI the data must be there: a suite that silently runs no
        // case would let CI pass by accident.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the Nix language suite is missing at {}",
            dir.display()
        );
        say!("skipped: {} not found", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nix"))
        .collect();
    files.sort();

    let mut passed = 0;
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let should_parse = if name.starts_with("parse-okay-") {
            true
        } else if name.starts_with("parse-fail-") {
            false
        } else if name.starts_with("eval-") {
            !EVAL_TESTS_FAILING_AT_PARSE.contains(&name.as_str())
        } else {
            continue; // helper files such as lib.nix
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        let mut map = SourceMap::new();
        let file = map.add(path.display().to_string(), Some(path.clone()), text);
        let mut names = Interner::new();
        let result = kiln_lang::parse(file, map.text(file), &mut names);
        match (should_parse, result) {
            (true, Ok(_)) | (false, Err(_)) => passed += 1,
            (true, Err(e)) => failures.push(format!(
                "{name}: should parse but failed:\n{}",
                e.to_diagnostic().render(&map)
            )),
            (false, Ok(_)) => failures.push(format!("{name}: should fail to parse but parsed")),
        }
    }
    say!("{passed} passed, {} failed", failures.len());
    for f in &failures {
        say!("FAILED {f}");
    }
    assert!(passed > 0, "no test files found in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} conformance failures",
        failures.len()
    );
}
