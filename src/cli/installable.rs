//! Installables: from `FILE [-A ATTR]… [--arg/--argstr] [-I] [-E EXPR]` or
//! `.drv` paths to derivation paths. Shared by `kiln instantiate` and
//! `kiln build`.
//!
//! A FILE (a directory means its `default.nix`; none means
//! `./default.nix`) or `-E EXPR` is evaluated; a top-level function is
//! called with the `--arg`s it accepts. Each `-A` path (or the whole value)
//! is searched for derivations the way `nix-instantiate` does:
//!
//! - a derivation (a set with `type = "derivation"`) is taken;
//! - a set: each attribute in name order that is a derivation, and sets
//!   with `recurseForDerivations = true` searched in turn;
//! - a list: every element, searched in turn;
//! - anything else at the top is an error.
//!
//! A derivation value seen twice is taken once. Each one found is written
//! to the store (or only computed with `dry_run`), its `meta` recorded, and
//! returned with the output it names (`outputName`).

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context as _, anyhow};
use clap::Args;
use kiln_eval::{
    AutoArg, EvalOptions, EvalStore, Evaluation, KilnEvalStore, SearchPathEntry, Value,
};
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

/// One derivation found: its `.drv` path and the output the value named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instantiated {
    pub drv_path: String,
    pub output: String,
}

impl Instantiated {
    /// As `nix-instantiate` prints it: `DRV`, or `DRV!OUTPUT` when the
    /// output is not `out`.
    pub fn display(&self) -> String {
        if self.output == "out" {
            self.drv_path.clone()
        } else {
            format!("{}!{}", self.drv_path, self.output)
        }
    }
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
            (None, Some(file)) => session.eval_file(file)?,
            (None, None) => session.eval_file(std::path::Path::new("default.nix"))?,
        };
        let attr_paths: Vec<&str> = if self.attrs.is_empty() {
            vec![""]
        } else {
            self.attrs.iter().map(String::as_str).collect()
        };
        let mut finder = Finder::default();
        for attr_path in attr_paths {
            let value = session.select_path(root.clone(), attr_path, &self.auto_args)?;
            finder.search(session, &value, &self.auto_args, true)?;
        }
        let mut out = Vec::new();
        for drv in finder.found {
            out.push(instantiate_one(session, &drv)?);
        }
        Ok(out)
    }
}

/// Collects derivation values as `nix-instantiate` does.
#[derive(Default)]
struct Finder {
    found: Vec<kiln_eval::value::Attrs>,
    seen: std::collections::HashSet<usize>,
}

impl Finder {
    fn search(
        &mut self,
        session: &mut Evaluation,
        value: &Value,
        auto_args: &[(String, AutoArg)],
        top: bool,
    ) -> kiln_eval::EvalResult<()> {
        let value = session.auto_call(value.clone(), auto_args)?;
        let m = session.machine();
        let value = m.force(&value)?;
        match &value {
            Value::Attrs(attrs) => {
                if self.take_if_derivation(session, attrs)? {
                    return Ok(());
                }
                for (name, item) in attrs.sorted() {
                    if !is_plain_attr_name(name.as_str()) {
                        continue;
                    }
                    let item = session.machine().force(item)?;
                    let Value::Attrs(inner) = &item else {
                        continue;
                    };
                    if self.take_if_derivation(session, inner)? {
                        continue;
                    }
                    if let Some(flag) = inner.get_str("recurseForDerivations").cloned()
                        && session.machine().force_bool(&flag)?
                    {
                        self.search(session, &item, auto_args, false)?;
                    }
                }
                Ok(())
            }
            Value::List(items) => {
                for item in items.iter() {
                    self.search(session, item, auto_args, false)?;
                }
                Ok(())
            }
            other => Err(kiln_eval::EvalError::new(
                kiln_eval::ErrorKind::InvalidValue(format!(
                    "expression does not evaluate to a derivation (or a set or list of those){}: it is {}",
                    if top { "" } else { " (inside)" },
                    other.type_description()
                )),
                None,
            )),
        }
    }

    /// Take `attrs` if it is a derivation; true if it was one.
    fn take_if_derivation(
        &mut self,
        session: &mut Evaluation,
        attrs: &kiln_eval::value::Attrs,
    ) -> kiln_eval::EvalResult<bool> {
        let Some(kind) = attrs.get_str("type").cloned() else {
            return Ok(false);
        };
        let kind = session.machine().force(&kind)?;
        if !matches!(&kind, Value::String(s) if s.as_str() == "derivation") {
            return Ok(false);
        }
        if self.seen.insert(attrs.addr()) {
            self.found.push(attrs.clone());
        }
        Ok(true)
    }
}

/// Nix only looks at attributes whose names look like identifiers.
fn is_plain_attr_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '\''))
}

/// Force a derivation's `drvPath` (which writes it) and record its `meta`.
fn instantiate_one(
    session: &mut Evaluation,
    drv: &kiln_eval::value::Attrs,
) -> kiln_eval::EvalResult<Instantiated> {
    let m = session.machine();
    let drv_value = drv
        .get_str("drvPath")
        .cloned()
        .ok_or_else(|| missing("drvPath"))?;
    let drv_path = m.force_string(&drv_value)?.as_str().to_owned();
    let output = match drv.get_str("outputName").cloned() {
        Some(v) => m.force_string(&v)?.as_str().to_owned(),
        None => "out".to_owned(),
    };
    if let Some(meta) = drv.get_str("meta").cloned()
        && let Ok(Value::Attrs(meta)) = m.force(&meta)
    {
        let name = match drv.get_str("name").cloned().map(|n| m.force(&n)) {
            Some(Ok(Value::String(s))) => s.as_str().to_owned(),
            _ => String::new(),
        };
        let json = kiln_eval::builtins::derivation::meta_json(m, &meta, &name);
        let store = m.store().clone();
        store.set_derivation_meta(&drv_path, &json)?;
    }
    Ok(Instantiated { drv_path, output })
}

fn missing(name: &str) -> kiln_eval::EvalError {
    kiln_eval::EvalError::new(
        kiln_eval::ErrorKind::MissingAttribute {
            name: name.to_owned(),
            suggestions: Vec::new(),
        },
        None,
    )
}

/// Evaluation options for the current directory: the search path is the
/// `-I` entries, then those of `KILN_PATH`, then those of `NIX_PATH` (as
/// Nix puts `-I` before `NIX_PATH`), so `<nixpkgs>` resolves where a Nix
/// user has it; `--show-trace` chooses the long error trace.
pub fn eval_options(global: &GlobalOpts, include: &[String]) -> anyhow::Result<EvalOptions> {
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let env = |name: &str| std::env::var(name).ok();
    Ok(EvalOptions {
        search_path: search_path(include, env("KILN_PATH"), env("NIX_PATH"), &cwd),
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

#[cfg(test)]
mod tests {
    use super::*;

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
