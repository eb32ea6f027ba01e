//! `kiln build`: realise derivations, show progress, create `result` links.
//!
//! Installables: `.drv` store paths (logical, physical, or a symlink to
//! one), or `FILE [-A ATTR]…` / `-E EXPR`, evaluated and instantiated first
//! (no FILE means `./default.nix`).
//! Each target gets `result` (then `result-2`, …), plus `result-OUTPUT` for
//! outputs other than `out`; each link points at the output's physical
//! path and is registered as an indirect GC root:
//! `STATE/gcroots/auto/<nixbase32 sha1 of the link's absolute path>` is a
//! symlink to the link.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kiln_builder::build::CheckedOutput;
use kiln_builder::supervise::Limits;
use kiln_builder::{BuildError, Failure, Observer, RealiseOptions, realise};
use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, parse_store_path_arg};
use crate::cli::installable::{SourceArgs, instantiate};
use crate::{exit, output, say};

/// Build derivations in sandboxes.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln build ./default.nix -A hello          ./result points at the output
  kiln build -A hello -A world -j 4          two attributes, 4 builds at once
  kiln build /kiln/store/<hash>-hello.drv --no-out-link
  kiln build -A hello --dry-run              what would be built
  kiln build -A hello -L                     build logs on stderr, `name> ` prefixed
  kiln build -A hello --check                rebuild and compare (reproducible?)
  out=$(kiln build -A hello --no-out-link)   output paths on stdout")]
pub struct BuildArgs {
    /// `.drv` store paths to build, or a file to evaluate (with -A).
    #[arg(value_name = "FILE|DRV")]
    pub installables: Vec<String>,
    /// Attribute path to build from FILE (repeatable).
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    pub attrs: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Builds to run at once (default: the number of CPUs).
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// NIX_BUILD_CORES for each build (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub cores: Option<u32>,
    /// Name of the result symlink.
    #[arg(
        short = 'o',
        long = "out-link",
        value_name = "LINK",
        default_value = "result"
    )]
    pub out_link: PathBuf,
    /// Do not create result symlinks (the output paths are still printed).
    #[arg(long)]
    pub no_out_link: bool,
    /// The output paths are printed on stdout anyway, one per line, as
    /// `nix-build` does; accepted for compatibility.
    #[arg(long)]
    pub print_out_paths: bool,
    /// Show what would be built, build nothing (exit 0).
    #[arg(long)]
    pub dry_run: bool,
    /// Stream build logs to stderr, each line prefixed with `name> `.
    #[arg(short = 'L', long = "print-build-logs")]
    pub print_build_logs: bool,
    /// Keep building what does not depend on a failed build.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Keep the build directory of a failed build.
    #[arg(short = 'K', long)]
    pub keep_failed: bool,
    /// Rebuild already valid outputs and compare them with the store.
    #[arg(long)]
    pub check: bool,
    /// Kill a build that runs longer than S seconds.
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// Kill a build that prints nothing for S seconds.
    #[arg(long, value_name = "S")]
    pub max_silent_time: Option<u64>,
    #[command(flatten)]
    pub subst: crate::cli::substitute::SubstArgs,
}

pub fn run(global: &GlobalOpts, args: &BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_store(global)?;
    let targets = targets(global, &store, args)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = RealiseOptions {
        jobs: args.jobs.unwrap_or(cpus).max(1),
        cores: args.cores.unwrap_or(cpus as u32),
        keep_going: args.keep_going,
        keep_failed: args.keep_failed,
        check: args.check,
        limits: Limits {
            timeout: args.timeout.map(Duration::from_secs),
            max_silent: args.max_silent_time.map(Duration::from_secs),
        },
    };
    if args.dry_run {
        return dry_run(&store, &targets, args.check);
    }
    let started = Instant::now();
    if !args.check {
        crate::cli::substitute::before_build(&store, &args.subst, &targets, global.quiet)?;
    }
    let progress = Progress::new(args.print_build_logs, global.quiet);
    let realised = realise(&store, &targets, &options, &progress)?;
    progress.clear();
    if output::closed() {
        // Nobody reads any more: the builds were stopped and cleaned up.
        return Err(anyhow!("output closed: builds stopped"));
    }

    if !realised.ok() {
        for (drv, failure) in &realised.failures {
            report_failure(drv, failure);
        }
        let n = realised
            .failures
            .iter()
            .filter(|(_, f)| matches!(f, Failure::Build(_)))
            .count();
        let mut failed = exit::BuildsFailed {
            message: format!("{n} build(s) failed"),
            ..Default::default()
        };
        for (_, failure) in &realised.failures {
            if let Failure::Build(e) = failure {
                let kind = e.failure_kind();
                failed.failed |= kind.build;
                failed.timed_out |= kind.timed_out;
                failed.hash_mismatch |= kind.hash_mismatch;
            }
        }
        return Err(failed.into());
    }
    if args.check {
        let mut same = true;
        for (drv, outputs) in &realised.checks {
            same &= report_check(drv, outputs);
        }
        return if same {
            Ok(std::process::ExitCode::SUCCESS)
        } else {
            Err(exit::BuildsFailed {
                message: "some outputs differ when rebuilt: not reproducible".into(),
                not_reproducible: true,
                ..Default::default()
            }
            .into())
        };
    }

    // The realisation rebuilds outputs whose files are gone; if one is
    // still missing here (deleted again meanwhile), no `result` may point
    // at nothing.
    for (_drv, outputs) in &realised.outputs {
        for path in outputs.values() {
            if !store.files_exist(path) {
                return Err(anyhow!(
                    "output {} is registered but missing from disk; run `kiln store verify --repair`",
                    store.print_path(path)
                ));
            }
        }
    }
    let mut stdout = String::new();
    let mut paths = 0;
    for (i, (_drv, outputs)) in realised.outputs.iter().enumerate() {
        for (name, path) in outputs {
            stdout += &format!("{}\n", store.print_path(path));
            paths += 1;
            if !args.no_out_link {
                let link = link_name(&args.out_link, i, name);
                make_result_link(&store, &link, path)?;
            }
        }
    }
    if progress.live.is_some() {
        say!("{}", summary(realised.built, paths, started.elapsed()));
    }
    output::stdout(stdout.as_bytes()).context("printing the output paths")?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The line the live view leaves behind after a successful run.
fn summary(built: usize, paths: usize, took: Duration) -> String {
    let outputs = if paths == 1 { "output" } else { "outputs" };
    match built {
        0 => format!("nothing to build: {paths} {outputs} already valid"),
        1 => format!(
            "built 1 derivation in {:.1}s, {paths} {outputs}",
            took.as_secs_f64()
        ),
        n => format!(
            "built {n} derivations in {:.1}s, {paths} {outputs}",
            took.as_secs_f64()
        ),
    }
}

/// `--dry-run`: list what would be built, as `nix-build --dry-run` does.
fn dry_run(
    store: &Store,
    targets: &[StorePath],
    check: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let plan = kiln_builder::plan::plan(store, targets, check)?;
    match plan.builds.len() {
        0 => say!("nothing to build: every output is valid"),
        1 => say!("this derivation would be built:"),
        n => say!("these {n} derivations would be built:"),
    }
    for build in &plan.builds {
        say!("  {}", store.print_path(&build.drv_path));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The derivations the command line names: `.drv` store paths as they
/// are, and FILE / `-E EXPR` with its `-A` paths evaluated and
/// instantiated (see `installable`).
fn targets(global: &GlobalOpts, store: &Store, args: &BuildArgs) -> anyhow::Result<Vec<StorePath>> {
    let logical = store.store_dir().as_str();
    let physical = store.physical_store_dir().to_string_lossy().into_owned();
    for arg in &args.installables {
        let in_store =
            arg.starts_with(&format!("{logical}/")) || arg.starts_with(&format!("{physical}/"));
        if in_store && !arg.ends_with(".drv") {
            let path = parse_store_path_arg(store.config(), arg)?;
            return Err(exit::user(anyhow!(
                "{} is not a derivation: `kiln build` takes .drv store paths or a FILE to evaluate",
                store.print_path(&path)
            )));
        }
    }
    let found = instantiate(global, &args.installables, &args.attrs, &args.source, false)?;
    let mut drvs = Vec::with_capacity(found.len());
    for drv in found {
        let path = parse_store_path_arg(store.config(), &drv.drv_path)?;
        if !store.is_valid(&path).context("querying the database")? {
            return Err(exit::user(anyhow!(
                "{} is not a valid path in this store",
                store.print_path(&path)
            )));
        }
        drvs.push(path);
    }
    if drvs.is_empty() {
        return Err(exit::user(anyhow!("nothing to build: no derivation found")));
    }
    Ok(drvs)
}

/// `result`, `result-2`, …, with `-OUTPUT` for outputs other than `out`.
fn link_name(base: &Path, index: usize, output: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    if index > 0 {
        name.push(format!("-{}", index + 1));
    }
    if output != "out" {
        name.push(format!("-{output}"));
    }
    PathBuf::from(name)
}

/// Point `link` at the output and register it as an indirect GC root.
fn make_result_link(store: &Store, link: &Path, path: &StorePath) -> anyhow::Result<()> {
    let target = store.real_path(path);
    let link = std::path::absolute(link).with_context(|| format!("{}", link.display()))?;
    replace_symlink(&target, &link)
        .with_context(|| format!("creating the result link {}", link.display()))?;
    store
        .add_indirect_root(&link)
        .context("registering the GC root")?;
    Ok(())
}

/// Create or atomically replace a symlink (never a non-link file).
fn replace_symlink(target: &Path, link: &Path) -> anyhow::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link)
        && !meta.file_type().is_symlink()
    {
        return Err(exit::user(anyhow!(
            "{} exists and is not a symlink; not replacing it",
            link.display()
        )));
    }
    let tmp = link.with_file_name(format!(
        ".{}.tmp-{}",
        link.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)?;
    Ok(())
}

pub(crate) fn report_failure(drv: &str, failure: &Failure) {
    match failure {
        Failure::Build(BuildError::BuilderFailed {
            drv: _,
            outcome,
            timed_out: _,
            log_tail,
            kept,
        }) => {
            say!("error: builder for '{drv}' failed: {outcome}");
            if !log_tail.is_empty() {
                say!("last {} log lines:", log_tail.len());
                let escape = std::io::stderr().is_terminal();
                for line in log_tail {
                    if escape {
                        say!("> {}", crate::escape::escape_line(line));
                    } else {
                        say!("> {line}");
                    }
                }
            }
            if let Some(dir) = kept {
                say!("the build directory is kept at {}", dir.display());
            }
            say!("For the full log, run 'kiln log {drv}'.");
        }
        Failure::Build(e) => say!("error: {e}"),
        Failure::Dependency(dep) => {
            say!("error: cannot build '{drv}': its dependency '{dep}' failed")
        }
        Failure::NotStarted => {}
    }
}

/// Print what `--check` found; true when every output is identical.
fn report_check(drv: &str, outputs: &[CheckedOutput]) -> bool {
    let mut same = true;
    for out in outputs {
        if out.differences.is_empty() {
            say!("checked output '{}' of '{drv}': reproducible", out.output);
            continue;
        }
        same = false;
        say!(
            "error: output '{}' of '{drv}' differs when rebuilt ({}):",
            out.output,
            out.path
        );
        for d in &out.differences {
            let file = if d.path.as_os_str().is_empty() {
                "(the output itself)".to_string()
            } else {
                d.path.display().to_string()
            };
            say!(
                "  {file}\n    in the store: {}\n    rebuilt:      {}",
                d.valid,
                d.rebuilt
            );
        }
    }
    same
}

/// The progress view: a live display on a terminal, plain lines otherwise.
pub(crate) struct Progress {
    print_logs: bool,
    /// stderr is a terminal: build output is escaped (`crate::escape`).
    escape: bool,
    quiet: bool,
    live: Option<Live>,
    total: AtomicUsize,
    done: AtomicUsize,
}

struct Live {
    multi: MultiProgress,
    main: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    pub(crate) fn new(print_logs: bool, quiet: bool) -> Progress {
        let live = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let multi = MultiProgress::new();
            let main = multi.add(ProgressBar::new(0));
            main.set_style(
                ProgressStyle::with_template("[{pos}/{len} built] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            main.enable_steady_tick(Duration::from_millis(200));
            Live {
                multi,
                main,
                running: Mutex::new(HashMap::new()),
            }
        });
        Progress {
            print_logs,
            escape: std::io::stderr().is_terminal(),
            quiet,
            live,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    pub(crate) fn clear(&self) {
        if let Some(live) = &self.live {
            live.main.finish_and_clear();
            let _ = live.multi.clear();
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        let live = self.live.as_ref().expect("only called with a live view");
        live.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Observer for Progress {
    fn planned(&self, drvs: &[String]) {
        self.total.store(drvs.len(), Ordering::Relaxed);
        if let Some(live) = &self.live {
            live.main.set_length(drvs.len() as u64);
        } else if !self.quiet {
            match drvs.len() {
                1 => say!("this derivation will be built:"),
                n => say!("these {n} derivations will be built:"),
            }
            for d in drvs {
                say!("  {d}");
            }
        }
    }

    fn started(&self, drv: &str, name: &str) {
        if let Some(live) = &self.live {
            let bar = live.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            self.running().insert(drv.to_string(), bar);
        } else if !self.quiet {
            say!("building '{drv}'...");
        }
    }

    fn log_line(&self, drv: &str, name: &str, line: &str) {
        let line = if self.escape {
            crate::escape::escape_line(line)
        } else {
            std::borrow::Cow::Borrowed(line)
        };
        if let Some(live) = &self.live {
            if self.print_logs {
                live.multi.suspend(|| say!("{name}> {line}"));
            }
            if let Some(bar) = self.running().get(drv) {
                bar.set_message(line.into_owned());
            }
        } else if self.print_logs {
            say!("{name}> {line}");
        }
    }

    fn built_elsewhere(&self, drv: &str, _name: &str) {
        if self.live.is_none() && !self.quiet {
            say!("'{drv}' was built by another process");
        }
    }

    fn finished(&self, drv: &str, _name: &str, ok: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        if let Some(live) = &self.live {
            if let Some(bar) = self.running().remove(drv) {
                bar.finish_and_clear();
                live.multi.remove(&bar);
            }
            if ok {
                live.main.inc(1);
            }
            let running: Vec<String> = self.running().values().map(|bar| bar.prefix()).collect();
            live.main.set_message(running.join(", "));
        } else if !self.quiet {
            let status = if ok { "built" } else { "FAILED" };
            say!("[{done}/{total}] {status} '{drv}'");
        }
    }

    fn stop_requested(&self) -> bool {
        output::closed()
    }
}
