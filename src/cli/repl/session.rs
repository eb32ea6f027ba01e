//! One REPL session: the evaluator, the names in scope, the files loaded,
//! and what each piece of input does. Output goes to stdout, errors to
//! stderr; an error never ends the session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::anyhow;
use clap::{Args, FromArgMatches};
use kiln_eval::value::Attrs;
use kiln_eval::{AutoArg, EvalOptions, EvalResult, EvalStore, Evaluation, KilnEvalStore, Value};

use super::input::{Input, classify};
use super::print::print;
use crate::cli::GlobalOpts;
use crate::{output, say};

/// What to do after a piece of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

pub const HELP: &str = "\
The following commands are available:

  <expr>        Evaluate and print expression
  <x> = <expr>  Bind expression to variable
  :a <expr>     Add attributes from resulting set to scope
  :b <expr>     Build derivation
  :l <path>     Load Nix expression and add it to scope
  :log <expr>   Show logs for a derivation
  :p <expr>     Evaluate and print expression recursively
  :q            Exit the REPL
  :r            Reload all files
  :t <expr>     Describe result of evaluation
  :te [bool]    Enable, disable or toggle showing traces for errors
  :?            Show this help
";

/// Everything the session needs to start (and restart for `:r`).
pub struct Setup {
    pub global: GlobalOpts,
    pub options: EvalOptions,
    pub auto_args: Vec<(String, AutoArg)>,
    /// Colour the values (stdout is a terminal).
    pub colour: bool,
}

pub struct Session {
    setup: Setup,
    eval: Evaluation,
    store: Rc<KilnEvalStore>,
    /// Whether `.drv` files are written (`:b` needs it).
    writing: bool,
    scope: BTreeMap<String, Value>,
    /// Files given with `:l` (and on the command line), for `:r`.
    loaded: Vec<PathBuf>,
}

impl Session {
    pub fn new(setup: Setup) -> Session {
        let (store, writing) = open_store(&setup.global);
        let eval = Evaluation::with_store(setup.options.clone(), store.clone());
        Session {
            setup,
            eval,
            store,
            writing,
            scope: BTreeMap::new(),
            loaded: Vec::new(),
        }
    }

    /// The names in scope, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scope.keys().map(String::as_str)
    }

    /// Run one complete piece of input.
    pub fn handle(&mut self, text: &str) -> Flow {
        let flow = match self.dispatch(text) {
            Ok(flow) => flow,
            Err(Failure::Eval(rendered)) => {
                output::stderr(format_args!("{rendered}"));
                Flow::Continue
            }
            Err(Failure::Other(err)) => {
                say!("error: {}", crate::exit::render_chain(&err));
                Flow::Continue
            }
        };
        // What evaluation wrote (.drv files) becomes valid after each input.
        if let Err(err) = self.store.flush() {
            say!("error: writing to the store: {err}");
        }
        if output::closed() { Flow::Quit } else { flow }
    }

    fn dispatch(&mut self, text: &str) -> Result<Flow, Failure> {
        match classify(text) {
            Input::Empty => {}
            Input::Bind(name, expr) => {
                let value = self.eval_lazily(expr)?;
                self.scope.insert(name.to_owned(), value);
            }
            Input::Expr(expr) => {
                let value = self.evaluate(expr)?;
                self.show(&value, 1)?;
            }
            Input::Command(name, arg) => return self.command(name, arg),
        }
        Ok(Flow::Continue)
    }

    fn command(&mut self, name: &str, arg: &str) -> Result<Flow, Failure> {
        match name {
            "?" | "help" => out(HELP)?,
            "q" | "quit" => return Ok(Flow::Quit),
            "a" | "add" => {
                let value = self.evaluate(need(name, arg)?)?;
                self.add_to_scope(&value)?;
            }
            "l" | "load" => {
                let path = self.load(need(name, arg)?)?;
                self.loaded.push(path);
            }
            "r" | "reload" => self.reload()?,
            "p" | "print" => {
                let value = self.evaluate(need(name, arg)?)?;
                self.show(&value, usize::MAX)?;
            }
            "t" | "type" => {
                let value = self.evaluate(need(name, arg)?)?;
                out(&format!("{}\n", value.type_description()))?;
            }
            "b" | "build" => {
                let drv = self.drv_path(need(name, arg)?)?;
                build(&self.setup.global, &drv)?;
            }
            "log" => {
                let drv = self.drv_path(need(name, arg)?)?;
                let args = crate::cli::log::LogArgs {
                    installables: vec![drv],
                    attrs: Vec::new(),
                    source: Default::default(),
                };
                crate::cli::log::run(&self.setup.global, &args)?;
            }
            "te" => {
                let on = match arg {
                    "" => !self.eval.show_trace(),
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(Failure::Other(anyhow!(
                            "':te' takes 'true', 'false' or nothing, not '{other}'"
                        )));
                    }
                };
                self.eval.set_show_trace(on);
                out(&format!(
                    "showing error traces is {}\n",
                    if on { "on" } else { "off" }
                ))?;
            }
            other => {
                return Err(Failure::Other(anyhow!(
                    "unknown command ':{other}' (':?' lists the commands)"
                )));
            }
        }
        Ok(Flow::Continue)
    }

    fn scope_attrs(&self) -> Attrs {
        Attrs::from_entries(
            self.scope
                .iter()
                .map(|(name, value)| (kiln_eval::symbol::Symbol::intern(name), value.clone()))
                .collect(),
        )
    }

    /// Evaluate `expr` in the session's scope.
    pub fn evaluate(&mut self, expr: &str) -> Result<Value, Failure> {
        let scope = self.scope_attrs();
        let result = self.eval.eval_in_scope(expr, &scope, false);
        self.eval_result(result)
    }

    fn eval_lazily(&mut self, expr: &str) -> Result<Value, Failure> {
        let scope = self.scope_attrs();
        let result = self.eval.eval_in_scope(expr, &scope, true);
        self.eval_result(result)
    }

    fn eval_result<T>(&self, result: EvalResult<T>) -> Result<T, Failure> {
        result.map_err(|err| Failure::Eval(self.eval.render_error(&err)))
    }

    fn show(&mut self, value: &Value, depth: usize) -> Result<(), Failure> {
        let colour = self.setup.colour;
        let result = print(self.eval.machine(), value, depth, colour);
        let text = self.eval_result(result)?;
        out(&format!("{text}\n"))
    }

    /// Put every attribute of the set `value` in scope.
    fn add_to_scope(&mut self, value: &Value) -> Result<(), Failure> {
        let forced = self.eval.machine().force_attrs(value);
        let attrs = self.eval_result(forced)?;
        for (name, item) in attrs.iter() {
            self.scope.insert(name.as_str().to_owned(), item.clone());
        }
        out(&format!("Added {} variables.\n", attrs.len()))
    }

    /// `:l`: evaluate a file (or `<name>` from the search path), call it
    /// with the `--arg`s if it is a function, add its attributes.
    fn load(&mut self, arg: &str) -> Result<PathBuf, Failure> {
        let path = if arg.starts_with('<') {
            let found = self.eval.eval_expr(arg);
            match self.eval_result(found)? {
                Value::Path(path) => path.as_ref().clone(),
                other => {
                    return Err(Failure::Other(anyhow!(
                        "{arg} is {}, not a path",
                        other.type_description()
                    )));
                }
            }
        } else {
            std::path::absolute(Path::new(arg))
                .map_err(|e| Failure::Other(anyhow!("{arg}: {e}")))?
        };
        let value = self.eval.eval_file(&path);
        let value = self.eval_result(value)?;
        let auto_args = self.setup.auto_args.clone();
        let called = self.eval.auto_call(value, &auto_args);
        let value = self.eval_result(called)?;
        self.add_to_scope(&value)?;
        Ok(path)
    }

    /// `:r`: a fresh evaluator (so files are read again), the scope
    /// emptied, and the loaded files loaded again.
    fn reload(&mut self) -> Result<(), Failure> {
        self.eval = Evaluation::with_store(self.setup.options.clone(), self.store.clone());
        self.eval.set_show_trace(self.setup.options.show_trace);
        self.scope.clear();
        for path in self.loaded.clone() {
            self.load(&path.display().to_string())?;
        }
        Ok(())
    }

    /// The `.drv` path of the derivation `expr` evaluates to, written to
    /// the store.
    fn drv_path(&mut self, expr: &str) -> Result<String, Failure> {
        if !self.writing {
            return Err(Failure::Other(anyhow!(
                "the store could not be opened for writing, so derivations cannot be built here"
            )));
        }
        let value = self.evaluate(expr)?;
        let Value::Attrs(attrs) = &value else {
            return Err(not_a_derivation(&value));
        };
        let is_drv = kiln_eval::ops::is_derivation(self.eval.machine(), attrs);
        if !self.eval_result(is_drv)? {
            return Err(not_a_derivation(&value));
        }
        let path = attrs
            .get_str("drvPath")
            .cloned()
            .ok_or_else(|| Failure::Other(anyhow!("the derivation has no drvPath attribute")))?;
        let path = self.eval.machine().force_string(&path);
        let path = self.eval_result(path)?.as_str().to_owned();
        self.store
            .flush()
            .map_err(|e| Failure::Other(anyhow!("writing to the store: {e}")))?;
        Ok(path)
    }

    /// Put the session's values aside without freeing them one by one:
    /// the process is about to end.
    pub fn end(self) {
        self.eval.end_without_freeing();
        std::mem::forget(self.scope);
    }
}

/// Why a piece of input failed.
pub enum Failure {
    /// An evaluation error, rendered with its source line and trace.
    Eval(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Failure {
        Failure::Other(err)
    }
}

fn not_a_derivation(value: &Value) -> Failure {
    Failure::Other(anyhow!(
        "expected a derivation, but the value is {}",
        value.type_description()
    ))
}

fn need<'a>(name: &str, arg: &'a str) -> Result<&'a str, Failure> {
    if arg.is_empty() {
        let what = if super::input::takes_expr(name) {
            "an expression"
        } else {
            "a path"
        };
        return Err(Failure::Other(anyhow!(":{name} needs {what}")));
    }
    Ok(arg)
}

fn out(text: &str) -> Result<(), Failure> {
    output::stdout(text.as_bytes()).map_err(|e| Failure::Other(e.into()))
}

/// A store the evaluator writes to, or a dry-run one if it cannot be
/// opened (a store owned by someone else): evaluation still works.
fn open_store(global: &GlobalOpts) -> (Rc<KilnEvalStore>, bool) {
    let opened = crate::cli::config::open_store(global);
    match opened {
        Ok(store) => (Rc::new(KilnEvalStore::writing(store)), true),
        Err(err) => {
            say!(
                "warning: {}; evaluating without writing to the store (:b is off)",
                crate::exit::render_chain(&err)
            );
            let dir = kiln_store::StoreDir::new(&global.store_dir)
                .unwrap_or_else(|_| kiln_store::StoreDir::new("/kiln/store").expect("valid"));
            (Rc::new(KilnEvalStore::dry_run(dir)), false)
        }
    }
}

/// `:b`: build as `kiln build DRV --no-out-link` does (the output paths
/// on stdout).
fn build(global: &GlobalOpts, drv: &str) -> anyhow::Result<()> {
    let command = crate::cli::build::BuildArgs::augment_args(clap::Command::new("build"));
    let matches = command.try_get_matches_from(["build", drv, "--no-out-link"])?;
    let args = crate::cli::build::BuildArgs::from_arg_matches(&matches)?;
    crate::cli::build::run(global, &args)?;
    Ok(())
}
