//! `kiln store gc`, `delete`, `roots`, `add-root`: the garbage collector
//! and its roots (see `docs/store.md`, "Garbage collection").

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use kiln_store::gc::{GcAction, GcOptions, GcReport, Holder};
use kiln_store::optimise::OptimiseOptions;
use kiln_store::store::{Store, StoreError};
use serde_json::{Value, json};

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, parse_store_path_arg};
use crate::{exit, output, say};

/// Delete every store path no GC root keeps alive, and print each one.
///
/// Roots: `result` links of `kiln build` (wherever they are), links made by
/// `kiln store add-root`, developer shells, and the paths running kiln
/// processes use. What a root names stays, with everything it refers to;
/// with keep-outputs and keep-derivations (both on by default) also the
/// outputs of alive derivations and the derivations of alive outputs, so a
/// root keeps what is needed to rebuild it without a network.
///
/// Safe to interrupt at any moment, and safe while builds run.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store gc --dry-run             what would be deleted
  kiln store gc --max-freed 1G        stop after about 1 GiB
  kiln store gc --keep-outputs false  also delete build-time-only inputs")]
pub struct GcArgs {
    /// Only print what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Stop once paths of this many bytes (NAR size) are chosen; K, M, G
    /// and T suffixes are powers of 1024.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_freed: Option<u64>,
    /// Print a JSON object instead of lines.
    #[arg(long)]
    json: bool,
    /// Keep the outputs of alive derivations (Nix's keep-outputs).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    keep_outputs: bool,
    /// Keep the derivations of alive outputs (Nix's keep-derivations).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    keep_derivations: bool,
}

/// Delete these store paths (and the dead paths that refer to them);
/// refused, naming the root, if any of them is still alive.
#[derive(Args, Debug)]
#[command(after_help = "\
Example:
  kiln store delete /kiln/store/<hash>-old-hello")]
pub struct DeleteArgs {
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

/// List the GC roots: what holds each, the store path, and its kind
/// (indirect, direct, shell, temp).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store roots
  kiln store roots --json")]
pub struct RootsArgs {
    /// Print a JSON array instead of lines.
    #[arg(long)]
    json: bool,
}

/// Make LINK a symlink to PATH that keeps it alive: a direct root if LINK
/// is inside STATE/gcroots, otherwise an indirect one (like a `result`
/// link: removing LINK releases it).
#[derive(Args, Debug)]
#[command(after_help = "\
Example:
  kiln store add-root /kiln/store/<hash>-hello ./keep-hello")]
pub struct AddRootArgs {
    #[arg(value_name = "PATH")]
    path: String,
    #[arg(value_name = "LINK")]
    link: PathBuf,
}

/// Hard-link identical files of the store to each other, through
/// STORE/.links (as `nix-store --optimise`), and print how many files were
/// linked and the bytes saved.
///
/// Files are identical when their NAR hashes are (contents and the
/// executable bit); only regular files are linked. Readers never see a
/// partial file (each duplicate is replaced by a rename), a collection may
/// run meanwhile, and an interrupted run is finished by the next one.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store optimise --dry-run   how much would be saved
  kiln store optimise
  kiln store optimise --json")]
pub struct OptimiseArgs {
    /// Only count what would be linked; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON object instead of a line.
    #[arg(long)]
    json: bool,
}

pub fn optimise(global: &GlobalOpts, args: OptimiseArgs) -> anyhow::Result<()> {
    let store = open_store(global)?;
    let report = store
        .optimise(OptimiseOptions {
            dry_run: args.dry_run,
        })
        .context("optimising the store")?;
    if args.json {
        let value = json!({
            "dryRun": args.dry_run,
            "paths": report.paths,
            "files": report.files,
            "filesLinked": report.files_linked,
            "bytesSaved": report.bytes_saved,
        });
        let text = serde_json::to_string_pretty(&value)? + "\n";
        return output::stdout(text.as_bytes()).context("printing the report");
    }
    if !global.quiet {
        let mib = report.bytes_saved as f64 / (1024.0 * 1024.0);
        let files = match report.files_linked {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        if args.dry_run {
            say!("would free {mib:.2} MiB by hard-linking {files}");
        } else {
            say!("{mib:.2} MiB freed by hard-linking {files}");
        }
    }
    Ok(())
}

pub fn gc(global: &GlobalOpts, args: GcArgs) -> anyhow::Result<()> {
    let store = open_store(global)?;
    let options = GcOptions {
        action: GcAction::DeleteDead,
        dry_run: args.dry_run,
        max_freed: args.max_freed,
        keep_outputs: args.keep_outputs,
        keep_derivations: args.keep_derivations,
    };
    let report = store
        .collect_garbage(&options)
        .context("collecting garbage")?;
    print_report(global, &store, &report, args.dry_run, args.json)
}

pub fn delete(global: &GlobalOpts, args: DeleteArgs) -> anyhow::Result<()> {
    let store = open_store(global)?;
    let paths = args
        .paths
        .iter()
        .map(|arg| parse_store_path_arg(store.config(), arg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = GcOptions {
        action: GcAction::DeleteSpecific(paths),
        ..GcOptions::default()
    };
    let report = store.collect_garbage(&options).map_err(|err| match err {
        StoreError::NotValid(_) => exit::user(err),
        err => anyhow::Error::new(err),
    })?;
    print_report(global, &store, &report, false, false)
}

fn print_report(
    global: &GlobalOpts,
    store: &Store,
    report: &GcReport,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let printed: Vec<String> = report.deleted.iter().map(|p| store.print_path(p)).collect();
    if json {
        let value = json!({
            "dryRun": dry_run,
            "deleted": printed,
            "leftovers": report.leftovers,
            "bytesFreed": report.bytes_freed,
        });
        let text = serde_json::to_string_pretty(&value)? + "\n";
        return output::stdout(text.as_bytes()).context("printing the report");
    }
    let mut text = String::new();
    for path in &printed {
        text.push_str(path);
        text.push('\n');
    }
    output::stdout(text.as_bytes()).context("printing the deleted paths")?;
    if !global.quiet {
        let paths = match printed.len() {
            1 => "1 store path".to_string(),
            n => format!("{n} store paths"),
        };
        let leftovers = match report.leftovers.len() {
            0 => String::new(),
            n => format!(" and {n} unregistered leftovers"),
        };
        let mib = report.bytes_freed as f64 / (1024.0 * 1024.0);
        if dry_run {
            say!("would delete {paths}, {mib:.2} MiB");
        } else {
            say!("deleted {paths}{leftovers}, {mib:.2} MiB freed");
        }
    }
    Ok(())
}

pub fn roots(global: &GlobalOpts, args: RootsArgs) -> anyhow::Result<()> {
    let store = open_store(global)?;
    let roots = store.roots().context("finding the GC roots")?;
    let mut text = String::new();
    if args.json {
        let list: Vec<Value> = roots
            .iter()
            .map(|root| {
                let mut object = json!({
                    "path": store.print_path(&root.path),
                    "kind": root.kind.as_str(),
                    "holder": root.holder.to_string(),
                });
                let map = object.as_object_mut().expect("a JSON object literal");
                match &root.holder {
                    Holder::Link(link) => map.insert("link".into(), json!(link)),
                    Holder::Process { pid } => map.insert("pid".into(), json!(pid)),
                };
                object
            })
            .collect();
        text = serde_json::to_string_pretty(&list)? + "\n";
    } else {
        for root in &roots {
            text += &format!(
                "{} -> {} ({})\n",
                root.holder,
                store.print_path(&root.path),
                root.kind.as_str()
            );
        }
    }
    output::stdout(text.as_bytes()).context("printing the roots")
}

pub fn add_root(global: &GlobalOpts, args: AddRootArgs) -> anyhow::Result<()> {
    let store = open_store(global)?;
    let path = parse_store_path_arg(store.config(), &args.path)?;
    let link = store.add_root(&path, &args.link).map_err(|err| {
        if err.is_bad_input() {
            exit::user(err)
        } else {
            anyhow::Error::new(err)
        }
    })?;
    output::stdout(format!("{}\n", link.display()).as_bytes()).context("printing the link")
}

/// `123`, `10K`, `1.5G`: bytes, with binary suffixes.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown unit {unit:?}: use K, M, G or T")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| anyhow!("{text:?} is not a number of bytes").to_string())?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} is not a number of bytes"));
    }
    Ok((value * (1u64 << shift) as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_sizes() {
        assert_eq!(super::parse_bytes("123"), Ok(123));
        assert_eq!(super::parse_bytes("10K"), Ok(10240));
        assert_eq!(super::parse_bytes("1.5m"), Ok(1536 * 1024));
        assert!(super::parse_bytes("-1").is_err());
        assert!(super::parse_bytes("3X").is_err());
    }
}
