//! `kiln man`: the command reference, generated from the clap definitions
//! so it never drifts from them: man pages (clap_mangen, one per command:
//! `kiln.1`, `kiln-store-query.1`, …) and the Markdown reference
//! `docs/cli.md` (a test checks that the committed file is what this
//! prints).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::output;

/// Write the man pages, or print the Markdown reference (docs/cli.md).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln man --out-dir ./man && man ./man/kiln-build.1
  kiln man --markdown > docs/cli.md")]
pub struct ManArgs {
    /// Write one man page per command into DIR (created if missing).
    #[arg(long, value_name = "DIR", required_unless_present = "markdown")]
    out_dir: Option<PathBuf>,
    /// Print the whole command reference as Markdown instead.
    #[arg(long, conflicts_with = "out_dir")]
    markdown: bool,
}

pub fn run(args: &ManArgs) -> anyhow::Result<ExitCode> {
    if args.markdown {
        output::stdout(markdown().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = args.out_dir.as_ref().expect("clap requires one of the two");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(reference_command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The command tree as documented: hidden commands (this one) left out.
fn reference_command() -> clap::Command {
    let mut cmd = super::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every command with its description, usage, arguments and examples;
/// the global options once, at the top.
pub fn markdown() -> String {
    let cmd = reference_command();
    let mut out = String::from(
        "# kiln command reference\n\n\
         Generated from the command line's own definitions by \
         `kiln man --markdown > docs/cli.md` (man pages: `kiln man --out-dir DIR`); \
         a test fails when this file and the code differ.\n\n",
    );
    out.push_str("## Global options\n\nAccepted anywhere on the command line.\n\n");
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        option_line(&mut out, arg);
    }
    out.push('\n');
    let mut stack: Vec<(String, clap::Command)> = cmd
        .get_subcommands()
        .map(|sub| (format!("kiln {}", sub.get_name()), sub.clone()))
        .collect();
    stack.reverse();
    while let Some((path, mut sub)) = stack.pop() {
        if sub.is_hide_set() {
            continue;
        }
        section(&mut out, &path, &mut sub);
        for child in sub.get_subcommands().collect::<Vec<_>>().into_iter().rev() {
            stack.push((format!("{path} {}", child.get_name()), child.clone()));
        }
    }
    out
}

fn section(out: &mut String, path: &str, cmd: &mut clap::Command) {
    let cmd = &mut cmd.clone().bin_name(path);
    let level = "#".repeat(path.split(' ').count().min(4));
    let _ = writeln!(out, "{level} `{path}`\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{}\n", about.to_string().trim_end());
    }
    let usage = cmd.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ").trim();
    let _ = writeln!(out, "```text\n{usage}\n```\n");
    let args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_global_set() && !a.is_hide_set())
        .filter(|a| !["help", "version"].contains(&a.get_id().as_str()))
        .collect();
    if !args.is_empty() {
        for arg in args {
            option_line(out, arg);
        }
        out.push('\n');
    }
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        let _ = writeln!(out, "```text\n{}\n```\n", after.to_string().trim_end());
    }
}

/// `- `--name VALUE` / `-n`: help` for one argument.
fn option_line(out: &mut String, arg: &clap::Arg) {
    let values = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut spelled = Vec::new();
    if let Some(long) = arg.get_long() {
        spelled.push(format!("--{long}"));
    }
    if let Some(short) = arg.get_short() {
        spelled.push(format!("-{short}"));
    }
    let name = if spelled.is_empty() {
        values.clone()
    } else if arg.get_action().takes_values() && !values.is_empty() {
        format!("{} {values}", spelled.join(", "))
    } else {
        spelled.join(", ")
    };
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string().replace('\n', " "))
        .unwrap_or_default();
    let _ = writeln!(out, "- `{name}`: {help}");
}

#[cfg(test)]
mod tests {
    /// docs/cli.md is what `kiln man --markdown` prints: the reference
    /// cannot drift from the code.
    #[test]
    fn the_markdown_reference_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = super::markdown();
        assert!(
            committed == generated,
            "docs/cli.md is out of date: run \
             `cargo run --release -- man --markdown > docs/cli.md`"
        );
        for needle in [
            "## `kiln build`",
            "### `kiln store query`",
            "`--tree`",
            "Examples:",
        ] {
            assert!(generated.contains(needle), "{needle}");
        }
    }

    #[test]
    fn man_pages_are_written_for_every_command() {
        let dir = tempfile::tempdir().unwrap();
        super::run(&super::ManArgs {
            out_dir: Some(dir.path().to_path_buf()),
            markdown: false,
        })
        .unwrap();
        for page in [
            "kiln.1",
            "kiln-build.1",
            "kiln-store-query.1",
            "kiln-repl.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(
                text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH"),
                "{page}"
            );
        }
        let text = std::fs::read_to_string(dir.path().join("kiln-store-query.1")).unwrap();
        assert!(text.contains("tree") && text.contains("Examples"), "{text}");
        assert!(
            !dir.path().join("kiln-man.1").exists(),
            "hidden commands have no page"
        );
    }
}
