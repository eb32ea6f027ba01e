//! `kiln instantiate [FILE] [-A ATTR]… [--arg NAME EXPR] [--argstr NAME S]
//! [-I PATH] [-E EXPR] [--dry]`: evaluate, write the `.drv` files (and the
//! sources and text files they use) to the store, and print each `.drv`
//! path on its own line, like `nix-instantiate` (`DRV!OUTPUT` when the
//! value names an output other than `out`).
//!
//! `--dry` computes the same paths without writing anything.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::GlobalOpts;
use super::installable::{SourceArgs, instantiate};

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  kiln instantiate ./default.nix -A hello    /kiln/store/<hash>-hello.drv
  kiln instantiate -E 'derivation { name = \"x\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }'
  kiln instantiate --dry -A hello            the path, nothing written
  kiln store show-derivation $(kiln instantiate -A hello)")]
pub struct InstantiateArgs {
    /// The file to evaluate (a directory means its default.nix; default:
    /// ./default.nix), or `.drv` store paths to print as they are.
    #[arg(value_name = "FILE")]
    pub installables: Vec<String>,
    /// Attribute path to instantiate (repeatable), e.g. `pkgs.hello`.
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attrs: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Compute the paths without writing to the store.
    #[arg(long)]
    pub dry: bool,
}

pub fn run(global: &GlobalOpts, args: &InstantiateArgs) -> anyhow::Result<ExitCode> {
    let found = instantiate(
        global,
        &args.installables,
        &args.attrs,
        &args.source,
        args.dry,
    )?;
    let mut text = String::new();
    for drv in &found {
        text.push_str(&drv.display());
        text.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .context("writing the derivation paths")?;
    Ok(ExitCode::SUCCESS)
}
