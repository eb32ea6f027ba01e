//! `kiln cache push`: write closures to a binary cache in Nix's format.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use kiln_remote::{Cache, Compression, PushObserver, PushOptions};
use kiln_store::StorePath;

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, parse_store_path_arg};
use crate::cli::installable::{SourceArgs, instantiate};
use crate::{exit, output, say};

/// Binary caches in Nix's format (nix-cache-info, .narinfo, nar/).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln cache push file:///srv/cache ./result --key-file ci-1.sec
  kiln cache push https://cache.example.org/ -A hello --compression xz
  kiln build -A hello --substituters file:///srv/cache --trusted-public-keys \"$(cat ci-1.pub)\"")]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    Push(PushArgs),
    Fetch(FetchArgs),
}

/// Make store paths valid from binary caches (`nix-store -r PATH`,
/// `nix copy --from URL PATH`): each path and its closure are fetched,
/// verified (a trusted signature, the NAR hash) and installed.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln cache fetch /kiln/store/<hash>-hello --substituters file:///srv/cache \\
      --trusted-public-keys \"$(cat ci-1.pub)\"
  kiln --store-dir /nix/store cache fetch /nix/store/<hash>-hello --substituters http://127.0.0.1:8080")]
struct FetchArgs {
    /// Store paths to fetch.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<String>,
    #[command(flatten)]
    subst: crate::cli::substitute::SubstArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
    Zstd,
    Xz,
    None,
}

/// Push the closures of store paths (or of built attributes) to a cache.
///
/// DEST is a directory (`file:///DIR` or `/DIR`) or an HTTP(S) URL that
/// accepts PUT (nginx with `dav_methods PUT`, an S3-compatible endpoint).
/// What the cache has already is skipped (its narinfos are looked up in
/// parallel); NARs are compressed on every core, uploaded, then the
/// narinfos, references first, each signed with --key-file (or the config
/// file's `secret-key-files`).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln cache push /srv/cache ./result                 a directory (served by any web server)
  kiln cache push file:///srv/cache /kiln/store/<hash>-hello --key-file ci-1.sec
  kiln cache push http://127.0.0.1:8080/ -A hello     the outputs of a built attribute
  kiln cache push /srv/cache ./result --json          what was pushed, for scripts")]
struct PushArgs {
    /// The cache: file:///DIR, /DIR, http://… or https://….
    dest: String,
    /// Store paths (or result links) whose closures to push; or a FILE with -A.
    #[arg(value_name = "PATH|FILE")]
    paths: Vec<String>,
    /// Push the outputs of this attribute of FILE (built already).
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    attrs: Vec<String>,
    #[command(flatten)]
    source: SourceArgs,
    /// Compression of the NARs (Nix's default is xz; zstd is much faster).
    #[arg(long, value_enum, default_value = "zstd")]
    compression: CompressionArg,
    /// Sign narinfos with this secret key (NAME:BASE64, as `kiln key generate` writes).
    #[arg(long = "key-file", value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Paths compressed and uploaded at once (default: the number of CPUs).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// `Priority:` written into a new cache's nix-cache-info (lower is asked first).
    #[arg(long, value_name = "N")]
    priority: Option<u32>,
    /// Print what was pushed as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &GlobalOpts, args: CacheArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CacheCommand::Push(args) => push(global, &args),
        CacheCommand::Fetch(args) => fetch(global, &args),
    }
}

struct Lines {
    quiet: bool,
    done: AtomicUsize,
    total: AtomicUsize,
    bytes: AtomicU64,
}

impl PushObserver for Lines {
    fn plan(&self, missing: usize, present: usize, bytes: u64) {
        self.total.store(missing, Ordering::Relaxed);
        if !self.quiet {
            say!(
                "pushing {missing} paths ({:.1} MiB of NAR); the cache has {present} already",
                bytes as f64 / (1 << 20) as f64
            );
        }
    }
    fn pushed(&self, path: &StorePath, nar_size: u64, file_size: u64) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bytes.fetch_add(file_size, Ordering::Relaxed);
        if !self.quiet {
            say!(
                "[{n}/{}] {} ({nar_size} bytes, {file_size} compressed)",
                self.total.load(Ordering::Relaxed),
                path.base_name()
            );
        }
    }
}

fn fetch(global: &GlobalOpts, args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let mut paths = Vec::new();
    for arg in &args.paths {
        let path = store
            .store_dir()
            .parse_path(arg)
            .map_err(|e| exit::user(anyhow!("{arg}: {e}")))?;
        paths.push(path);
    }
    let n = crate::cli::substitute::fetch_paths(&store, &args.subst, &paths, global.quiet)?;
    if !global.quiet {
        say!("fetched {n} paths");
    }
    Ok(ExitCode::SUCCESS)
}

fn push(global: &GlobalOpts, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let roots = roots(global, &store, args)?;
    let conf = crate::cli::substitute::read_conf()?;
    let key_file = args.key_file.clone().or_else(|| {
        conf.get("secret-key-files")
            .and_then(|v| v.split_whitespace().next())
            .map(PathBuf::from)
    });
    let key = key_file
        .map(|f| crate::cli::key::read_secret_key(&f))
        .transpose()?;
    if key.is_none() && !global.quiet {
        say!(
            "warning: pushing without --key-file: the narinfos are unsigned, and substituters refuse unsigned paths unless require-sigs is false"
        );
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = PushOptions {
        compression: match args.compression {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Xz => Compression::Xz,
            CompressionArg::None => Compression::None,
        },
        key,
        jobs: args.jobs.unwrap_or(cpus).max(1),
        threads: cpus as u32,
        priority: args.priority,
    };
    let client = kiln_fetch::Client::new(&kiln_fetch::FetchLimits::default());
    let cache = Cache::new(&args.dest, client).map_err(exit::user)?;
    let observer = Lines {
        quiet: global.quiet,
        done: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
    };
    let started = Instant::now();
    let report = kiln_remote::push(&store, &cache, &roots, &options, &observer).map_err(|e| {
        if e.is_bad_input() {
            exit::user(anyhow!(e))
        } else {
            anyhow!(e)
        }
    })?;
    if !global.quiet {
        say!(
            "pushed {} paths ({:.1} MiB) to {} in {:.1}s; {} were there already",
            report.pushed.len(),
            observer.bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
            args.dest,
            started.elapsed().as_secs_f64(),
            report.present
        );
    }
    if args.json {
        let pushed: Vec<serde_json::Value> = report
            .pushed
            .iter()
            .map(|(p, nar, file)| {
                serde_json::json!({
                    "path": store.print_path(p),
                    "narSize": nar,
                    "fileSize": file,
                })
            })
            .collect();
        let doc = serde_json::json!({ "pushed": pushed, "present": report.present });
        output::stdout(format!("{doc}\n").as_bytes()).context("printing JSON")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The store paths to push: paths and result links as given; with -A (or
/// a FILE), the outputs of the attributes' derivations, which must be built.
fn roots(
    global: &GlobalOpts,
    store: &kiln_store::store::Store,
    args: &PushArgs,
) -> anyhow::Result<Vec<StorePath>> {
    let mut roots = Vec::new();
    if args.attrs.is_empty() && args.source.expr.is_none() {
        if args.paths.is_empty() {
            return Err(exit::user(anyhow!(
                "nothing to push: name store paths, result links, or -A ATTR"
            )));
        }
        for arg in &args.paths {
            let path = parse_store_path_arg(store.config(), arg)?;
            if !store.is_valid(&path).context("querying the database")? {
                return Err(exit::user(anyhow!(
                    "{} is not a valid path in this store",
                    store.print_path(&path)
                )));
            }
            roots.push(path);
        }
        return Ok(roots);
    }
    let found = instantiate(global, &args.paths, &args.attrs, &args.source, false)?;
    for drv in found {
        let drv_path = parse_store_path_arg(store.config(), &drv.drv_path)?;
        let parsed = kiln_builder::plan::read_derivation(store, &drv_path)?;
        for (name, out) in &parsed.outputs {
            let Some(path) = out.path() else { continue };
            if !store.is_valid(path).context("querying the database")? {
                return Err(exit::user(anyhow!(
                    "output '{name}' of {} is not built: run `kiln build` first",
                    store.print_path(&drv_path)
                )));
            }
            roots.push(path.clone());
        }
    }
    Ok(roots)
}
