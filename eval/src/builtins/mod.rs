//! The builtins: one table, one file per family.
//!
//! # Adding a builtin
//!
//! 1. Pick the family file (below) and write a function with the signature
//!    [`BuiltinFn`]: `fn(m: &mut Machine, args: &[Value]) -> EvalResult<Value>`.
//!    `args` has exactly `arity` values, **not yet forced** (they may be
//!    thunks): force what you need with `m.force(&args[i])` or the typed
//!    helpers `m.force_int`, `m.force_string`, `m.force_attrs`,
//!    `m.force_list`, `m.force_bool`, `m.force_function`; call functions with
//!    `m.call_with(&f, &[x])`; coerce with
//!    `m.coerce_to_string(&v, Coercion::ToString)`. Keep results lazy where
//!    Nix does (`map` builds `Thunk::apply(f, x)` elements, it does not call
//!    `f`). Return errors as `EvalError::new(ErrorKind::…, None)` (or
//!    `crate::error::fail`): the machine adds the call's position and a
//!    "while calling the builtin" line. Strings you build from other strings
//!    must keep their context: use `StringBuilder::push`.
//! 2. Add `Builtin { name: "yourName", arity: N, func: your_fn }` to the
//!    family's `pub const BUILTINS: &[Builtin]` table.
//! 3. If Nix exposes it without the `builtins.` prefix, its name is in
//!    [`GLOBAL_NAMES`] (the lang crate's list of Nix 2.8's plain global
//!    names) already. Every other builtin is reachable as `__name`.
//! 4. Write a test in the family file (see `tests` there: `eval_str` runs
//!    an expression and returns the printed result) and a line in
//!    `docs/language.md`.
//!
//! A new family file is registered by adding it to [`FAMILIES`].
//!
//! # Families and owners
//!
//! - `control.rs` (throw, abort, seq, tryEval, import, …): evaluator engineer
//! - `types.rs` (isX, typeOf): evaluator engineer
//! - `arith.rs` (add, sub, bit ops, floor, …): evaluator engineer
//! - `attrs.rs` (attrNames, mapAttrs, listToAttrs, …): evaluator engineer
//! - `lists.rs` (map, filter, foldl', sort, genList, …): evaluator engineer
//! - `strings.rs` (substring, replaceStrings, split, match, versions, …):
//!   evaluator engineer
//! - `json.rs`, `io.rs`, `hash.rs`, `context.rs`: evaluator engineer
//! - `derivation.rs` (derivationStrict), `derivation_wrapper.rs` (the lazy
//!   `derivation` around it),
//!   `store_paths.rs` (path, filterSource, toFile, placeholder, storePath):
//!   derivations engineer (issue 4)
//! - `toml.rs` (fromTOML): evaluator engineer
//! - constants (`currentSystem`, `nixVersion`, `langVersion`, …): this file

pub mod arith;
pub mod attrs;
pub mod context;
pub mod control;
pub mod derivation;
pub mod derivation_wrapper;
pub mod hash;
pub mod io;
pub mod json;
pub mod lists;
pub mod store_paths;
pub mod strings;
pub mod toml;
pub mod types;

use std::rc::Rc;

use crate::error::EvalResult;
use crate::machine::Machine;
use crate::symbol::Symbol;
use crate::value::{Attrs, List, PrimOpApp, Thunk, ThunkState, Value};

/// A builtin's implementation: `args.len()` equals the arity; arguments
/// are unforced.
pub type BuiltinFn = fn(&mut Machine, &[Value]) -> EvalResult<Value>;

/// One builtin function.
#[derive(Debug)]
pub struct Builtin {
    /// The name in `builtins` (without `__`).
    pub name: &'static str,
    /// How many arguments it takes before it runs (at least 1).
    pub arity: usize,
    pub func: BuiltinFn,
}

/// Every family's table.
pub const FAMILIES: &[&[Builtin]] = &[
    control::BUILTINS,
    types::BUILTINS,
    arith::BUILTINS,
    attrs::BUILTINS,
    lists::BUILTINS,
    json::BUILTINS,
    strings::BUILTINS,
    io::BUILTINS,
    hash::BUILTINS,
    context::BUILTINS,
    toml::BUILTINS,
    derivation::BUILTINS,
    derivation_wrapper::BUILTINS,
    store_paths::BUILTINS,
];

/// Names visible without `builtins.`; every other builtin is visible as
/// `__name` instead (as in Nix 2.8, a name is never visible both ways).
/// The one list is the lang crate's (Nix 2.8's plain global names); those
/// kiln does not define (the fetchers) stay undefined.
pub use kiln_lang::scope::PLAIN_GLOBALS as GLOBAL_NAMES;

/// The value of a builtin with no arguments applied yet.
pub fn primop(builtin: &'static Builtin) -> Value {
    Value::PrimOp(Rc::new(PrimOpApp {
        builtin,
        args: Vec::new(),
    }))
}

/// Find a builtin by name.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    FAMILIES
        .iter()
        .flat_map(|family| family.iter())
        .find(|b| b.name == name)
}

/// Values that are not functions.
fn constants(m: &Machine) -> Vec<(&'static str, Value)> {
    let nix_path: Vec<Value> = m
        .search_path
        .iter()
        .map(|entry| {
            Value::Attrs(Attrs::from_entries(vec![
                (Symbol::intern("path"), Value::string(entry.path.as_str())),
                (
                    Symbol::intern("prefix"),
                    Value::string(entry.prefix.as_str()),
                ),
            ]))
        })
        .collect();
    vec![
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("null", Value::Null),
        (
            "currentSystem",
            Value::string(m.options.current_system.as_str()),
        ),
        // The language level kiln implements: Nix 2.8's.
        ("nixVersion", Value::string("2.8.0")),
        ("langVersion", Value::Int(6)),
        ("storeDir", Value::string(m.store.store_dir())),
        ("nixPath", Value::List(List::new(nix_path))),
        ("currentTime", io::current_time()),
    ]
}

/// Build the `builtins` set (which contains itself as `builtins`).
pub(crate) fn builtins_set(m: &Machine) -> Attrs {
    let mut entries: Vec<(Symbol, Value)> = Vec::new();
    for family in FAMILIES {
        for builtin in family.iter() {
            entries.push((Symbol::intern(builtin.name), primop(builtin)));
        }
    }
    for (name, value) in constants(m) {
        entries.push((Symbol::intern(name), value));
    }
    let itself = Thunk::uninit();
    entries.push((Symbol::intern("builtins"), Value::Thunk(itself.clone())));
    let attrs = Attrs::from_entries(entries);
    *itself.0.borrow_mut() = ThunkState::Done(Value::Attrs(attrs.clone()));
    attrs
}

/// The names of the global scope and their values: the global names, and
/// `__name` for every other builtin (`__nixPath`, `__currentSystem`, …).
pub(crate) fn global_scope(m: &Machine) -> Vec<(Symbol, Value)> {
    let mut out = Vec::new();
    for (name, value) in m.builtins.iter() {
        let text = name.as_str();
        if text == "builtins" {
            out.push((name, Value::Attrs(m.builtins.clone())));
            continue;
        }
        if GLOBAL_NAMES.contains(&text) {
            out.push((name, value.clone()));
        } else if !text.starts_with("__") {
            out.push((Symbol::intern(&format!("__{text}")), value.clone()));
        } else {
            out.push((name, value.clone()));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for builtin tests.

    #[test]
    fn the_global_scope_is_nix_2_8s() {
        // Checked against `nix-instantiate --eval` 2.8: plain names for
        // the global ones, `__` for the others, never both.
        for visible in [
            "derivationStrict",
            "map",
            "toString",
            "__add",
            "__filter",
            "fromTOML",
        ] {
            assert!(
                eval_str(&format!("let x = {visible}; in 1")).is_ok(),
                "{visible}"
            );
        }
        for hidden in [
            "__map",
            "__derivation",
            "__toString",
            "__true",
            "add",
            "filter",
        ] {
            assert!(
                eval_str(&format!("let x = {hidden}; in 1")).is_err(),
                "{hidden}"
            );
        }
    }

    /// Evaluate `expr` strictly and print it as `nix-instantiate --eval
    /// --strict` would; errors are returned as their message.
    pub fn eval_str(expr: &str) -> Result<String, String> {
        let expr = expr.to_owned();
        crate::run_with_big_stack(move || {
            crate::Evaluation::new(crate::EvalOptions::default())
                .eval_source(&expr, None, true)
                .map(|(text, _)| text)
                .map_err(|e| e.to_string())
        })
    }
}
