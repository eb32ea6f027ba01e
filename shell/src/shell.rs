//! `kiln shell`: a derivation's build environment as an interactive shell.
//!
//! 1. The derivation: from the evaluation cache or by evaluating
//!    ([`crate::cache`]).
//! 2. Its inputs (the outputs of its input derivations it uses, and its
//!    input sources) are made temp roots, then built if any is missing.
//! 3. The shell's GC root is (re)made: the `.drv` and every input, tied to
//!    the project file ([`crate::roots`]).
//! 4. The environment (`environment`), the rc file (`rc_script`) and
//!    the shell are started in the view the store needs: directly, in a
//!    user + mount namespace ([`crate::view`]), or in bubblewrap
//!    (`--sandbox`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_builder::environment::{EnvInput, build_env};
use kiln_builder::plan::read_derivation;
use kiln_builder::{Failure, Observer, RealiseOptions, realise};
use kiln_store::StorePath;
use kiln_store::derivation::Derivation;
use kiln_store::store::{Store, StoreConfig};

use crate::cache::{CacheOutcome, Source, resolve};
use crate::error::ShellError;
use crate::launch::{View, run_to_end};
use crate::roots::{ensure_root, root_dir};

/// What the shell does once its environment is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// An interactive shell.
    Interactive,
    /// `--run CMD`: run CMD, exit with its status.
    Run(String),
    /// `--command CMD`: run CMD, then stay interactive.
    Command(String),
    /// `--print-env`: print the environment as sourceable shell.
    PrintEnv,
}

/// `--sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sandbox {
    pub network: bool,
}

/// One `kiln shell`.
#[derive(Debug, Clone)]
pub struct ShellRequest {
    pub source: Source,
    /// The project file (absolute) the GC root is tied to: the file
    /// evaluated, or the current directory for `-p`.
    pub project: PathBuf,
    /// What was selected in it (attributes, arguments, packages), so two
    /// shells of one file have roots of their own.
    pub selection: String,
    pub mode: Mode,
    pub pure: bool,
    pub sandbox: Option<Sandbox>,
    pub use_cache: bool,
    /// `NIX_BUILD_CORES`, and builds of missing inputs.
    pub cores: u32,
    pub jobs: usize,
}

/// How a shell ended.
#[derive(Debug)]
pub enum ShellOutcome {
    /// The shell's exit code (128 + a signal that ended it).
    Exited(u8),
    /// `--print-env`: the script to print.
    Env(String),
}

/// What the environment says about itself, for `-v` and tests.
#[derive(Debug, Clone)]
pub struct Report {
    pub cache: CacheOutcome,
    /// The logical store dir shows the store on this host (else the shell
    /// runs in a namespace, and `--print-env`'s paths lead nowhere).
    pub store_visible: bool,
    pub built: usize,
    pub drv: String,
}

/// Variables kept from the caller's environment by `--pure` (and
/// `--sandbox`), as nix-shell keeps them.
pub const PURE_KEEP: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "TERM",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "TZ",
    "LANG",
    "LC_ALL",
    "PAGER",
    "SHLVL",
];

/// The derivation, its inputs, valid and rooted.
struct Prepared {
    store: Store,
    drv_path: StorePath,
    drv: Derivation,
    inputs: Vec<StorePath>,
    report: Report,
}

fn prepare(
    config: &StoreConfig,
    req: &ShellRequest,
    observer: &dyn Observer,
) -> Result<Prepared, ShellError> {
    let (resolved, cache) = resolve(config, &req.source, req.use_cache)?;
    let store =
        Store::open(config.clone()).map_err(|e| ShellError::store("opening the store", e))?;
    let drv_path = store
        .store_dir()
        .parse_path(&resolved.drv_path)
        .map_err(|e| ShellError::Other(format!("{}: {e}", resolved.drv_path)))?;
    let drv = read_derivation(&store, &drv_path)?;
    let (inputs, built) = realise_inputs(&store, &drv, req, observer)?;
    let mut rooted = inputs.clone();
    rooted.push(drv_path.clone());
    let dir = root_dir(&store, &req.project, &req.selection);
    ensure_root(&store, &dir, &req.project, &rooted)?;
    Ok(Prepared {
        report: Report {
            cache,
            store_visible: crate::view::store_visible(
                Path::new(store.store_dir().as_str()),
                store.physical_store_dir(),
            ),
            built,
            drv: store.print_path(&drv_path),
        },
        store,
        drv_path,
        drv,
        inputs,
    })
}

/// The paths the derivation's builder would see (input derivations'
/// outputs it uses, its sources), built when missing.
fn realise_inputs(
    store: &Store,
    drv: &Derivation,
    req: &ShellRequest,
    observer: &dyn Observer,
) -> Result<(Vec<StorePath>, usize), ShellError> {
    let mut inputs: BTreeSet<StorePath> = drv.input_srcs.iter().cloned().collect();
    let mut missing_drvs = Vec::new();
    let mut known = Vec::new();
    for (input_drv, outputs) in &drv.input_drvs {
        let parsed = read_derivation(store, input_drv)?;
        let mut complete = true;
        for name in outputs {
            match parsed.outputs.get(name).and_then(|o| o.path()) {
                Some(path) => known.push(path.clone()),
                None => complete = false,
            }
        }
        if !complete {
            missing_drvs.push(input_drv.clone());
        }
    }
    inputs.extend(known.iter().cloned());
    let all: Vec<StorePath> = inputs.iter().cloned().collect();
    store
        .add_temp_roots(&all)
        .map_err(|e| ShellError::store("adding temp roots", e))?;
    for (input_drv, outputs) in &drv.input_drvs {
        let parsed = read_derivation(store, input_drv)?;
        for name in outputs {
            if let Some(path) = parsed.outputs.get(name).and_then(|o| o.path())
                && !store
                    .is_valid(path)
                    .map_err(|e| ShellError::store("querying the database", e))?
                && !missing_drvs.contains(input_drv)
            {
                missing_drvs.push(input_drv.clone());
            }
        }
    }
    for src in &drv.input_srcs {
        if !store
            .is_valid(src)
            .map_err(|e| ShellError::store("querying the database", e))?
        {
            return Err(ShellError::Other(format!(
                "the input source {} is not in the store: evaluate again with --no-cache",
                store.print_path(src)
            )));
        }
    }
    if missing_drvs.is_empty() {
        return Ok((all, 0));
    }
    let options = RealiseOptions {
        jobs: req.jobs.max(1),
        cores: req.cores,
        ..RealiseOptions::default()
    };
    let realised = realise(store, &missing_drvs, &options, observer)?;
    if !realised.ok() {
        return Err(builds_failed(&realised.failures));
    }
    for (input_drv, outputs) in &realised.outputs {
        let used = &drv.input_drvs[input_drv];
        for (name, path) in outputs {
            if used.contains(name) {
                inputs.insert(path.clone());
            }
        }
    }
    Ok((inputs.into_iter().collect(), realised.built))
}

pub(crate) fn builds_failed(failures: &[(String, Failure)]) -> ShellError {
    let mut lines = Vec::new();
    for (drv, failure) in failures {
        match failure {
            Failure::Build(err) => {
                lines.push(format!("{err}; for the full log run 'kiln log {drv}'"))
            }
            Failure::Dependency(dep) => lines.push(format!(
                "cannot build '{drv}': its dependency '{dep}' failed"
            )),
            Failure::NotStarted => {}
        }
    }
    ShellError::Other(lines.join("\n"))
}

/// Enter the shell `req` describes; builds report to `observer`.
pub fn shell(
    config: &StoreConfig,
    req: &ShellRequest,
    observer: &dyn Observer,
) -> Result<(ShellOutcome, Report), ShellError> {
    let prepared = prepare(config, req, observer)?;
    let cwd = std::env::current_dir().map_err(ShellError::io("finding", Path::new(".")))?;
    let host: BTreeMap<String, String> = std::env::vars().collect();
    if req.mode == Mode::PrintEnv {
        let dir = crate::cache::cache_dir(config)
            .join(format!("build-{}", prepared.drv_path.hash_part()));
        std::fs::create_dir_all(&dir).map_err(ShellError::io("creating", &dir))?;
        let env = environment(&prepared, req, &dir, &cwd, &host, true)?;
        let script = print_env(&env, &prepared);
        return Ok((ShellOutcome::Env(script), prepared.report));
    }
    let tmp = tempfile::Builder::new()
        .prefix("kiln-shell-")
        .tempdir()
        .map_err(ShellError::io("creating", &std::env::temp_dir()))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut env = environment(
        &prepared,
        req,
        &tmp_path,
        &cwd,
        &host,
        req.sandbox.is_none(),
    )?;
    let program = choose_shell(&prepared, req, &host)?;
    let rc = tmp_path.join("rc");
    let script = rc_script(&program, req, &prepared.drv_name());
    std::fs::write(&rc, script).map_err(ShellError::io("writing", &rc))?;
    let mut argv: Vec<OsString> = program.prefix.clone();
    match (&req.mode, program.flavour) {
        (Mode::Run(_), _) => argv.push(rc.clone().into()),
        (_, Flavour::Bash) => {
            argv.extend(["--rcfile".into(), rc.clone().into(), "-i".into()]);
        }
        (_, Flavour::Posix) => {
            env.insert("ENV".into(), rc.to_string_lossy().into_owned());
            argv.push("-i".into());
        }
    }
    let mut cmd = match req.sandbox {
        None => {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            View::for_store(&prepared.store, &cwd)?.apply(&mut cmd, &cwd);
            cmd
        }
        Some(sandbox) => bwrap_command(&prepared, req, sandbox, &tmp_path, &cwd, &argv)?,
    };
    cmd.env_clear().envs(&env);
    let code = run_to_end(&mut cmd, "the shell")?;
    drop(tmp);
    Ok((ShellOutcome::Exited(code), prepared.report))
}

impl Prepared {
    fn drv_name(&self) -> String {
        self.drv
            .env
            .get("name")
            .cloned()
            .unwrap_or_else(|| self.drv_path.name().trim_end_matches(".drv").to_owned())
    }

    /// The inputs with a `bin/`, as `PATH` entries (logical paths).
    fn input_dirs(&self, sub: &str) -> Vec<String> {
        self.inputs
            .iter()
            .filter(|p| self.store.real_path(p).join(sub).is_dir())
            .map(|p| format!("{}/{sub}", self.store.print_path(p)))
            .collect()
    }
}

/// The shell's environment: the caller's (all of it, or the `PURE_KEEP`
/// list), then what the builder would get (`kiln_builder::environment`:
/// the derivation's variables, `passAsFile` files, `NIX_BUILD_TOP` and
/// the temp dirs at `tmp`), each output at `$PWD/outputs/NAME`, `PATH`
/// made of the inputs' `bin/` (then the caller's unless pure), `CPATH`,
/// `LIBRARY_PATH`, `PKG_CONFIG_PATH` from their `include/`, `lib/`,
/// `lib/pkgconfig/`, and `IN_NIX_SHELL`.
fn environment(
    prepared: &Prepared,
    req: &ShellRequest,
    tmp: &Path,
    cwd: &Path,
    host: &BTreeMap<String, String>,
    host_visible: bool,
) -> Result<BTreeMap<String, String>, ShellError> {
    let pure = req.pure || req.sandbox.is_some();
    let mut env: BTreeMap<String, String> = if pure {
        host.iter()
            .filter(|(k, _)| PURE_KEEP.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        host.clone()
    };
    let outputs: BTreeMap<String, String> = prepared
        .drv
        .outputs
        .keys()
        .map(|name| {
            let dir = cwd.join("outputs").join(name);
            (name.clone(), dir.to_string_lossy().into_owned())
        })
        .collect();
    let store_dir = prepared.store.store_dir().as_str().to_owned();
    let built = build_env(
        &EnvInput {
            store_dir: &store_dir,
            cores: req.cores,
            drv_env: &prepared.drv.env,
            outputs: &outputs,
        },
        tmp,
    )?;
    let build_top = kiln_builder::sandbox::BUILD_TOP;
    let tmp_text = tmp.to_string_lossy();
    for (name, value) in built {
        if ["PATH", "HOME", "PWD", "TERM", "NIX_LOG_FD"].contains(&name.as_str())
            && !prepared.drv.env.contains_key(&name)
        {
            continue;
        }
        let value = match value.strip_prefix(build_top) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{tmp_text}{rest}"),
            _ => value,
        };
        env.insert(name, value);
    }
    let mut path = prepared.input_dirs("bin");
    if !pure && let Some(host_path) = host.get("PATH") {
        path.push(host_path.clone());
    }
    env.insert("PATH".into(), path.join(":"));
    for (var, sub) in [
        ("CPATH", "include"),
        ("LIBRARY_PATH", "lib"),
        ("PKG_CONFIG_PATH", "lib/pkgconfig"),
    ] {
        if prepared.drv.env.contains_key(var) {
            continue;
        }
        let mut dirs = prepared.input_dirs(sub);
        if dirs.is_empty() {
            continue;
        }
        if !pure && let Some(old) = host.get(var) {
            dirs.push(old.clone());
        }
        env.insert(var.into(), dirs.join(":"));
    }
    env.insert(
        "IN_NIX_SHELL".into(),
        if pure { "pure" } else { "impure" }.into(),
    );
    env.insert("KILN_SHELL".into(), prepared.drv_name());
    if !host_visible {
        // The sandbox shows nothing of the caller's home.
        env.insert("HOME".into(), tmp_text.into_owned());
    }
    Ok(env)
}

/// `--print-env`: the environment as `export` lines, then what the rc
/// file does (stdenv's setup, the shell hook), for `eval` by direnv.
fn print_env(env: &BTreeMap<String, String>, prepared: &Prepared) -> String {
    let mut out = String::from("# kiln shell --print-env: source it (docs/shells.md)\n");
    for (name, value) in env {
        // The caller's own variables are its own; only what the shell
        // changes is printed.
        if std::env::var(name).ok().as_deref() == Some(value.as_str()) || !is_shell_name(name) {
            continue;
        }
        // The scratch dirs of a build would be the caller's temp dir for
        // every command run under direnv: left out (NIX_BUILD_TOP stays).
        if ["TMPDIR", "TEMPDIR", "TMP", "TEMP"].contains(&name.as_str()) {
            continue;
        }
        out += &format!("export {name}={}\n", shell_quote(value));
    }
    out += "kiln_p=$PATH\n";
    out += "if [ -n \"${stdenv:-}\" ] && [ -e \"$stdenv/setup\" ]; then\n  . \"$stdenv/setup\"\n  PATH=$PATH:$kiln_p\nfi\nunset kiln_p\n";
    if prepared.drv.env.contains_key("shellHook") {
        out += "eval \"${shellHook:-}\"\n";
    }
    out
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `'text'` with every `'` as `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Bash,
    /// A POSIX sh (busybox ash, dash): `ENV` for the rc file.
    Posix,
}

struct ShellProgram {
    /// The program and its first arguments (`busybox sh`).
    prefix: Vec<OsString>,
    flavour: Flavour,
    /// The store path it is in, for the sandbox's closure.
    in_store: Option<StorePath>,
}

/// The shell to start: `NIX_BUILD_SHELL` if set; outside the sandbox the
/// caller's `bash`; otherwise (and in the sandbox, where only the closure
/// is visible) a `bin/bash`, then a `bin/sh`, among the inputs, then the
/// derivation's builder when it is a shell or busybox.
fn choose_shell(
    prepared: &Prepared,
    req: &ShellRequest,
    host: &BTreeMap<String, String>,
) -> Result<ShellProgram, ShellError> {
    let classify = |path: &Path, in_store: Option<StorePath>| {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut prefix = vec![path.as_os_str().to_owned()];
        let flavour = match name.as_deref() {
            Some("bash") => Flavour::Bash,
            Some("busybox") => {
                prefix.push("sh".into());
                Flavour::Posix
            }
            _ => Flavour::Posix,
        };
        ShellProgram {
            prefix,
            flavour,
            in_store,
        }
    };
    if req.sandbox.is_none() {
        if let Some(shell) = host.get("NIX_BUILD_SHELL").filter(|s| !s.is_empty()) {
            let path = find_in_path(shell, host).unwrap_or_else(|| PathBuf::from(shell));
            return Ok(classify(&path, None));
        }
        if let Some(bash) = find_in_path("bash", host) {
            return Ok(classify(&bash, None));
        }
    }
    for name in ["bash", "sh"] {
        for input in &prepared.inputs {
            let real = prepared.store.real_path(input).join("bin").join(name);
            if real.is_file() {
                let logical = PathBuf::from(prepared.store.print_path(input))
                    .join("bin")
                    .join(name);
                return Ok(classify(&logical, Some(input.clone())));
            }
        }
    }
    let builder = Path::new(&prepared.drv.builder);
    let is_shell = builder
        .file_name()
        .is_some_and(|n| ["bash", "sh", "busybox", "ash", "dash"].contains(&&*n.to_string_lossy()));
    if is_shell && let Some(path) = prepared.store.store_path_in(builder) {
        return Ok(classify(builder, Some(path)));
    }
    Err(ShellError::Usage(
        "no shell to start: put bash or busybox among the derivation's inputs (or set NIX_BUILD_SHELL outside --sandbox)".into(),
    ))
}

fn find_in_path(program: &str, host: &BTreeMap<String, String>) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = host.get("PATH")?;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The rc file: the caller's `~/.bashrc` (interactive bash, not pure), the
/// derivation's stdenv setup when it has one (`$stdenv/setup`, so
/// `genericBuild` and the phases can be run by hand), `set +e`, the prompt,
/// the `shellHook`, then the command of `--run` / `--command`.
fn rc_script(program: &ShellProgram, req: &ShellRequest, name: &str) -> String {
    let pure = req.pure || req.sandbox.is_some();
    let mut rc = String::from("# kiln shell: the rc file (docs/shells.md)\n");
    if program.flavour == Flavour::Bash && !pure {
        rc += "case $- in *i*) [ -e \"$HOME/.bashrc\" ] && . \"$HOME/.bashrc\";; esac\n";
    }
    rc += "kiln_p=$PATH\ndontAddDisableDepTrack=1\n";
    rc += "if [ -n \"${stdenv:-}\" ] && [ -e \"$stdenv/setup\" ]; then\n  . \"$stdenv/setup\"\n  PATH=$PATH:$kiln_p\nfi\n";
    rc += "unset kiln_p\nset +e\n";
    let prompt = shell_quote(&format!("[kiln-shell:{name}] \\w\\$ "));
    rc += &format!(
        "case $- in *i*) [ -z \"${{KILN_SHELL_PRESERVE_PROMPT:-}}\" ] && PS1={prompt};; esac\n"
    );
    rc += "unset NIX_ENFORCE_PURITY\n";
    rc += "eval \"${shellHook:-}\"\n";
    match &req.mode {
        Mode::Run(cmd) | Mode::Command(cmd) => {
            rc += cmd;
            rc += "\n";
        }
        Mode::Interactive | Mode::PrintEnv => {}
    }
    rc
}

/// `--sandbox`: bubblewrap with only the closure (read-only, at its
/// logical paths), the project directory and the temp dir (read-write),
/// a fresh `/dev`, `/proc` and `/tmp`; no network unless asked (then the
/// host's `resolv.conf`, `hosts` and certificates too; not its
/// `nsswitch.conf`, whose modules a static program would try to load).
fn bwrap_command(
    prepared: &Prepared,
    req: &ShellRequest,
    sandbox: Sandbox,
    tmp: &Path,
    cwd: &Path,
    argv: &[OsString],
) -> Result<Command, ShellError> {
    let bwrap = kiln_builder::sandbox::probe_bwrap(None)?;
    let program = choose_shell(prepared, req, &BTreeMap::new())?;
    let mut roots = prepared.inputs.clone();
    roots.extend(program.in_store);
    let closure = prepared
        .store
        .closure(&roots)
        .map_err(|e| ShellError::store("computing the closure", e))?;
    let project_dir = if req.project.is_dir() {
        req.project.clone()
    } else {
        req.project
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf())
    };
    let inside = if cwd.starts_with(&project_dir) {
        cwd.to_path_buf()
    } else {
        project_dir.clone()
    };
    let mut cmd = Command::new(bwrap);
    cmd.args(["--unshare-all", "--die-with-parent"]);
    if sandbox.network {
        cmd.arg("--share-net");
    }
    cmd.args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    for path in &closure {
        cmd.arg("--ro-bind")
            .arg(prepared.store.real_path(path))
            .arg(prepared.store.print_path(path));
    }
    if sandbox.network {
        for file in ["/etc/resolv.conf", "/etc/hosts", "/etc/ssl"] {
            cmd.args(["--ro-bind-try", file, file]);
        }
    }
    cmd.arg("--bind").arg(tmp).arg(tmp);
    cmd.arg("--bind").arg(&project_dir).arg(&project_dir);
    cmd.arg("--chdir").arg(&inside);
    // SAFETY: isatty has no preconditions.
    if unsafe { libc::isatty(0) } == 0 {
        // No terminal to share: a session of its own (no TIOCSTI).
        cmd.arg("--new-session");
    }
    cmd.arg("--").args(argv);
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert!(is_shell_name("out") && is_shell_name("_x1"));
        assert!(!is_shell_name("1x") && !is_shell_name("a-b") && !is_shell_name(""));
    }
}
