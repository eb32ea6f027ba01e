//! `kiln store serve --stdio`: the remote side of Nix's `nix-store --serve`
//! protocol, for ssh (`kiln_remote::serve`).

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;

use crate::cli::GlobalOpts;
use crate::cli::config::open_store;
use crate::exit;

/// Serve this store over stdin and stdout in Nix's `nix-store --serve`
/// protocol (2.7), the way remote builders and `ssh://` stores are reached.
///
/// Commands are read on stdin and answered on stdout; nothing else is ever
/// written to stdout (errors go to stderr, and an error ends the session, as
/// with `nix-store --serve`). Without --write only queries and dumps are
/// answered. Everything received is checked (NAR hash and size while it
/// streams, the NAR's grammar, each `.drv`'s output paths) and registered
/// through the store's one install path; builds run in kiln's sandbox.
/// `--serve` is accepted as a synonym of --stdio, so that Nix's
/// `remote-program=kiln store serve` (to which Nix appends `--serve --write`)
/// works as is.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  ssh builder kiln store serve --stdio --write     what a remote build runs on the builder
  nix copy --to 'ssh://builder?remote-program=kiln%20store%20serve' ./result
  nix-build --builders 'ssh://builder?remote-program=kiln%20store%20serve x86_64-linux' …")]
pub struct ServeArgs {
    /// Speak the protocol on stdin and stdout (the only transport).
    #[arg(long)]
    stdio: bool,
    /// Nix's spelling of --stdio (`nix-store --serve`).
    #[arg(long, hide = true)]
    serve: bool,
    /// Allow writes: importing paths and building.
    #[arg(long)]
    write: bool,
    /// NIX_BUILD_CORES of each build (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    cores: Option<u32>,
}

pub fn run(global: &GlobalOpts, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if !args.stdio && !args.serve {
        return Err(exit::user(anyhow!(
            "kiln store serve needs --stdio (the protocol runs on stdin and stdout)"
        )));
    }
    let store = open_store(global)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = kiln_remote::serve::ServeOptions {
        write: args.write,
        cores: args.cores.unwrap_or(cpus as u32),
    };
    kiln_remote::serve::serve(
        &store,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        &options,
    )?;
    Ok(ExitCode::SUCCESS)
}
