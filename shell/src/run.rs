//! `kiln run INSTALLABLE [-- ARGS]`: build if needed, then run the
//! package's program where the store is visible at its logical path.
//!
//! The program is, in order: a file named directly (`./result/bin/hello`,
//! a path inside a store path); `bin/<meta.mainProgram>`; `bin/<pname>`
//! (the derivation's `pname`, else its name without the version, as Nix's
//! `parseDrvName` splits it). The program runs as the caller, with the
//! caller's environment, working directory, files and network; only the
//! store is added, when needed, by [`crate::view`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_builder::plan::read_derivation;
use kiln_builder::{Observer, RealiseOptions, realise};
use kiln_store::StorePath;
use kiln_store::store::{Store, StoreConfig};

use crate::cache::{Source, resolve};
use crate::error::ShellError;
use crate::launch::{View, run_to_end};

/// What to run.
#[derive(Debug, Clone)]
pub enum Target {
    /// A store path, or a file in one, as given (a `result` link, a
    /// logical or physical path).
    Path { path: StorePath, arg: PathBuf },
    /// A `.drv` and the output to run.
    Drv { drv: StorePath, output: String },
    /// An expression to evaluate (cached as shells are).
    Eval(Source),
}

#[derive(Debug, Clone)]
pub struct RunRequest {
    pub target: Target,
    pub args: Vec<OsString>,
    pub use_cache: bool,
    pub jobs: usize,
    pub cores: u32,
}

/// The program [`run`] chose, for `--print-program` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Logical path of the program.
    pub path: PathBuf,
    /// Derivations built to get it.
    pub built: usize,
}

/// Find (building what is needed) the program `req` names.
pub fn program(
    config: &StoreConfig,
    req: &RunRequest,
    observer: &dyn Observer,
) -> Result<(Store, Program), ShellError> {
    let (drv, output) = match &req.target {
        Target::Eval(source) => {
            let (resolved, _) = resolve(config, source, req.use_cache)?;
            let drv = config
                .store_dir
                .parse_path(&resolved.drv_path)
                .map_err(|e| ShellError::Other(format!("{}: {e}", resolved.drv_path)))?;
            (Some(drv), resolved.output)
        }
        Target::Drv { drv, output } => (Some(drv.clone()), output.clone()),
        Target::Path { .. } => (None, "out".to_owned()),
    };
    let store =
        Store::open(config.clone()).map_err(|e| ShellError::store("opening the store", e))?;
    if let Target::Path { path, arg } = &req.target {
        let program = path_program(&store, path, arg)?;
        return Ok((store, program));
    }
    let drv = drv.expect("a derivation unless a path");
    let parsed = read_derivation(&store, &drv)?;
    let known = parsed.outputs.get(&output).and_then(|o| o.path()).cloned();
    let valid = match &known {
        Some(path) => {
            store
                .add_temp_roots(std::slice::from_ref(path))
                .map_err(|e| ShellError::store("adding temp roots", e))?;
            store
                .is_valid(path)
                .map_err(|e| ShellError::store("querying the database", e))?
        }
        None => false,
    };
    let (out, built) = if valid {
        (known.expect("valid means known"), 0)
    } else {
        let options = RealiseOptions {
            jobs: req.jobs.max(1),
            cores: req.cores,
            ..RealiseOptions::default()
        };
        let realised = realise(&store, std::slice::from_ref(&drv), &options, observer)?;
        if !realised.ok() {
            return Err(crate::shell::builds_failed(&realised.failures));
        }
        let out = realised
            .outputs
            .first()
            .and_then(|(_, outs)| outs.get(&output))
            .cloned()
            .ok_or_else(|| {
                ShellError::Usage(format!(
                    "{} has no output '{output}'",
                    store.print_path(&drv)
                ))
            })?;
        (out, realised.built)
    };
    let meta = store
        .derivation_meta(&drv)
        .map_err(|e| ShellError::store("querying the database", e))?;
    let main = meta
        .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .and_then(|v| v.get("mainProgram")?.as_str().map(str::to_owned));
    let pname = parsed.env.get("pname").cloned().unwrap_or_else(|| {
        parse_drv_name(parsed.env.get("name").map_or(out.name(), |n| n)).to_owned()
    });
    let path = bin_program(&store, &out, main.as_deref(), &pname)?;
    Ok((store, Program { path, built }))
}

/// Build what is needed and run the program; its exit code.
pub fn run(
    config: &StoreConfig,
    req: &RunRequest,
    observer: &dyn Observer,
) -> Result<u8, ShellError> {
    let (store, program) = program(config, req, observer)?;
    run_program(&store, &program, &req.args)
}

/// Run a program [`program`] found, from the current directory; its exit
/// code. `store` stays open (its temp roots keep the program from a
/// collection) until the program ends.
pub fn run_program(store: &Store, program: &Program, args: &[OsString]) -> Result<u8, ShellError> {
    let cwd = std::env::current_dir().map_err(ShellError::io("finding", Path::new(".")))?;
    let view = View::for_store(store, &cwd)?;
    let mut cmd = Command::new(&program.path);
    cmd.args(args);
    view.apply(&mut cmd, &cwd);
    run_to_end(&mut cmd, &program.path.display().to_string())
}

/// A store path as given: a file in it is the program; the path itself
/// runs `bin/<pname>` (its deriver's `meta.mainProgram` first).
fn path_program(store: &Store, path: &StorePath, arg: &Path) -> Result<Program, ShellError> {
    store
        .add_temp_roots(std::slice::from_ref(path))
        .map_err(|e| ShellError::store("adding temp roots", e))?;
    if !store
        .is_valid(path)
        .map_err(|e| ShellError::store("querying the database", e))?
    {
        return Err(ShellError::Usage(format!(
            "{} is not a valid path in this store: build it first",
            store.print_path(path)
        )));
    }
    let real = store.real_path(path);
    if let Ok(file) = std::fs::canonicalize(arg)
        && let Ok(rest) = file.strip_prefix(&real)
        && file.is_file()
    {
        return Ok(Program {
            path: PathBuf::from(store.print_path(path)).join(rest),
            built: 0,
        });
    }
    let mut main = None;
    let query = |e| ShellError::store("querying the database", e);
    let mut derivers: Vec<StorePath> = store
        .path_info(path)
        .map_err(query)?
        .and_then(|info| info.deriver)
        .into_iter()
        .collect();
    derivers.extend(store.derivers_of_output(path).map_err(query)?);
    for drv in derivers {
        if let Some(json) = store
            .derivation_meta(&drv)
            .map_err(|e| ShellError::store("querying the database", e))?
        {
            main = serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v.get("mainProgram")?.as_str().map(str::to_owned));
            if main.is_some() {
                break;
            }
        }
    }
    let pname = parse_drv_name(path.name()).to_owned();
    Ok(Program {
        path: bin_program(store, path, main.as_deref(), &pname)?,
        built: 0,
    })
}

fn bin_program(
    store: &Store,
    out: &StorePath,
    main: Option<&str>,
    pname: &str,
) -> Result<PathBuf, ShellError> {
    let name = main.unwrap_or(pname);
    let bin = store.real_path(out).join("bin");
    if bin.join(name).is_file() {
        return Ok(PathBuf::from(store.print_path(out)).join("bin").join(name));
    }
    let mut present: Vec<String> = std::fs::read_dir(&bin)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    present.sort();
    let why = if main.is_some() {
        "its meta.mainProgram"
    } else {
        "its package name (set meta.mainProgram to choose another)"
    };
    let has = if present.is_empty() {
        "it has no bin/".to_owned()
    } else {
        format!(
            "bin/ has: {}; run one with `kiln run {}/bin/NAME`",
            present.join(", "),
            store.print_path(out)
        )
    };
    Err(ShellError::Usage(format!(
        "{} has no bin/{name} ({why}); {has}",
        store.print_path(out)
    )))
}

/// The name without its version, as Nix's `parseDrvName` splits it: at
/// the first `-` not followed by a letter.
pub fn parse_drv_name(name: &str) -> &str {
    let bytes = name.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return &name[..i];
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::parse_drv_name;

    #[test]
    fn names_lose_their_versions() {
        assert_eq!(parse_drv_name("hello-2.10"), "hello");
        assert_eq!(parse_drv_name("gnu-hello-2.10"), "gnu-hello");
        assert_eq!(parse_drv_name("app"), "app");
        assert_eq!(parse_drv_name("nix-2.8-pre"), "nix");
    }
}
