//! `kiln store show-derivation`: derivations as JSON, like
//! `nix show-derivation`, given as `.drv` paths or as output paths (which
//! stand for the derivation that built or declares them).

use std::io::Write;

use anyhow::{Context, anyhow};
use clap::Args;
use kiln_store::derivation::json::show_derivations;
use kiln_store::store::Store;
use kiln_store::{Derivation, StorePath};

use super::valid_path;
use crate::cli::GlobalOpts;
use crate::cli::config::{derivers, open_store_read_only, parse_store_path_arg};
use crate::exit;

/// Print derivations as JSON, like `nix show-derivation`.
///
/// An output path (or a `result` link) stands for its derivation: the one
/// that built it, or a valid `.drv` that declares it as an output.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store show-derivation /kiln/store/<hash>-hello.drv
  kiln store show-derivation ./result          the derivation that built it
  kiln store show-derivation $(kiln instantiate -A hello) | jq '.[].env'")]
pub struct ShowDerivationArgs {
    #[arg(required = true, value_name = "DRV|PATH")]
    drvs: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: ShowDerivationArgs) -> anyhow::Result<()> {
    let store = open_store_read_only(global)?;
    let mut drvs = Vec::new();
    for arg in &args.drvs {
        let path = derivation_of(&store, arg)?;
        let real = store.real_path(&path);
        let bytes = std::fs::read(&real).with_context(|| format!("reading {}", real.display()))?;
        let drv = Derivation::parse(store.store_dir(), &bytes)
            .with_context(|| format!("parsing {}", store.print_path(&path)))
            .map_err(exit::user)?;
        drvs.push((path, drv));
    }
    let value = show_derivations(store.store_dir(), drvs.iter().map(|(p, d)| (p, d)));
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(())
}

/// The valid `.drv` an argument names: itself, or the deriver of the
/// output path it names.
fn derivation_of(store: &Store, arg: &str) -> anyhow::Result<StorePath> {
    let path = parse_store_path_arg(store.config(), arg)?;
    if path.name().ends_with(".drv") {
        return valid_path(store, arg);
    }
    for drv in derivers(store, &path)? {
        if store.is_valid(&drv)? {
            return Ok(drv);
        }
    }
    Err(exit::user(anyhow!(
        "{arg}: {} is not a derivation and no derivation known to this store builds it",
        store.print_path(&path)
    )))
}
