//! The clap definitions: global options and one file per command group.

mod build;
pub mod config;
mod eval;
mod hash;
pub mod installable;
mod instantiate;
pub mod key;
mod log;
mod parse;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// kiln: a Nix-style functional derivation store.
///
/// Write derivations in a lazy functional language (a compatible subset of
/// Nix), instantiate them to `.drv` files, and build them in bubblewrap
/// sandboxes without network into a content-addressed store. With
/// `--store-dir /nix/store`, every path and hash is the one Nix computes.
///
/// Start with `kiln build FILE`, `kiln eval -E EXPR` or `kiln store add PATH`;
/// `kiln help COMMAND` explains each command with examples.
#[derive(Parser, Debug)]
#[command(name = "kiln", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted anywhere on the command line.
#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Physical root of the store: the store lives at ROOT followed by the
    /// store dir, state at ROOT/kiln/var/kiln. Default: `/` for root,
    /// `$XDG_DATA_HOME/kiln/root` for other users.
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Logical store directory that goes into every path and hash.
    /// `/nix/store` gives paths identical to Nix's.
    #[arg(
        long,
        global = true,
        env = "KILN_STORE_DIR",
        value_name = "DIR",
        default_value = "/kiln/store"
    )]
    pub store_dir: String,
    /// More diagnostics (repeat for more). `KILN_LOG` sets a filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build derivations in sandboxes.
    Build(build::BuildArgs),
    /// Print the build log of a derivation or output path.
    Log(log::LogArgs),
    Store(store::StoreArgs),
    Hash(hash::HashArgs),
    /// Parse a file and print its syntax tree (or only check it).
    Parse(parse::ParseArgs),
    /// Evaluate an expression or file and print the value.
    Eval(eval::EvalArgs),
    /// Write the derivations an expression describes to the store and
    /// print their .drv paths.
    Instantiate(instantiate::InstantiateArgs),
    Key(key::KeyArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(&cli.global, &args),
        Command::Log(args) => log::run(&cli.global, &args),
        Command::Store(args) => store::run(&cli.global, args),
        Command::Hash(args) => hash::run(args),
        Command::Parse(args) => parse::run(args),
        Command::Eval(args) => eval::run(&cli.global, &args),
        Command::Instantiate(args) => instantiate::run(&cli.global, &args),
        Command::Key(args) => key::run(args),
    }
}

/// `-v`/`-q`/`KILN_LOG` choose what `tracing` prints to stderr.
pub fn init_logging(global: &GlobalOpts) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
