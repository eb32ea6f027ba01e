//! Installables: from `FILE [-A ATTR]… [--arg/--argstr] [-I] [-E EXPR]` or
//! `.drv` paths to derivation paths. Shared by `kiln instantiate` and
//! `kiln build`.
//!
//! A FILE (a directory means its `default.nix`; none means
//! `./default.nix`) or `-E EXPR` is evaluated; a top-level function is
//! called with the `--arg`s it accepts. Each `-A` path (or the whole value)
//! is searched for derivations the way `nix-instantiate` does, by
//! `kiln_eval::get_drvs`; each one found is written to the store (or only
//! computed with `dry_run`), its `meta` recorded, and returned with the
//! output it names (`outputName`).

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context as _, anyhow};
use clap::Args;
use kiln_eval::get_drvs::DrvFinder;
pub use kiln_eval::get_drvs::Instantiated;
use kiln_eval::{AutoArg, EvalOptions, EvalStore, Evaluation, KilnEvalStore, SearchPathEntry};
use kiln_store::store::{Store, StoreConfig};

use crate::cli::GlobalOpts;
use crate::cli::config::store_config;
use crate::exit;

/// How the expression is given and called (flatten into a command).
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr", value_name = "EXPR")]
    pub expr: Option<String>,
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

/// Evaluate `file` (or `source.expr`) and instantiate the derivations
/// under each of `attrs` (the whole value if none). `.drv` paths among
/// `paths` are passed through unchanged. Evaluation errors are user
/// errors (exit 2) with the source line and trace.
pub fn instantiate(
    global: &GlobalOpts,
    paths: &[String],
    attrs: &[String],
    source: &SourceArgs,
    dry_run: bool,
) -> anyhow::Result<Vec<Instantiated>> {
    let config = store_config(global)?;
    let mut found = Vec::new();
    let mut files = Vec::new();
    for arg in paths {
        if arg.ends_with(".drv") && is_store_path_arg(&config, arg) {
            let path = crate::cli::config::parse_store_path_arg(&config, arg)?;
            found.push(Instantiated {
                drv_path: config.store_dir.display(&path),
                output: "out".to_owned(),
            });
        } else {
            files.push(PathBuf::from(arg));
        }
    }
    if files.len() > 1 {
        return Err(exit::user(anyhow!(
            "only one file can be evaluated at a time (got {})",
            files.len()
        )));
    }
    if source.expr.is_some() && !files.is_empty() {
        return Err(exit::user(anyhow!("give either FILE or -E EXPR, not both")));
    }
    if !found.is_empty() && files.is_empty() && source.expr.is_none() {
        return Ok(found);
    }
    let file = files.pop();
    let options = eval_options(global, &source.include)?;
    let job = Job {
        config,
        dry_run,
        file,
        expr: source.expr.clone(),
        attrs: attrs.to_vec(),
        auto_args: auto_args(source),
    };
    let mut drvs = kiln_eval::run_with_big_stack(move || job.run(options))?;
    found.append(&mut drvs);
    Ok(found)
}

fn is_store_path_arg(config: &StoreConfig, arg: &str) -> bool {
    let logical = format!("{}/", config.store_dir.as_str());
    arg.starts_with(&logical)
        || arg.starts_with(&format!("{}/", config.physical_store_dir().display()))
        || std::path::Path::new(arg).is_symlink()
}

pub fn auto_args(source: &SourceArgs) -> Vec<(String, AutoArg)> {
    let mut out = Vec::new();
    for pair in source.arg.chunks(2) {
        if let [name, expr] = pair {
            out.push((name.clone(), AutoArg::Expr(expr.clone())));
        }
    }
    for pair in source.argstr.chunks(2) {
        if let [name, value] = pair {
            out.push((name.clone(), AutoArg::Str(value.clone())));
        }
    }
    out
}

/// Everything the evaluation thread needs (values cannot cross threads).
struct Job {
    config: StoreConfig,
    dry_run: bool,
    file: Option<PathBuf>,
    expr: Option<String>,
    attrs: Vec<String>,
    auto_args: Vec<(String, AutoArg)>,
}

impl Job {
    /// Evaluation errors come back rendered ([`kiln_eval::EvalFailure`]).
    fn run(self, options: EvalOptions) -> anyhow::Result<Vec<Instantiated>> {
        let store = if self.dry_run {
            KilnEvalStore::dry_run(self.config.store_dir.clone())
        } else {
            let root = self.config.root.clone();
            let opened = Store::open(self.config.clone())
                .with_context(|| format!("opening the store at root {}", root.display()))?;
            KilnEvalStore::writing(opened)
        };
        let store = Rc::new(store);
        let mut session = Evaluation::with_store(options, store.clone());
        let result = self.evaluate(&mut session);
        let found = result.map_err(|err| session.failure(&err))?;
        store.flush()?;
        // Everything is written and registered; the store (and its
        // database) is closed when `store` goes, the values go with the
        // process.
        session.end_without_freeing();
        Ok(found)
    }

    fn evaluate(&self, session: &mut Evaluation) -> kiln_eval::EvalResult<Vec<Instantiated>> {
        let root = match (&self.expr, &self.file) {
            (Some(expr), _) => session.eval_expr(expr)?,
            // `<name>` is looked up in the search path, as nix-build does.
            (None, Some(file)) => match search_path_arg(file) {
                Some(lookup) => session.eval_expr(&format!("import {lookup}"))?,
                None => session.eval_file(file)?,
            },
            (None, None) => session.eval_file(std::path::Path::new("default.nix"))?,
        };
        let attr_paths: Vec<&str> = if self.attrs.is_empty() {
            vec![""]
        } else {
            self.attrs.iter().map(String::as_str).collect()
        };
        let mut finder = DrvFinder::default();
        for attr_path in attr_paths {
            let value = session.select_path(root.clone(), attr_path, &self.auto_args)?;
            finder.search(session, &value, &self.auto_args)?;
        }
        finder.instantiate(session)
    }
}

/// Evaluation options for the current directory: the search path is the
/// `-I` entries, then those of `KILN_PATH`, then those of `NIX_PATH` (as
/// Nix puts `-I` before `NIX_PATH`), so `<nixpkgs>` resolves where a Nix
/// user has it, then kiln's own `<nixpkgs-mini>`; `--show-trace` chooses
/// the long error trace.
pub fn eval_options(global: &GlobalOpts, include: &[String]) -> anyhow::Result<EvalOptions> {
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let env = |name: &str| std::env::var(name).ok();
    let mut search_path = search_path(include, env("KILN_PATH"), env("NIX_PATH"), &cwd);
    let exe = std::env::current_exe().ok();
    if let Some(dir) = nixpkgs_mini_dir(exe.as_deref()) {
        search_path.push(SearchPathEntry {
            prefix: "nixpkgs-mini".to_owned(),
            path: dir.display().to_string(),
        });
    }
    Ok(EvalOptions {
        search_path,
        base_dir: cwd,
        show_trace: global.show_trace,
        ..EvalOptions::default()
    })
}

fn search_path(
    include: &[String],
    kiln_path: Option<String>,
    nix_path: Option<String>,
    cwd: &std::path::Path,
) -> Vec<SearchPathEntry> {
    let mut entries: Vec<SearchPathEntry> = include
        .iter()
        .map(|entry| SearchPathEntry::parse(entry, cwd))
        .collect();
    for list in [kiln_path, nix_path].into_iter().flatten() {
        entries.extend(SearchPathEntry::parse_list(&list, cwd));
    }
    entries
}

/// A file argument of the form `<name>` or `<name/rest>`: a search path
/// lookup, as `nix-build '<nixpkgs>'` takes it.
fn search_path_arg(file: &std::path::Path) -> Option<&str> {
    let text = file.to_str()?;
    let inner = text.strip_prefix('<')?.strip_suffix('>')?;
    let plain = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+/".contains(c));
    plain.then_some(text)
}

/// Where kiln's package set is, for `<nixpkgs-mini>` (the last search
/// path entry, so `-I nixpkgs-mini=DIR` and KILN_PATH win): beside an
/// installed binary (`BIN/../share/kiln/nixpkgs-mini`), in the checkout of
/// a `target/{release,debug}/kiln`, or in the checkout it was built from.
fn nixpkgs_mini_dir(exe: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    let is_set = |dir: &std::path::Path| dir.join("default.nix").is_file();
    let bin_dir = exe.and_then(std::path::Path::parent);
    let beside_exe = bin_dir.into_iter().flat_map(|bin| {
        [
            bin.join("../share/kiln/nixpkgs-mini"),
            bin.join("../../nixpkgs-mini"),
        ]
    });
    let built_from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("nixpkgs-mini");
    beside_exe
        .chain(std::iter::once(built_from))
        .find(|dir| is_set(dir))
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_bracket_file_arguments_are_search_path_lookups() {
        fn arg(s: &str) -> Option<&str> {
            search_path_arg(std::path::Path::new(s))
        }
        assert_eq!(arg("<nixpkgs-mini>"), Some("<nixpkgs-mini>"));
        assert_eq!(arg("<nixpkgs/lib>"), Some("<nixpkgs/lib>"));
        assert_eq!(arg("./default.nix"), None);
        assert_eq!(arg("<>"), None);
        // Nothing that could inject an expression passes.
        assert_eq!(arg("<a> + (throw \"x\") + <b>"), None);
    }

    #[test]
    fn nixpkgs_mini_is_found_beside_an_installed_binary_first() {
        let tmp = tempfile::tempdir().unwrap();
        let set = tmp.path().join("share/kiln/nixpkgs-mini");
        std::fs::create_dir_all(&set).unwrap();
        std::fs::write(set.join("default.nix"), "{ }").unwrap();
        std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
        let exe = tmp.path().join("bin/kiln");
        let found = nixpkgs_mini_dir(Some(&exe)).unwrap();
        assert_eq!(found, std::fs::canonicalize(&set).unwrap());
        // Without one there, the checkout this kiln was built from.
        let elsewhere = tmp.path().join("nothing/bin/kiln");
        let found = nixpkgs_mini_dir(Some(&elsewhere)).unwrap();
        assert!(found.ends_with("nixpkgs-mini"), "{}", found.display());
        assert!(found.join("default.nix").is_file());
    }

    #[test]
    fn include_then_kiln_path_then_nix_path() {
        let cwd = std::path::Path::new("/work");
        let entries = search_path(
            &["nixpkgs=./mine".to_owned()],
            Some("kiln=/k".to_owned()),
            Some("nixpkgs=/n:/plain".to_owned()),
            cwd,
        );
        let expected = vec![
            SearchPathEntry::parse("nixpkgs=/work/mine", cwd),
            SearchPathEntry::parse("kiln=/k", cwd),
            SearchPathEntry::parse("nixpkgs=/n", cwd),
            SearchPathEntry::parse("/plain", cwd),
        ];
        assert_eq!(entries, expected);
    }
}
