//! nixpkgs' lib (2022-06-01, the Nix 2.8 era) and its own test suites, run
//! under kiln.
//!
//! The data lives outside the project, in
//! `../shared/conformance/nixpkgs-lib-2022/` (see its README); it is read at
//! run time, copied to a temporary directory (the copy is patched and
//! written to, the original never), and never copied into the repository.
//! When it is absent the test says `skipped: …`, except under `CI=true`,
//! where that is a failure.
//!
//! - `lib/tests/misc.nix` and `lib/tests/systems.nix`: test by test. Their
//!   `runTests` stops at the first test that throws, so the copy's
//!   `runTests` is the identity and each test is evaluated alone as
//!   `t.expr == t.expected` (what `runTests` compares).
//! - `lib/tests/modules.sh` and `lib/tests/sources.sh`: the scripts
//!   themselves, with `nix-instantiate` and `nix` shims (in this directory)
//!   first on `PATH`; a check is named by the command the script reports.
//!
//! Checks named in `known-failing.txt` may fail; one of them that passes
//! fails the run, so the list stays honest. Prints `N passed, M failed` and
//! every failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Print past the test harness's output capture, so the counts and the
/// failures show in every run (CI logs included).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// `../shared/conformance/nixpkgs-lib-2022` beside the checkout, or
/// `$KILN_SHARED/conformance/nixpkgs-lib-2022` (a worktree elsewhere).
fn data_dir() -> PathBuf {
    let shared = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    shared.join("conformance/nixpkgs-lib-2022")
}

fn shim_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nixpkgs-lib")
}

/// One check's outcome: its name and, when it failed, why.
struct Outcome {
    name: String,
    failure: Option<String>,
}

/// A kiln command in `dir`, on a private root, with no inherited kiln
/// settings.
fn kiln(scratch: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(KILN);
    for var in ["KILN_ROOT", "KILN_LOG", "KILN_PATH"] {
        cmd.env_remove(var);
    }
    // misc.nix expects Nix's store directory in a derivation's path.
    cmd.env("KILN_STORE_DIR", "/nix/store");
    cmd.env("HOME", scratch.join("home"))
        .env("XDG_DATA_HOME", scratch.join("home/.local/share"))
        .env("KILN_ROOT", scratch.join("root"))
        .current_dir(dir);
    cmd
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Replace the one `runTests` call of a test file by the identity, so the
/// file evaluates to its set of tests.
fn unwrap_run_tests(file: &Path, call: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        text.matches(call).count(),
        1,
        "{}: expected one `{call}`",
        file.display()
    );
    std::fs::write(file, text.replace(call, "(tests: tests) {")).unwrap();
}

/// Each test of `file` (relative to `lib/tests`), evaluated alone.
fn run_test_file(scratch: &Path, lib_tests: &Path, file: &str) -> Vec<Outcome> {
    let names = kiln(scratch, lib_tests)
        .args(["eval", "--json", "-E"])
        .arg(format!("builtins.attrNames (import ./{file})"))
        .output()
        .unwrap();
    if !names.status.success() {
        return vec![Outcome {
            name: format!("{file}: the list of tests"),
            failure: Some(String::from_utf8_lossy(&names.stderr).into_owned()),
        }];
    }
    let names: Vec<String> = serde_json::from_slice(&names.stdout).unwrap();
    names
        .iter()
        // As `runTests`: only attributes named `test…` are tests.
        .filter(|name| name.starts_with("test"))
        .map(|name| {
            let out = kiln(scratch, lib_tests)
                .args(["eval", "--strict", "-E"])
                .arg(format!(
                    "let t = (import ./{file}).\"{name}\"; in t.expr == t.expected"
                ))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let failure = match (out.status.success(), stdout.trim()) {
                (true, "true") => None,
                (true, _) => {
                    let shown = kiln(scratch, lib_tests)
                        .args(["eval", "--strict", "-E"])
                        .arg(format!("(import ./{file}).\"{name}\""))
                        .output()
                        .unwrap();
                    Some(format!(
                        "expr != expected: {}",
                        String::from_utf8_lossy(&shown.stdout).trim()
                    ))
                }
                (false, _) => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
            };
            Outcome {
                name: format!("{file}: {name}"),
                failure,
            }
        })
        .collect()
}

/// Run a test script of `lib/tests` with the shims first on PATH; returns
/// its exit status, stdout and stderr.
fn run_script(scratch: &Path, lib_tests: &Path, script: &str) -> (bool, String, String) {
    let path = format!(
        "{}:{}",
        shim_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // One stream, as a terminal shows it: the script's reports go to
    // stdout, the evaluator's errors to stderr.
    let out = Command::new("bash")
        .arg("-c")
        .arg("bash \"$0\" 2>&1")
        .arg(lib_tests.join(script))
        .env("PATH", path)
        .env("KILN", KILN)
        .env("TMPDIR", scratch)
        .env("HOME", scratch.join("home"))
        .env("XDG_DATA_HOME", scratch.join("home/.local/share"))
        .env("KILN_ROOT", scratch.join("root"))
        .env("KILN_STORE_DIR", "/nix/store")
        .env_remove("KILN_PATH")
        .env_remove("NIX_PATH")
        .current_dir(lib_tests)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `modules.sh`: one outcome per check. The script counts passes and, for
/// each failure, prints `error: Expected …` and then the command
/// (`$ nix-instantiate -E '…' -A '…'`); a check is named by both.
fn run_modules(scratch: &Path, lib_tests: &Path) -> Vec<Outcome> {
    let (_, stdout, stderr) = run_script(scratch, lib_tests, "modules.sh");
    let all = format!("{stdout}\n{stderr}");
    let count = |label: &str| -> Option<usize> {
        all.lines()
            .find_map(|l| l.strip_suffix(label)?.trim().parse().ok())
    };
    let (Some(pass), Some(fail)) = (count(" Pass"), count(" Fail")) else {
        return vec![Outcome {
            name: "modules.sh: the script's totals".into(),
            failure: Some(all),
        }];
    };
    let lines: Vec<&str> = all.lines().collect();
    let mut outcomes: Vec<Outcome> = (0..pass)
        .map(|i| Outcome {
            name: format!("modules.sh: passing check {i}"),
            failure: None,
        })
        .collect();
    let mut failures = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("error: Expected") {
            let command = lines.get(i + 1).copied().unwrap_or("");
            let detail: Vec<&str> = lines[i + 2..]
                .iter()
                .take_while(|l| !l.starts_with("error: Expected") && !l.starts_with("======"))
                .take(12)
                .copied()
                .collect();
            failures.push(Outcome {
                name: format!(
                    "modules.sh: {} {}",
                    line.trim_end_matches(", while evaluating"),
                    command
                ),
                failure: Some(detail.join("\n")),
            });
        }
    }
    assert_eq!(
        failures.len(),
        fail,
        "modules.sh reported {fail} failures, the runner found {}",
        failures.len()
    );
    outcomes.extend(failures);
    outcomes
}

/// `sources.sh`: three checks, the script stops at the first failure.
fn run_sources(scratch: &Path, lib_tests: &Path) -> Vec<Outcome> {
    let (ok, stdout, stderr) = run_script(scratch, lib_tests, "sources.sh");
    vec![Outcome {
        name: "sources.sh".into(),
        failure: (!ok || !stdout.contains("tests ok")).then(|| format!("{stdout}\n{stderr}")),
    }]
}

fn known_failing() -> BTreeSet<String> {
    let text = std::fs::read_to_string(shim_dir().join("known-failing.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn nixpkgs_lib_test_suites() {
    let data = data_dir();
    if !data.join("lib/tests/misc.nix").is_file() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "CI=true: nixpkgs lib data missing at {}",
            data.display()
        );
        say!("skipped: nixpkgs lib data not found at {}", data.display());
        return;
    }
    let scratch = tempfile::Builder::new()
        .prefix("kiln-nixpkgs-lib-")
        .tempdir()
        .unwrap();
    let scratch = scratch.path();
    let copy = scratch.join("nixpkgs");
    copy_tree(&data, &copy);
    std::fs::create_dir_all(scratch.join("home")).unwrap();
    std::fs::create_dir_all(scratch.join("root")).unwrap();
    let lib_tests = copy.join("lib/tests");
    unwrap_run_tests(&lib_tests.join("misc.nix"), "\nrunTests {");
    unwrap_run_tests(&lib_tests.join("systems.nix"), "lib.runTests {");

    let mut outcomes = run_test_file(scratch, &lib_tests, "misc.nix");
    outcomes.extend(run_test_file(scratch, &lib_tests, "systems.nix"));
    outcomes.extend(run_modules(scratch, &lib_tests));
    outcomes.extend(run_sources(scratch, &lib_tests));

    let known = known_failing();
    let passed = outcomes.iter().filter(|o| o.failure.is_none()).count();
    let failed = outcomes.len() - passed;
    say!("nixpkgs lib: {passed} passed, {failed} failed");
    let mut unexpected = Vec::new();
    for o in &outcomes {
        match (&o.failure, known.contains(&o.name)) {
            (Some(why), listed) => {
                say!(
                    "FAILED{}: {}\n{}",
                    if listed { " (known)" } else { "" },
                    o.name,
                    why.trim_end()
                );
                if !listed {
                    unexpected.push(o.name.clone());
                }
            }
            (None, true) => unexpected.push(format!(
                "{} passes: remove it from known-failing.txt",
                o.name
            )),
            (None, false) => {}
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected outcomes:\n{}",
        unexpected.join("\n")
    );
}
