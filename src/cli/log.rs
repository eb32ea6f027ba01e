//! `kiln log PATH|DRV` / `kiln log [FILE] -A ATTR`: print the build log of
//! a derivation, of the derivation that built an output path, or of the
//! derivations an expression describes (evaluated as `kiln build` does,
//! without writing anything).
//!
//! A running build's log is already at its final name and holds what the
//! builder printed until about a second ago; so does the log of a build
//! whose kiln was killed. Both are printed with a note on stderr.

use std::io::{IsTerminal, Write};

use anyhow::anyhow;
use clap::Args;
use kiln_builder::log::{LogEnd, log_path, read_log};
use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::cli::GlobalOpts;
use crate::cli::config::{derivers, open_store_read_only, parse_store_path_arg};
use crate::cli::installable::{SourceArgs, instantiate};
use crate::exit;

/// Show the build log of a derivation or output path.
///
/// Given a `.drv` path, its log; given an output path (or a `result`
/// link), the log of the derivation that built it; given a file and -A
/// (or -E), the logs of the derivations the attributes describe.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln log ./result
  kiln log /kiln/store/<hash>-hello.drv
  kiln log -A hello                        the attribute in ./default.nix
  kiln log ./pkgs.nix -A hello | tail")]
pub struct LogArgs {
    /// A `.drv` store path, an output path built by kiln, or a file to
    /// evaluate (with -A; default ./default.nix).
    #[arg(value_name = "PATH|DRV|FILE")]
    pub installables: Vec<String>,
    /// Attribute path of a derivation in FILE (repeatable).
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    pub attrs: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

pub fn run(global: &GlobalOpts, args: &LogArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_store_read_only(global)?;
    // A file (not a store path) is evaluated even without -A.
    let is_file = |arg: &String| {
        parse_store_path_arg(store.config(), arg).is_err() && std::path::Path::new(arg).exists()
    };
    let evaluate = !args.attrs.is_empty()
        || args.source.expr.is_some()
        || args.installables.iter().any(is_file);
    let mut drv_sets: Vec<Vec<StorePath>> = Vec::new();
    if evaluate {
        let found = instantiate(global, &args.installables, &args.attrs, &args.source, true)?;
        for drv in found {
            drv_sets.push(vec![parse_store_path_arg(store.config(), &drv.drv_path)?]);
        }
    } else {
        if args.installables.is_empty() {
            return Err(exit::user(anyhow!(
                "give a store path, or a file with -A ATTR (or -E EXPR)"
            )));
        }
        for arg in &args.installables {
            drv_sets.push(drvs_of_path(&store, arg)?);
        }
    }
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        // A builder's escape sequences must not drive the terminal.
        let mut out = crate::escape::EscapeLines::new(stdout.lock());
        for drvs in &drv_sets {
            print_log(&store, drvs, &mut out)?;
        }
    } else {
        let mut out = stdout.lock();
        for drvs in &drv_sets {
            print_log(&store, drvs, &mut out)?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The derivations whose log a store path argument means.
fn drvs_of_path(store: &Store, arg: &str) -> anyhow::Result<Vec<StorePath>> {
    let path = parse_store_path_arg(store.config(), arg)?;
    if path.name().ends_with(".drv") {
        return Ok(vec![path]);
    }
    let drvs = derivers(store, &path)?;
    if drvs.is_empty() {
        return Err(exit::user(anyhow!(
            "{} was not built by a derivation known to this store, so it has no build log",
            store.print_path(&path)
        )));
    }
    Ok(drvs)
}

/// Print the log of the first of `drvs` that has one.
fn print_log(store: &Store, drvs: &[StorePath], out: &mut impl Write) -> anyhow::Result<()> {
    let state = store.state_dir();
    let Some((drv, file)) = drvs
        .iter()
        .map(|d| (d, log_path(&state, &d.to_string())))
        .find(|(_, f)| f.exists())
    else {
        return Err(anyhow!(
            "no build log for {} (it was not built here, or its log was removed)",
            store.print_path(&drvs[0])
        ));
    };
    let result = read_log(&file, out);
    out.flush()?;
    if result? == LogEnd::Incomplete {
        crate::say!(
            "note: the log of {} is incomplete: its build is still running, or was killed",
            store.print_path(drv)
        );
    }
    Ok(())
}
