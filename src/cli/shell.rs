//! `kiln shell`, `kiln run` and `kiln setup`: arguments, one call into
//! `kiln_shell`, and the rendering of what it gives back.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use kiln_shell::{Expression, Mode, Sandbox, ShellError, ShellOutcome, ShellRequest, Source};

use crate::cli::GlobalOpts;
use crate::cli::build::Progress;
use crate::cli::config::{parse_store_path_arg, store_config};
use crate::cli::installable::{SourceArgs, auto_args, eval_options};
use crate::{exit, output, say};

/// Enter a shell with a derivation's build environment.
#[derive(Args, Debug)]
#[command(after_help = "\
The shell has the environment the derivation's builder would see: its
variables, its inputs' bin/ on PATH (include/ and lib/ on CPATH and
LIBRARY_PATH), $stdenv/setup sourced when it has one (run genericBuild or
a phase by hand), each output at ./outputs/NAME, and its shellHook run.
Its inputs are built if missing and kept from GC by a root tied to the
project file. A second start does not evaluate: the result is cached,
keyed by every file and argument evaluation read. docs/shells.md.

Examples:
  kiln shell                                 ./shell.nix, else ./default.nix
  kiln shell ./app.nix -A dev --arg debug true
  kiln shell -p hello busybox                packages from <nixpkgs-mini>
  kiln shell -p hello -f ./my-pkgs.nix       packages from another set
  kiln shell --run 'make test'               run, exit with its status
  kiln shell --command 'genericBuild'        run, then stay in the shell
  kiln shell --pure                          only a short list of variables kept
  kiln shell --sandbox [--network]           in bubblewrap: closure + project dir
  eval \"$(kiln shell --print-env)\"            in .envrc, for direnv
  kiln shell --drop-root                     let GC take this project's shell")]
pub struct ShellArgs {
    /// The file to evaluate (default: ./shell.nix, else ./default.nix; a
    /// directory means its shell.nix or default.nix); with -p, package
    /// names.
    #[arg(value_name = "FILE|PKG")]
    pub args: Vec<String>,
    /// Attribute path to take from FILE.
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    pub attrs: Vec<String>,
    /// The arguments are packages, taken from `<nixpkgs-mini>` or -f SET.
    #[arg(short = 'p', long = "packages")]
    pub packages: bool,
    /// The package set of -p (a file; called with {} if a function).
    #[arg(short = 'f', long = "file", value_name = "SET", requires = "packages")]
    pub set: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Run CMD in the shell and exit with its status.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["command", "print_env"])]
    pub run: Option<String>,
    /// Run CMD in the shell, then stay in it.
    #[arg(long, value_name = "CMD", conflicts_with = "print_env")]
    pub command: Option<String>,
    /// Print the environment as shell to source (for direnv), start no
    /// shell.
    #[arg(long)]
    pub print_env: bool,
    /// Start from an empty environment, except HOME USER LOGNAME TERM
    /// DISPLAY WAYLAND_DISPLAY XDG_RUNTIME_DIR TZ LANG LC_ALL PAGER SHLVL.
    #[arg(long)]
    pub pure: bool,
    /// Run the shell in bubblewrap: only the closure (read-only) and the
    /// project directory (read-write) are visible; implies --pure.
    #[arg(long, conflicts_with = "print_env")]
    pub sandbox: bool,
    /// With --sandbox: share the host's network.
    #[arg(long, requires = "sandbox")]
    pub network: bool,
    /// Remove this project's shell GC roots and exit.
    #[arg(long)]
    pub drop_root: bool,
    /// Evaluate even when the cached result is still good.
    #[arg(long)]
    pub no_cache: bool,
    /// Builds of missing inputs to run at once (default: the number of CPUs).
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    pub jobs: Option<usize>,
}

/// Build a package if needed and run its program.
#[derive(Args, Debug)]
#[command(after_help = "\
The program is bin/<meta.mainProgram>, else bin/<pname> (the name without
its version), or the file named. It runs as you, with your environment,
files and network. When the store's files are not at its logical path
(a --root store, an ordinary user's store), the program runs in a user +
mount namespace that shows them there; `kiln setup` makes that needless.

Examples:
  kiln run -A hello                          ./default.nix's hello
  kiln run '<nixpkgs-mini>' -A hello -- --greeting=hi
  kiln run ./result                          a built package
  kiln run ./result/bin/hello -- -v          one of its programs
  kiln run /kiln/store/<hash>-hello.drv")]
pub struct RunArgs {
    /// A file to evaluate (default ./default.nix), a `.drv`, or a store
    /// path (or a file in one, or a `result` link).
    #[arg(value_name = "INSTALLABLE")]
    pub installable: Option<String>,
    /// Attribute path to take from the file.
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    pub attrs: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Evaluate even when the cached result is still good.
    #[arg(long)]
    pub no_cache: bool,
    /// Builds to run at once (default: the number of CPUs).
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Arguments for the program (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

/// Make a root's store visible at the logical store dir system-wide (as root).
#[derive(Args, Debug)]
#[command(after_help = "\
Once per machine, as root, for the store of --root (or KILN_ROOT): after
it ./result/bin/app runs directly and `kiln run` needs no namespace.

Examples:
  sudo kiln setup --root /home/me/.local/share/kiln/root      symlink /kiln/store
  sudo kiln setup --root /srv/kiln --bind                     a bind mount
  sudo kiln setup --root /srv/kiln --undo")]
pub struct SetupArgs {
    /// Bind-mount the store on the logical dir instead of a symlink (until
    /// reboot; the /etc/fstab line to keep it is printed).
    #[arg(long)]
    pub bind: bool,
    /// Remove what setup made.
    #[arg(long)]
    pub undo: bool,
}

/// `<name>` or `<name/rest>`: a search path lookup (nothing else passes,
/// so no expression can be injected).
fn lookup_arg(arg: &str) -> Option<&str> {
    let inner = arg.strip_prefix('<')?.strip_suffix('>')?;
    let plain = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+/".contains(c));
    plain.then_some(arg)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Errors of the library as the CLI reports them.
fn lift(err: ShellError) -> anyhow::Error {
    match err {
        ShellError::Eval(failure) => anyhow::Error::new(failure),
        err if err.is_usage() => exit::user(err),
        err => anyhow::Error::new(err),
    }
}

/// The project file: FILE (a directory: its shell.nix, else default.nix),
/// or ./shell.nix, else ./default.nix.
fn project_file(arg: Option<&str>) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    let dir = match arg {
        Some(file) => {
            let path = cwd.join(file);
            if !path.is_dir() {
                if !path.exists() {
                    return Err(exit::user(anyhow!("{file}: no such file")));
                }
                return Ok(path);
            }
            path
        }
        None => cwd,
    };
    for name in ["shell.nix", "default.nix"] {
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    Err(exit::user(anyhow!(
        "no shell.nix or default.nix in {}: give a FILE, or packages with -p",
        dir.display()
    )))
}

pub fn shell(global: &GlobalOpts, args: &ShellArgs) -> anyhow::Result<ExitCode> {
    let config = store_config(global)?;
    let cwd = std::env::current_dir()?;
    let options = eval_options(global, &args.source.include)?;
    let (expression, project, selection) = if args.packages {
        let set = match &args.set {
            Some(file) => std::path::absolute(file)?.to_string_lossy().into_owned(),
            None => "<nixpkgs-mini>".to_owned(),
        };
        if set.contains(|c: char| c.is_whitespace() || c == ';') {
            return Err(exit::user(anyhow!(
                "-f {set}: a path without spaces, please"
            )));
        }
        let text = kiln_shell::packages::expression(&set, &args.args).map_err(lift)?;
        let selection = format!("-p {} -f {set}", args.args.join(" "));
        (Expression::Text(text), cwd.clone(), selection)
    } else if let Some(expr) = &args.source.expr {
        if !args.args.is_empty() {
            return Err(exit::user(anyhow!("give either FILE or -E EXPR, not both")));
        }
        (
            Expression::Text(expr.clone()),
            cwd.clone(),
            format!("-E {expr}"),
        )
    } else {
        if args.args.len() > 1 {
            return Err(exit::user(anyhow!(
                "one FILE at a time (got {}); packages go with -p",
                args.args.len()
            )));
        }
        let first = args.args.first().map(String::as_str);
        match first.and_then(lookup_arg) {
            // `<name>`: a search path lookup; the root is tied to the
            // current directory.
            Some(lookup) => (
                Expression::Text(format!("import {lookup}")),
                cwd.clone(),
                lookup.to_owned(),
            ),
            None => {
                let file = project_file(first)?;
                (Expression::File(file.clone()), file, String::new())
            }
        }
    };
    let selection = format!(
        "{selection} -A {} {:?} {:?}",
        args.attrs.join(" -A "),
        args.source.arg,
        args.source.argstr
    );
    if args.drop_root {
        let store = crate::cli::config::open_store(global)?;
        let n = kiln_shell::roots::drop_roots(&store, &project).map_err(lift)?;
        say!("dropped {n} shell root(s) of {}", project.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mode = match (&args.run, &args.command, args.print_env) {
        (Some(cmd), _, _) => Mode::Run(cmd.clone()),
        (_, Some(cmd), _) => Mode::Command(cmd.clone()),
        (_, _, true) => Mode::PrintEnv,
        _ => Mode::Interactive,
    };
    let request = ShellRequest {
        source: Source {
            expression,
            attrs: args.attrs.clone(),
            auto_args: auto_args(&args.source),
            options,
        },
        project,
        selection,
        mode,
        pure: args.pure,
        sandbox: args.sandbox.then_some(Sandbox {
            network: args.network,
        }),
        use_cache: !args.no_cache,
        cores: cpus() as u32,
        jobs: args.jobs.unwrap_or(cpus()),
    };
    let progress = Progress::new(false, global.quiet);
    let result = kiln_shell::shell::shell(&config, &request, &progress);
    progress.clear();
    let (outcome, report) = result.map_err(lift)?;
    tracing::info!(
        "shell of {}: evaluation cache {:?}, {} built",
        report.drv,
        report.cache,
        report.built
    );
    match outcome {
        ShellOutcome::Exited(code) => Ok(ExitCode::from(code)),
        ShellOutcome::Env(script) => {
            if !report.store_visible {
                say!(
                    "warning: the store of this root is not at {} on this host, so the paths \
                     printed lead nowhere outside `kiln shell`; `kiln setup` (as root) makes it visible",
                    global.store_dir
                );
            }
            output::stdout(script.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run(global: &GlobalOpts, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = store_config(global)?;
    let arg = args.installable.as_deref();
    let store_path = arg
        .filter(|a| !a.ends_with(".nix") && args.source.expr.is_none())
        .and_then(|a| parse_store_path_arg(&config, a).ok());
    let target = match (store_path, arg) {
        (Some(path), Some(_)) if path.name().ends_with(".drv") => {
            if !args.attrs.is_empty() {
                return Err(exit::user(anyhow!("-A takes a file, not a .drv")));
            }
            kiln_shell::Target::Drv {
                drv: path,
                output: "out".to_owned(),
            }
        }
        (Some(path), Some(arg)) => kiln_shell::Target::Path {
            path,
            arg: PathBuf::from(arg),
        },
        _ => {
            let expression = match (&args.source.expr, arg) {
                (Some(_), Some(_)) => {
                    return Err(exit::user(anyhow!("give either FILE or -E EXPR, not both")));
                }
                (Some(expr), None) => Expression::Text(expr.clone()),
                // `<name>`: a search path lookup, as nix-build takes it.
                (None, Some(file)) => match lookup_arg(file) {
                    Some(lookup) => Expression::Text(format!("import {lookup}")),
                    None => Expression::File(PathBuf::from(file)),
                },
                (None, None) => Expression::File(PathBuf::from("default.nix")),
            };
            if let Expression::File(file) = &expression
                && !Path::new(file).exists()
            {
                return Err(exit::user(anyhow!(
                    "{}: no such file (kiln run takes a file to evaluate, a .drv or a store path)",
                    file.display()
                )));
            }
            kiln_shell::Target::Eval(Source {
                expression,
                attrs: args.attrs.clone(),
                auto_args: auto_args(&args.source),
                options: eval_options(global, &args.source.include)?,
            })
        }
    };
    let request = kiln_shell::RunRequest {
        target,
        args: args.args.clone(),
        use_cache: !args.no_cache,
        jobs: args.jobs.unwrap_or(cpus()),
        cores: cpus() as u32,
    };
    let progress = Progress::new(false, global.quiet);
    let prepared = kiln_shell::run::program(&config, &request, &progress);
    progress.clear();
    let (store, program) = prepared.map_err(lift)?;
    let code = kiln_shell::run::run_program(&store, &program, &request.args).map_err(lift)?;
    Ok(ExitCode::from(code))
}

pub fn setup(global: &GlobalOpts, args: &SetupArgs) -> anyhow::Result<ExitCode> {
    let config = store_config(global)?;
    let method = if args.bind {
        kiln_shell::setup::Method::Bind
    } else {
        kiln_shell::setup::Method::Symlink
    };
    for line in kiln_shell::setup::setup(&config, method, args.undo).map_err(lift)? {
        say!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn angle_brackets_are_lookups_and_nothing_else() {
        assert_eq!(super::lookup_arg("<nixpkgs-mini>"), Some("<nixpkgs-mini>"));
        assert_eq!(super::lookup_arg("<a/b.nix>"), Some("<a/b.nix>"));
        assert_eq!(super::lookup_arg("./default.nix"), None);
        assert_eq!(super::lookup_arg("<>"), None);
        assert_eq!(super::lookup_arg("<a> + (throw \"x\") + <b>"), None);
    }
}
