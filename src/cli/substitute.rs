//! Substitution settings for `kiln build`: `--substituters`,
//! `--trusted-public-keys`, Nix's setting names through `--option`, and
//! the config file.
//!
//! The config file is `KILN_CONF` if set, else
//! `$XDG_CONFIG_HOME/kiln/kiln.conf` (or `~/.config/kiln/kiln.conf`), in
//! `nix.conf`'s syntax: `name = value` lines, `#` comments, lists
//! space-separated. Its settings: `substituters`, `extra-substituters`,
//! `trusted-public-keys`, `extra-trusted-public-keys`, `require-sigs`,
//! `connect-timeout`, `stalled-download-timeout`, `http-connections`,
//! `secret-key-files` (for `kiln cache push`). The command line wins over
//! the file. Trusted keys are also read from `kiln key`'s trusted keys
//! file when none is given.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kiln_remote::{SubstituteObserver, SubstituterConfig, Substituters};
use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::{exit, say};

/// Binary caches to substitute from (flatten into a command).
#[derive(Args, Debug, Clone, Default)]
pub struct SubstArgs {
    /// Binary caches to ask before building, in this order (space-separated
    /// URLs, repeatable): file:///DIR, http://…, https://…. The empty
    /// string turns off the config file's substituters.
    #[arg(long = "substituters", value_name = "URLS")]
    pub substituters: Vec<String>,
    /// Public keys (NAME:BASE64, or files of them) whose signatures are
    /// trusted (space-separated, repeatable).
    #[arg(long = "trusted-public-keys", value_name = "KEYS")]
    pub trusted_public_keys: Vec<String>,
    /// `--option require-sigs false`: accept unsigned paths.
    #[arg(skip)]
    pub require_sigs: Option<bool>,
    #[arg(skip)]
    pub extra_substituters: Vec<String>,
    #[arg(skip)]
    pub extra_trusted_public_keys: Vec<String>,
    #[arg(skip)]
    pub connect_timeout: Option<u64>,
    #[arg(skip)]
    pub stalled_download_timeout: Option<u64>,
    #[arg(skip)]
    pub http_connections: Option<usize>,
}

/// The settings of the config file (Nix's names), as read.
#[derive(Debug, Default)]
pub struct ConfFile {
    pub settings: Vec<(String, String)>,
}

impl ConfFile {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The config file's path.
fn conf_path() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("KILN_CONF").filter(|f| !f.is_empty()) {
        return Some(PathBuf::from(file));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("kiln/kiln.conf"))
}

const KNOWN: &[&str] = &[
    "substituters",
    "extra-substituters",
    "trusted-public-keys",
    "extra-trusted-public-keys",
    "trusted-substituters",
    "require-sigs",
    "connect-timeout",
    "stalled-download-timeout",
    "http-connections",
    "secret-key-files",
];

/// Read the config file (absent: no settings). A line that is not
/// `name = value` is the user's error; an unknown setting is a warning,
/// as in Nix.
pub fn read_conf() -> anyhow::Result<ConfFile> {
    let Some(path) = conf_path() else {
        return Ok(ConfFile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfFile::default()),
        Err(e) => {
            return Err(exit::user(
                anyhow!(e).context(format!("reading {}", path.display())),
            ));
        }
    };
    let mut settings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(|| {
            exit::user(anyhow!(
                "{}:{}: expected `name = value`",
                path.display(),
                i + 1
            ))
        })?;
        let name = name.trim().to_string();
        if !KNOWN.contains(&name.as_str()) {
            say!(
                "warning: {}:{}: unknown setting '{name}' (kiln reads: {})",
                path.display(),
                i + 1,
                KNOWN.join(", ")
            );
        }
        settings.push((name, value.trim().to_string()));
    }
    Ok(ConfFile { settings })
}

fn words(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(str::to_string)
        .collect()
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(exit::user(anyhow!(
            "{name}: {value:?} is not true or false"
        ))),
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value
        .parse()
        .map_err(|_| exit::user(anyhow!("{name}: {value:?} is not a number")))
}

/// The substitution settings: the command line over the config file.
pub fn config(args: &SubstArgs) -> anyhow::Result<SubstituterConfig> {
    let conf = read_conf()?;
    let mut cfg = SubstituterConfig::default();
    let list = |cli: &[String], name: &str| -> Vec<String> {
        if cli.is_empty() {
            conf.get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        } else {
            words(cli)
        }
    };
    cfg.urls = list(&args.substituters, "substituters");
    cfg.urls
        .extend(list(&args.extra_substituters, "extra-substituters"));
    let mut keys = list(&args.trusted_public_keys, "trusted-public-keys");
    keys.extend(list(
        &args.extra_trusted_public_keys,
        "extra-trusted-public-keys",
    ));
    cfg.trusted = crate::cli::key::trusted_keys(&keys)?;
    if let Some(v) = args.require_sigs {
        cfg.require_sigs = v;
    } else if let Some(v) = conf.get("require-sigs") {
        cfg.require_sigs = parse_bool("require-sigs", v)?;
    }
    let seconds = |cli: Option<u64>, name: &str, default: Duration| -> anyhow::Result<Duration> {
        Ok(match cli {
            Some(s) => Duration::from_secs(s),
            None => match conf.get(name) {
                Some(v) => Duration::from_secs(parse_number(name, v)?),
                None => default,
            },
        })
    };
    // 0 means Nix's default.
    let non_zero = |d: Duration, default: Duration| if d.is_zero() { default } else { d };
    cfg.connect_timeout = non_zero(
        seconds(args.connect_timeout, "connect-timeout", cfg.connect_timeout)?,
        cfg.connect_timeout,
    );
    cfg.stall_timeout = non_zero(
        seconds(
            args.stalled_download_timeout,
            "stalled-download-timeout",
            cfg.stall_timeout,
        )?,
        cfg.stall_timeout,
    );
    if let Some(n) = args.http_connections {
        cfg.jobs = n.max(1);
    } else if let Some(v) = conf.get("http-connections") {
        cfg.jobs = parse_number::<usize>("http-connections", v)?.max(1);
    }
    Ok(cfg)
}

/// Progress of substitution: a bar of bytes and rate on a terminal, plain
/// lines (`copying path '…' from '…'`, as Nix says) otherwise.
pub struct SubstProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
    started: Mutex<Option<Instant>>,
}

impl SubstProgress {
    pub fn new(quiet: bool) -> SubstProgress {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} downloading {msg} {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
                )
                .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        SubstProgress {
            bar,
            quiet,
            started: Mutex::new(None),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl SubstituteObserver for SubstProgress {
    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| say!("{message}")),
            None => say!("{message}"),
        }
    }
    fn plan(&self, paths: usize, bytes: u64) {
        *self.started.lock().unwrap() = Some(Instant::now());
        match &self.bar {
            Some(bar) => {
                bar.set_length(bar.length().unwrap_or(0) + bytes);
                bar.set_message(format!("{paths} paths"));
            }
            None if !self.quiet => say!(
                "copying {paths} paths ({:.1} MiB to download) from binary caches",
                bytes as f64 / (1 << 20) as f64
            ),
            None => {}
        }
    }
    fn received(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
    fn fetched(&self, path: &str, from: &str) {
        if self.bar.is_none() && !self.quiet {
            say!("copied path '{path}' from '{from}'");
        }
    }
}

fn open(
    store: &Store,
    cfg: &SubstituterConfig,
    progress: &SubstProgress,
) -> anyhow::Result<Substituters> {
    Substituters::open(cfg, store.store_dir(), progress)
        .map_err(|e| {
            if e.is_bad_input() {
                exit::user(anyhow!(e))
            } else {
                anyhow!(e)
            }
        })
        .context("--substituters")
}

/// `kiln cache fetch`: make `paths` (and their closures) valid from the
/// caches; an error names each path no cache gave.
pub fn fetch_paths(
    store: &Store,
    args: &SubstArgs,
    paths: &[StorePath],
    quiet: bool,
) -> anyhow::Result<usize> {
    let cfg = config(args)?;
    if cfg.urls.is_empty() {
        return Err(exit::user(anyhow!(
            "no binary cache to fetch from: give --substituters URL (or set substituters in kiln.conf)"
        )));
    }
    let progress = SubstProgress::new(quiet);
    let substituters = open(store, &cfg, &progress)?;
    let report = substituters
        .substitute(store, paths, &progress)
        .context("substituting from binary caches")?;
    progress.finish();
    let mut absent = Vec::new();
    for path in paths {
        if !store.is_valid(path).context("querying the database")? {
            absent.push(store.print_path(path));
        }
    }
    if !absent.is_empty() {
        return Err(anyhow!(
            "no binary cache gave {} (see the warnings above for what was refused)",
            absent.join(", ")
        ));
    }
    Ok(report.installed.len())
}

/// Substitute what `targets` need before the builder runs; returns how
/// many paths were installed.
pub fn before_build(
    store: &Store,
    args: &SubstArgs,
    targets: &[StorePath],
    quiet: bool,
) -> anyhow::Result<usize> {
    let cfg = config(args)?;
    if cfg.urls.is_empty() {
        return Ok(0);
    }
    let progress = SubstProgress::new(quiet);
    let substituters = open(store, &cfg, &progress)?;
    let started = Instant::now();
    let report = kiln_remote::build::substitute_for_build(store, &substituters, targets, &progress)
        .context("substituting from binary caches")?;
    progress.finish();
    if !report.installed.is_empty() && !quiet {
        let secs = started.elapsed().as_secs_f64();
        say!(
            "substituted {} paths ({:.1} MiB downloaded) in {secs:.1}s",
            report.installed.len(),
            report.downloaded as f64 / (1 << 20) as f64
        );
    }
    Ok(report.installed.len())
}
