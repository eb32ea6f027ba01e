//! The clap definitions: global options and one file per command group.

mod build;
mod bundle;
mod cache;
pub mod config;
mod eval;
mod explain;
mod gc;
mod hash;
pub mod installable;
mod instantiate;
pub mod key;
mod log;
mod man;
mod option;
mod parse;
mod repair;
mod repl;
mod serve;
mod shell;
mod store;
mod substitute;
mod verify;
mod why_depends;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Show the whole trace of an evaluation error, with the frames of
    /// kiln's own builtins (the default trace shows what you wrote).
    #[arg(long, global = true)]
    pub show_trace: bool,
    /// Set a Nix setting kiln has (`max-jobs`, `cores`, `keep-going`,
    /// `keep-failed`, `timeout`, `max-silent-time`, `show-trace`), as
    /// Nix's `--option` does; others are refused naming kiln's way.
    #[arg(long = "option", global = true, num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub option: Vec<String>,
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
    Bundle(bundle::BundleArgs),
    Cache(cache::CacheArgs),
    /// Evaluate expressions interactively (like `nix repl`).
    Repl(repl::ReplArgs),
    /// Explain an evaluation error code (`kiln explain E007`).
    Explain(explain::ExplainArgs),
    /// Enter a shell with a derivation's build environment.
    Shell(shell::ShellArgs),
    /// Build a package if needed and run its program.
    Run(shell::RunArgs),
    /// Make a root's store visible at the logical store dir (as root, once).
    Setup(shell::SetupArgs),
    /// Write the man pages or the Markdown command reference.
    #[command(hide = true)]
    Man(man::ManArgs),
    /// Show why a store path depends on another (the chain of references).
    WhyDepends(why_depends::WhyDependsArgs),
}

/// The whole command line as clap sees it. Help is `--help` (and `kiln
/// help COMMAND`) only: `-h` is free for the commands where Nix uses it,
/// for human-readable sizes (`path-info -rsSh`).
pub fn command() -> clap::Command {
    help_on_long_only(Cli::command())
}

fn help_on_long_only(cmd: clap::Command) -> clap::Command {
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    let mut cmd = cmd.disable_help_flag(true).arg(
        clap::Arg::new("help")
            .long("help")
            .help("Print help")
            .action(clap::ArgAction::HelpLong),
    );
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, help_on_long_only);
    }
    cmd
}

/// Parse the process's arguments, or print clap's error (or the help)
/// and exit. A stray `-h` gets a word on where help is.
pub fn parse_or_exit() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|err| {
        use clap::error::{ContextKind, ErrorKind};
        let is_h = err.kind() == ErrorKind::UnknownArgument
            && err
                .get(ContextKind::InvalidArg)
                .is_some_and(|arg| arg.to_string() == "-h");
        if is_h {
            command()
                .error(
                    ErrorKind::UnknownArgument,
                    "unexpected argument '-h': help is '--help' (or 'kiln help COMMAND'); \
                     '-h' means human-readable sizes where Nix has them",
                )
                .exit()
        }
        err.exit()
    })
}

/// Parse `args` (the first is the program name) with [`command`].
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

pub fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    option::apply(&mut cli)?;
    match cli.command {
        Command::Build(args) => build::run(&cli.global, &args),
        Command::Log(args) => log::run(&cli.global, &args),
        Command::Store(args) => store::run(&cli.global, args),
        Command::Hash(args) => hash::run(args),
        Command::Parse(args) => parse::run(args),
        Command::Eval(args) => eval::run(&cli.global, &args),
        Command::Instantiate(args) => instantiate::run(&cli.global, &args),
        Command::Key(args) => key::run(args),
        Command::Bundle(args) => bundle::run(&cli.global, args),
        Command::Cache(args) => cache::run(&cli.global, args),
        Command::Repl(args) => repl::run(&cli.global, &args),
        Command::Explain(args) => explain::run(&args),
        Command::Man(args) => man::run(&args),
        Command::Shell(args) => shell::shell(&cli.global, &args),
        Command::Run(args) => shell::run(&cli.global, &args),
        Command::Setup(args) => shell::setup(&cli.global, &args),
        Command::WhyDepends(args) => why_depends::run(&cli.global, &args),
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        // clap checks flag clashes (such as a second `-h`) only in debug
        // builds unless asked.
        super::command().debug_assert();
    }

    #[test]
    fn h_is_human_readable_and_help_is_long() {
        let err = super::try_parse_from(["kiln", "store", "path-info", "-h", "/x"]);
        assert!(err.is_ok(), "{err:?}");
        let err = super::try_parse_from(["kiln", "eval", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }
}

#[cfg(test)]
mod help_tests {
    /// Every command, group or leaf, shows examples under `--help`, as the
    /// top-level help promises.
    #[test]
    fn every_command_has_examples() {
        let mut missing = Vec::new();
        let mut stack = vec![(String::from("kiln"), super::command())];
        while let Some((path, cmd)) = stack.pop() {
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" || sub.is_hide_set() {
                    continue;
                }
                let name = format!("{path} {}", sub.get_name());
                let examples = sub
                    .get_after_help()
                    .or(sub.get_after_long_help())
                    .is_some_and(|text| text.to_string().contains("Example"));
                if !examples {
                    missing.push(name.clone());
                }
                stack.push((name, sub.clone()));
            }
        }
        missing.sort();
        assert!(missing.is_empty(), "no examples in --help: {missing:#?}");
    }
}
