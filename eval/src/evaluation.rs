//! The entry point for callers: evaluate a file or expression, apply
//! `--arg`s and an attribute path, and render the result or an error.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval_io::EvalIO;
use crate::machine::Machine;
use crate::options::EvalOptions;
use crate::store::{EvalStore, MemoryStore, StoreError};
use crate::symbol::Symbol;
use crate::value::{Attrs, Value};

/// How to print a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// As `nix-instantiate --eval` prints.
    Nix,
    Json,
    Xml,
    /// The value coerced to a string (as `"${v}"`), printed as is: `nix
    /// eval --raw`.
    Raw,
}

/// A `--arg NAME EXPR` or `--argstr NAME STRING` value.
#[derive(Debug, Clone)]
pub enum AutoArg {
    Expr(String),
    Str(String),
}

/// A failed evaluation as it leaves the evaluation thread (values and
/// spans cannot): rendered for a person, with the store error that caused
/// it, if one did, as its source. The CLI prints `rendered` as it is and
/// picks the exit code from the source.
#[derive(Debug)]
pub struct EvalFailure {
    /// The diagnostic: `error: …`, source lines, trace; ends in a newline.
    pub rendered: String,
    pub store: Option<Arc<StoreError>>,
}

impl std::fmt::Display for EvalFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.rendered.trim_end())
    }
}

impl std::error::Error for EvalFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.store
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// One evaluation session (one thread; see [`crate::run_with_big_stack`]).
pub struct Evaluation {
    machine: Machine,
}

impl Evaluation {
    /// An evaluation with an in-memory store under `/kiln/store`.
    pub fn new(options: EvalOptions) -> Evaluation {
        Evaluation::with_store(options, Rc::new(MemoryStore::new("/kiln/store")))
    }

    pub fn with_store(options: EvalOptions, store: Rc<dyn EvalStore>) -> Evaluation {
        Evaluation {
            machine: Machine::new(options, store),
        }
    }

    /// Let every file access of this evaluation go through `io` (from
    /// now on; an evaluation starts with the real file system).
    pub fn set_io(&mut self, io: Rc<dyn EvalIO>) {
        self.machine.io = io;
    }

    /// Every path this evaluation read, stat'ed, listed or added to the
    /// store, in order, once (see [`crate::eval_io`]).
    pub fn accessed_paths(&self) -> Vec<std::path::PathBuf> {
        self.machine.io.accessed()
    }

    /// Whether a free variable `name` is defined: in the global scope the
    /// compiler resolves names against, or `__curPos`. For checking a
    /// parse the way evaluation will (`kiln parse`).
    pub fn is_global(&self, name: &str) -> bool {
        name == "__curPos" || self.machine.globals.contains_key(&Symbol::intern(name))
    }

    pub fn machine(&mut self) -> &mut Machine {
        &mut self.machine
    }

    /// End the session for a process about to exit: the store is let go
    /// (so the caller can close it properly), but the values are not
    /// freed one by one: that is a few percent of a large evaluation, and
    /// the exit gives the memory back at once.
    pub fn end_without_freeing(self) {
        let mut machine = self.machine;
        machine.store = Rc::new(MemoryStore::new("/kiln/store"));
        std::mem::forget(machine);
    }

    /// Evaluate a file (a directory means its `default.nix`).
    pub fn eval_file(&mut self, path: &Path) -> EvalResult<Value> {
        let path = if path.is_absolute() {
            crate::path::normalise(&path.display().to_string())
        } else {
            crate::path::resolve(&self.machine.options.base_dir, &path.display().to_string())
        };
        self.machine.import_path(&path)
    }

    /// Evaluate expression text; relative paths resolve against the base
    /// directory of the options (the current directory).
    pub fn eval_expr(&mut self, text: &str) -> EvalResult<Value> {
        let base = self.machine.options.base_dir.clone();
        self.machine
            .eval_text("«string»".to_owned(), None, text.to_owned(), &base, None)
    }

    /// Evaluate expression text with the names of `scope` bound as
    /// variables (they shadow the globals), as the REPL does with its
    /// session's names. With `lazy`, nothing is evaluated: the result is
    /// a thunk of the text (the REPL's `x = …` binds without evaluating),
    /// though a syntax error or an undefined name is reported at once.
    pub fn eval_in_scope(&mut self, text: &str, scope: &Attrs, lazy: bool) -> EvalResult<Value> {
        let base = self.machine.options.base_dir.clone();
        let (names, values): (Vec<Symbol>, smallvec::SmallVec<[Value; 2]>) =
            scope.iter().map(|(n, v)| (n, v.clone())).unzip();
        let code = self.machine.compile_text(
            "«string»".to_owned(),
            None,
            text.to_owned(),
            &base,
            names,
        )?;
        let env = crate::env::Env::new(values, None);
        if lazy {
            return Ok(Value::Thunk(crate::value::Thunk::suspended(code, env)));
        }
        let value = self.machine.eval(&code, &env)?;
        self.machine.force(&value)
    }

    /// Whether errors are rendered with the full trace (`--show-trace`).
    pub fn show_trace(&self) -> bool {
        self.machine.options.show_trace
    }

    pub fn set_show_trace(&mut self, on: bool) {
        self.machine.options.show_trace = on;
    }

    /// Nix's `autoCallFunction`: if `v` is a function taking a set, call it
    /// with the `--arg`s it accepts (all of them if it has `...`); a
    /// missing argument without a default is an error. Sets with
    /// `__functor` are called through it.
    pub fn auto_call(&mut self, v: Value, args: &[(String, AutoArg)]) -> EvalResult<Value> {
        let m = &mut self.machine;
        let v = m.force(&v)?;
        if let Value::Attrs(attrs) = &v
            && let Some(functor) = attrs.get(m.sym.functor)
        {
            let functor = m.force(&functor.clone())?;
            let inner = m.call(functor, v.clone(), None)?;
            return self.auto_call(inner, args);
        }
        let Value::Lambda(closure) = &v else {
            return Ok(v);
        };
        let crate::compile::ir::Param::Formals {
            formals, ellipsis, ..
        } = &closure.code.param
        else {
            return Ok(v);
        };
        let mut entries = Vec::new();
        for (name, arg) in args {
            let sym = Symbol::intern(name);
            if *ellipsis || formals.iter().any(|f| f.name == sym) {
                entries.push((sym, self.auto_arg_value(arg)?));
            }
        }
        let m = &mut self.machine;
        m.call(v.clone(), Value::Attrs(Attrs::from_entries(entries)), None)
    }

    fn auto_arg_value(&mut self, arg: &AutoArg) -> EvalResult<Value> {
        match arg {
            AutoArg::Str(s) => Ok(Value::string(s.as_str())),
            AutoArg::Expr(text) => self.eval_expr(text),
        }
    }

    /// Follow an attribute path like `a.b.0.c` (numbers index lists),
    /// auto-calling functions along the way as `nix-instantiate -A` does.
    /// The value reached is not called: `nix-instantiate --eval` calls it
    /// only when `--arg`s are given, instantiation always does.
    pub fn select_path(
        &mut self,
        root: Value,
        attr_path: &str,
        args: &[(String, AutoArg)],
    ) -> EvalResult<Value> {
        let mut v = root;
        for part in split_attr_path(attr_path) {
            v = self.auto_call(v, args)?;
            let m = &mut self.machine;
            let forced = m.force(&v)?;
            v = match (&forced, part.parse::<usize>()) {
                (Value::List(items), Ok(i)) => items.get(i).cloned().ok_or_else(|| {
                    EvalError::new(
                        ErrorKind::InvalidValue(format!(
                            "list index {i} in selection path '{attr_path}' is out of range"
                        )),
                        None,
                    )
                })?,
                (Value::Attrs(attrs), _) => match attrs.get_str(&part) {
                    Some(found) => found.clone(),
                    None => {
                        return Err(EvalError::new(
                            ErrorKind::MissingInSelectionPath {
                                suggestions: crate::error::closest_names(
                                    &part,
                                    attrs.iter().map(|(n, _)| n.as_str()),
                                ),
                                name: part,
                                path: attr_path.to_owned(),
                            },
                            None,
                        ));
                    }
                },
                (other, _) => {
                    return Err(crate::machine::type_error("a set", other)
                        .context(format!("while selecting '{attr_path}'"), None));
                }
            };
        }
        Ok(v)
    }

    /// Render a value as text; `strict` forces it deeply first (as
    /// `--strict`). Strings that are not UTF-8 come out lossy here:
    /// [`Evaluation::render_bytes`] gives the bytes Nix prints.
    pub fn render(&mut self, v: &Value, format: OutputFormat, strict: bool) -> EvalResult<String> {
        self.render_bytes(v, format, strict)
            .map(|bytes| match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })
    }

    /// Render a value, byte for byte as Nix prints it (strings are bytes).
    pub fn render_bytes(
        &mut self,
        v: &Value,
        format: OutputFormat,
        strict: bool,
    ) -> EvalResult<Vec<u8>> {
        let m = &mut self.machine;
        match format {
            OutputFormat::Nix => {
                let v = m.force(v)?;
                if strict {
                    m.deep_force(&v)?;
                }
                crate::print::print_value_bytes(m, &v, strict)
            }
            OutputFormat::Json => {
                let mut context = crate::value::Context::new();
                crate::builtins::json::to_json(m, v, &mut context)
            }
            OutputFormat::Xml => crate::xml::to_xml_bytes(m, v),
            OutputFormat::Raw => m
                .coerce_to_string(v, crate::coerce::Coercion::Interpolate)
                .map(|s| s.as_bytes().to_vec()),
        }
    }

    /// Parse `text` (with the check for undefined variables) without
    /// evaluating it.
    pub fn check_syntax(&mut self, text: &str, path: &Path) -> EvalResult<()> {
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.machine
            .compile_text(
                path.display().to_string(),
                Some(path.to_path_buf()),
                text.to_owned(),
                &base,
                Vec::new(),
            )
            .map(drop)
    }

    /// An error with its position, source line and trace, as text: the
    /// full trace with the `show_trace` option, the short one otherwise.
    pub fn render_error(&self, err: &EvalError) -> String {
        crate::render::render_error(&self.machine.sources, err, self.machine.options.show_trace)
    }

    /// `err` as it leaves the evaluation thread: rendered, with the store
    /// error that caused it.
    pub fn failure(&self, err: &EvalError) -> EvalFailure {
        EvalFailure {
            rendered: self.render_error(err),
            store: match err.kind() {
                ErrorKind::Store(failure) => Some(failure.0.clone()),
                _ => None,
            },
        }
    }

    /// Evaluate text and print it the `nix-instantiate --eval` way; for
    /// tests.
    pub fn eval_source(
        &mut self,
        text: &str,
        path: Option<&Path>,
        strict: bool,
    ) -> EvalResult<(String, Value)> {
        let v = match path {
            Some(p) => self.eval_file(p)?,
            None => self.eval_expr(text)?,
        };
        let printed = self.render(&v, OutputFormat::Nix, strict)?;
        Ok((printed, v))
    }
}

/// Split `a.b."c.d".e` into its parts.
fn split_attr_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    if !current.is_empty() || !parts.is_empty() {
        parts.push(current);
    }
    parts.retain(|p| !p.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_paths_split_with_quotes() {
        assert_eq!(split_attr_path("a.b.0"), ["a", "b", "0"]);
        assert_eq!(split_attr_path("a.\"x.y\""), ["a", "x.y"]);
        assert!(split_attr_path("").is_empty());
    }

    #[test]
    fn a_scope_binds_names_and_lazy_defers_evaluation() {
        let mut session = Evaluation::new(EvalOptions::default());
        let scope = Attrs::from_entries(vec![
            (Symbol::intern("x"), Value::Int(2)),
            (Symbol::intern("map"), Value::Int(5)),
        ]);
        let v = session.eval_in_scope("x * map", &scope, false).unwrap();
        assert!(matches!(v, Value::Int(10)), "{v:?}");
        // Lazy: a throw is not reached until forced.
        let v = session
            .eval_in_scope("throw \"later\"", &scope, true)
            .unwrap();
        assert!(matches!(v, Value::Thunk(_)));
        assert!(session.machine().force(&v).is_err());
        // Undefined names are found without evaluating.
        assert!(session.eval_in_scope("y", &scope, true).is_err());
    }

    #[test]
    fn ending_without_freeing_still_lets_the_store_go() {
        let store = Rc::new(MemoryStore::new("/kiln/store"));
        let mut session = Evaluation::with_store(EvalOptions::default(), store.clone());
        session
            .eval_expr("builtins.toFile \"x\" \"y\"")
            .expect("eval");
        assert!(Rc::strong_count(&store) > 1);
        session.end_without_freeing();
        // Only the caller holds it now: dropping it closes the store.
        assert_eq!(Rc::strong_count(&store), 1);
    }
}
