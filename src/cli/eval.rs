//! `kiln eval [FILE] [-E EXPR] [-A ATTRPATH] [--strict] [--json] [--xml]
//! [--arg NAME EXPR] [--argstr NAME STRING] [-I PATH]`: evaluate and print
//! a value the way `nix-instantiate --eval` does.
//!
//! A function at the top (or along `-A`) is called with the `--arg`s it
//! accepts, like Nix's auto-calling. Evaluation runs on a thread with a
//! large stack (deep recursion in user code); an evaluation error is
//! printed with its source line and trace and exits with code 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::Context;
use clap::Args;
use kiln_eval::{AutoArg, EvalOptions, EvalStore, Evaluation, KilnEvalStore, OutputFormat};

use super::GlobalOpts;

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  kiln eval -E '1 + 2'                        3
  kiln eval --strict -E '{ b = [ 2 3 ]; a = \"x\"; }'
  kiln eval ./default.nix -A hello.name      one attribute of a file
  kiln eval --json -E 'builtins.attrNames { a = 1; b = 2; }'
  kiln eval --raw -E '\"a\\nb\"'              the string as it is
  kiln eval -E '{ x }: x * 2' --arg x 21     a top-level function gets --arg
  kiln eval -I pkgs=./pkgs -E '(import <pkgs> {}).hello'")]
pub struct EvalArgs {
    /// The file to evaluate (a directory means its default.nix). Default:
    /// ./default.nix.
    #[arg(value_name = "FILE", conflicts_with = "expr")]
    pub file: Option<PathBuf>,
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr", value_name = "EXPR")]
    pub expr: Option<String>,
    /// Select this attribute path of the result (e.g. `pkgs.hello`).
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attr: Vec<String>,
    /// Evaluate the result completely (nested attributes and lists).
    #[arg(long)]
    pub strict: bool,
    /// Print the result as JSON.
    #[arg(long, conflicts_with = "xml")]
    pub json: bool,
    /// Print the result as XML.
    #[arg(long)]
    pub xml: bool,
    /// Print the result (a string, or anything `"${…}"` accepts) as is,
    /// without quotes or escapes, like `nix eval --raw`.
    #[arg(long, conflicts_with_all = ["json", "xml"])]
    pub raw: bool,
    /// Write what evaluation makes to the store (`builtins.toFile`,
    /// `builtins.path`, sources copied by interpolation), as
    /// `nix-instantiate --eval --read-write-mode` does, so that
    /// `import (builtins.toFile "x.nix" "1")` works. Without it paths are
    /// only computed.
    #[arg(long)]
    pub read_write_mode: bool,
    /// Accepted for compatibility with Nix; kiln never writes locations in
    /// XML.
    #[arg(long, hide = true)]
    pub no_location: bool,
    /// Pass NAME = EXPR to a top-level function.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], action = clap::ArgAction::Append)]
    pub arg: Vec<String>,
    /// Pass NAME = "STRING" to a top-level function.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"], action = clap::ArgAction::Append)]
    pub argstr: Vec<String>,
    /// Add a search path entry for `<name>` lookups: `DIR` or
    /// `PREFIX=DIR` (before those of KILN_PATH, then NIX_PATH).
    #[arg(short = 'I', value_name = "PATH")]
    pub include: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let options = super::installable::eval_options(global, &args.include)?;
    let store_dir = global.store_dir.clone();
    let config = if args.read_write_mode {
        Some(super::config::store_config(global)?)
    } else {
        None
    };
    let args = args.clone();
    let outcome =
        kiln_eval::run_with_big_stack(move || evaluate(options, store_dir, config, &args));
    let text = outcome?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&text)
        .and_then(|_| stdout.flush())
        .context("writing the result")?;
    Ok(ExitCode::SUCCESS)
}

/// Evaluate and render on the evaluation thread; evaluation errors come
/// back rendered ([`kiln_eval::EvalFailure`]: values cannot leave the
/// thread).
fn evaluate(
    options: EvalOptions,
    store_dir: String,
    config: Option<kiln_store::store::StoreConfig>,
    args: &EvalArgs,
) -> anyhow::Result<Vec<u8>> {
    // A dry-run store computes Nix's real paths (sources, `toFile`, `.drv`s)
    // without writing, like `nix-instantiate --eval` in read-only mode.
    let store = match config {
        Some(config) => {
            let root = config.root.clone();
            let opened = kiln_store::store::Store::open(config)
                .with_context(|| format!("opening the store at root {}", root.display()))?;
            KilnEvalStore::writing(opened)
        }
        None => KilnEvalStore::dry_run(
            kiln_store::StoreDir::new(&store_dir)
                .map_err(|e| crate::exit::user(anyhow::Error::new(e).context("--store-dir")))?,
        ),
    };
    let store = Rc::new(store);
    let mut session = Evaluation::with_store(options, store.clone());
    let mut auto_args = Vec::new();
    for pair in args.arg.chunks(2) {
        if let [name, expr] = pair {
            auto_args.push((name.clone(), AutoArg::Expr(expr.clone())));
        }
    }
    for pair in args.argstr.chunks(2) {
        if let [name, value] = pair {
            auto_args.push((name.clone(), AutoArg::Str(value.clone())));
        }
    }
    let format = if args.raw {
        OutputFormat::Raw
    } else if args.json {
        OutputFormat::Json
    } else if args.xml {
        OutputFormat::Xml
    } else {
        OutputFormat::Nix
    };
    let result = (|| {
        let root = match (&args.expr, &args.file) {
            (Some(expr), _) => session.eval_expr(expr)?,
            (None, Some(file)) => session.eval_file(file)?,
            (None, None) => session.eval_file(std::path::Path::new("default.nix"))?,
        };
        let paths: Vec<&str> = if args.attr.is_empty() {
            vec![""]
        } else {
            args.attr.iter().map(String::as_str).collect()
        };
        // Bytes: a string need not be UTF-8, and is printed as it is.
        let mut out = Vec::new();
        for path in paths {
            let mut value = session.select_path(root.clone(), path, &auto_args)?;
            // As `nix-instantiate --eval`: a function is called only when
            // arguments were given.
            if !auto_args.is_empty() {
                value = session.auto_call(value, &auto_args)?;
            }
            out.extend_from_slice(&session.render_bytes(&value, format, args.strict)?);
            if format != OutputFormat::Xml && format != OutputFormat::Raw {
                out.push(b'\n');
            }
        }
        Ok(out)
    })();
    let result = result.map_err(|err| anyhow::Error::new(session.failure(&err)));
    // What was written becomes valid (registered) before the paths are
    // printed.
    let result = result.and_then(|text| store.flush().map(|()| text).map_err(anyhow::Error::new));
    // The process ends right after; freeing every value (Nix never does)
    // would only cost time.
    std::mem::forget(session);
    result
}
