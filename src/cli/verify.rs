//! `kiln store verify`: report what rotted in the store.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use kiln_store::store::Store;
use kiln_store::verify::{Problem, VerifyOptions, VerifyReport, verify_store};
use serde_json::{Value, json};

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, open_store_read_only};

/// Check the store against its database: valid paths missing on disk,
/// metadata that is not canonical (mode, mtime, owner, xattrs), references
/// whose files are gone, and, with --check-contents, files whose NAR hash
/// differs from the recorded one. Entries of the store directory that are
/// not valid paths are listed as strays (they are not damage).
///
/// --repair puts back what it can: metadata is made canonical, and a path
/// built by a derivation still in the store is rebuilt. Paths no
/// derivation is known for (added files, `.drv` files) are reported with
/// what to do instead. The store is verified again after repairing.
///
/// Exits 1 when something is (still) damaged.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store verify                       quick: existence, metadata, references
  kiln store verify --check-contents      also hash every path
  kiln store verify --check-contents --repair   rebuild what rotted
  kiln store verify --json")]
pub struct VerifyArgs {
    /// Hash every valid path and compare with the recorded NAR hash.
    #[arg(long)]
    check_contents: bool,
    /// Repair damaged paths: canonicalise metadata, rebuild from the
    /// deriver.
    #[arg(long)]
    repair: bool,
    /// Print one JSON object: `checked`, `problems`, `strays`.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &GlobalOpts, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = if args.repair {
        open_store(global)?
    } else {
        open_store_read_only(global)?
    };
    let options = VerifyOptions {
        check_contents: args.check_contents,
    };
    let mut report = verify_store(&store, options)?;
    let mut repaired = None;
    if args.repair && report.is_damaged() {
        let outcomes = crate::cli::repair::repair(&store, &report);
        report = verify_store(&store, options)?;
        repaired = Some(outcomes);
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        let mut json = report_json(&store, &report);
        if let Some(outcomes) = &repaired {
            json.as_object_mut()
                .expect("an object")
                .insert("repairs".into(), repairs_json(&store, outcomes));
        }
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else {
        print_report(&store, &report);
    }
    Ok(if report.is_damaged() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn subject(store: &Store, path: &Option<kiln_store::StorePath>) -> String {
    match path {
        Some(path) => store.print_path(path),
        None => "(a path that is not valid)".to_string(),
    }
}

fn print_report(store: &Store, report: &VerifyReport) {
    for (path, problem) in &report.problems {
        crate::say!("error: {}: {problem}", subject(store, path));
    }
    for stray in &report.strays {
        crate::say!("warning: stray {}: {}", stray.path.display(), stray.kind);
    }
    let damaged: std::collections::BTreeSet<_> =
        report.problems.iter().map(|(path, _)| path).collect();
    if report.is_damaged() {
        crate::say!(
            "error: {} of {} valid paths are damaged ({} problems)",
            damaged.len(),
            report.checked,
            report.problems.len()
        );
    } else {
        crate::say!("checked {} valid paths: all intact", report.checked);
    }
}

fn problem_json(store: &Store, problem: &Problem) -> Value {
    let mut object = json!({ "problem": problem.kind(), "message": problem.to_string() });
    let map = object.as_object_mut().expect("an object literal");
    match problem {
        Problem::Modified {
            expected,
            actual,
            expected_size,
            actual_size,
        } => {
            map.insert("expectedNarHash".into(), json!(expected.to_sri()));
            map.insert("actualNarHash".into(), json!(actual.to_sri()));
            map.insert("expectedNarSize".into(), json!(expected_size));
            map.insert("actualNarSize".into(), json!(actual_size));
        }
        Problem::NonCanonical(files) => {
            let files: Vec<Value> = files
                .iter()
                .map(|f| json!({ "file": f.file.display().to_string(), "problem": f.problem }))
                .collect();
            map.insert("files".into(), json!(files));
        }
        Problem::ReferenceMissing(reference) => {
            map.insert("reference".into(), json!(store.print_path(reference)));
        }
        Problem::Missing | Problem::ReferenceNotValid(_) | Problem::Unreadable(_) => {}
    }
    object
}

fn report_json(store: &Store, report: &VerifyReport) -> Value {
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|(path, problem)| {
            let mut value = problem_json(store, problem);
            let path = path.as_ref().map(|p| store.print_path(p));
            value
                .as_object_mut()
                .expect("an object")
                .insert("path".into(), json!(path));
            value
        })
        .collect();
    let strays: Vec<Value> = report
        .strays
        .iter()
        .map(|s| json!({ "path": s.path.display().to_string(), "reason": s.kind.to_string() }))
        .collect();
    json!({
        "checked": report.checked,
        "damaged": report.is_damaged(),
        "problems": problems,
        "strays": strays,
    })
}

fn repairs_json(
    store: &Store,
    outcomes: &std::collections::BTreeMap<kiln_store::StorePath, crate::cli::repair::Outcome>,
) -> Value {
    use crate::cli::repair::Outcome;
    let list: Vec<Value> = outcomes
        .iter()
        .map(|(path, outcome)| {
            let path = store.print_path(path);
            match outcome {
                Outcome::Canonicalised => {
                    json!({ "path": path, "repaired": true, "how": "canonicalised" })
                }
                Outcome::Rebuilt(drv) => {
                    json!({ "path": path, "repaired": true, "how": "rebuilt", "deriver": drv })
                }
                Outcome::Cannot(why) => json!({ "path": path, "repaired": false, "reason": why }),
            }
        })
        .collect();
    json!(list)
}
