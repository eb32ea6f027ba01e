//! `kiln parse FILE [--check]`: parse a file (or `-` for stdin, or `-E
//! EXPR`) and print its syntax tree as an S-expression, Rust's debug form
//! (`--debug`), or nothing (`--check`). A syntax error is printed with the
//! source line and a caret, and exits with code 2. Free names are checked
//! against the evaluator's global scope (what `kiln eval` defines).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use kiln_lang::{Interner, SourceMap};

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln parse -E '1 + 2 * 3'                  (+ 1 (* 2 3))
  kiln parse --check default.nix             only the syntax; exit 2 on an error
  echo '{ a = 1; }' | kiln parse -           from standard input")]
pub struct ParseArgs {
    /// The file to parse; `-` reads standard input.
    #[arg(value_name = "FILE", required_unless_present = "expr")]
    pub file: Option<PathBuf>,
    /// Parse this expression instead of a file.
    #[arg(
        short = 'E',
        long = "expr",
        value_name = "EXPR",
        conflicts_with = "file"
    )]
    pub expr: Option<String>,
    /// Only check the syntax; print nothing on success.
    #[arg(long)]
    pub check: bool,
    /// Print Rust's debug form of the AST instead of an S-expression.
    #[arg(long, conflicts_with = "check")]
    pub debug: bool,
}

/// Parsing and printing recurse over the input's nesting, which the parser
/// bounds; a roomy stack keeps even debug builds and very long operator
/// chains well clear of overflow. (Only touched pages are committed.) With
/// little address space (`ulimit -v`) a smaller one, down to
/// [`LEAST_PARSE_STACK`], is taken.
const PARSE_STACK: usize = 256 * 1024 * 1024;
const LEAST_PARSE_STACK: usize = 16 * 1024 * 1024;

pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let (name, path, text) = read_input(&args)?;
    let job = |_size| {
        std::panic::catch_unwind(|| parse_and_print(name, path, text, args.check, args.debug))
    };
    kiln_lang::stack::run_on_big_stack("parse", PARSE_STACK, LEAST_PARSE_STACK, job)
        .map_err(|_| anyhow!("not enough address space to start the parser thread"))?
        .map_err(|_| anyhow!("the parser thread panicked"))?
}

fn read_input(args: &ParseArgs) -> anyhow::Result<(String, Option<PathBuf>, String)> {
    if let Some(expr) = &args.expr {
        return Ok(("«string»".into(), None, expr.clone()));
    }
    let Some(file) = &args.file else {
        return Err(crate::exit::user(anyhow!("no FILE or -E EXPR given")));
    };
    let (name, path, bytes) = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        ("(stdin)".to_string(), None, buf)
    } else {
        let bytes = std::fs::read(file)
            .with_context(|| format!("reading {}", file.display()))
            .map_err(crate::exit::user)?;
        (file.display().to_string(), Some(file.clone()), bytes)
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| crate::exit::user(anyhow!("{name}: not valid UTF-8 ({e})")))?;
    Ok((name, path, text))
}

fn parse_and_print(
    name: String,
    path: Option<PathBuf>,
    text: String,
    check: bool,
    debug: bool,
) -> anyhow::Result<ExitCode> {
    let mut map = SourceMap::new();
    let file = map.add(name, path, text);
    let mut names = Interner::new();
    // Free names are checked against the evaluator's global scope, so
    // `kiln parse` and `kiln eval` agree on what is undefined.
    let scope = kiln_eval::Evaluation::new(kiln_eval::EvalOptions::default());
    let is_global = |name: &str| scope.is_global(name);
    let expr = match kiln_lang::parse_with_globals(file, map.text(file), &mut names, &is_global) {
        Ok(expr) => expr,
        Err(err) => {
            let rendered = err.to_diagnostic().render(&map);
            return Err(anyhow::Error::new(crate::exit::Diagnosed(rendered)));
        }
    };
    let out = if check {
        None
    } else if debug {
        Some(format!("{expr:#?}\n"))
    } else {
        Some(kiln_lang::sexpr::to_sexpr(&expr, &names) + "\n")
    };
    // The process ends right after this: freeing a big tree node by node
    // would be a sizeable part of the run time for nothing.
    std::mem::forget(expr);
    let Some(out) = out else {
        return Ok(ExitCode::SUCCESS);
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("writing the AST")?;
    Ok(ExitCode::SUCCESS)
}
