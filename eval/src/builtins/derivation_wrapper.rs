//! `derivation`: the lazy wrapper around `derivationStrict`, built natively.
//!
//! # What it reproduces
//!
//! Nix 2.8 defines `derivation` in the language (`derivation.nix`):
//!
//! ```nix
//! drvAttrs@{ outputs ? [ "out" ], ... }:
//! let
//!   strict = builtins.derivationStrict drvAttrs;
//!   commonAttrs = drvAttrs // (builtins.listToAttrs outputsList)
//!     // { all = map (x: x.value) outputsList; inherit drvAttrs; };
//!   outputToAttrListElement = outputName: {
//!     name = outputName;
//!     value = commonAttrs // {
//!       outPath = builtins.getAttr outputName strict;
//!       drvPath = strict.drvPath;
//!       type = "derivation";
//!       inherit outputName;
//!     };
//!   };
//!   outputsList = map outputToAttrListElement outputs;
//! in (builtins.head outputsList).value
//! ```
//!
//! so `derivation attrs` is, for each output `o` in `outputs` (default
//! `[ "out" ]`, without adding an `outputs` attribute), the set
//!
//! ```text
//! attrs // { <each output> = <its set>; } // { all = [ <the output sets> ]; drvAttrs = attrs; }
//!       // { outPath = strict.${o}; drvPath = strict.drvPath; type = "derivation"; outputName = o; }
//! ```
//!
//! and the value is the first output's set. When two outputs have the same
//! name the first one's set is the attribute (`listToAttrs`), both are in
//! `all`, and `derivationStrict` reports the duplicate once a path is
//! forced.
//!
//! # Laziness
//!
//! Evaluating `derivation attrs` forces `attrs` (a set), its `outputs` list
//! and each output name (a string without context: `listToAttrs` forces
//! them) and nothing else. `drvPath` and every `outPath` are thunks
//! `getAttr name strict` over one shared thunk `strict =
//! derivationStrict attrs`, so `(derivation { name = throw ""; }).type` is
//! `"derivation"` and the `.drv` is computed only when a path is forced.
//!
//! What is already evaluated is Nix's too (lazy printing shows it, e.g.
//! `all = <CODE>`): the first output's attribute is (`head` forced it);
//! `all`, its elements and the other outputs' attributes are thunks until
//! forced, and an element of `all` is the same thunk as its output's
//! attribute.
//!
//! # Why native
//!
//! Evaluating that code costs, per derivation, three `//` merges, a
//! `listToAttrs`, two `map`s, an environment frame per `let` and per call,
//! and a dozen thunks. Here the result is one merge of the sorted
//! attributes with a small sorted overlay, one copy of that vector per
//! further output, a thunk per output attribute, per path and per element
//! of `all`, and the list. The output sets refer to each other (`drv.out`
//! is `drv`, `drv.all` contains it) through those thunks: an `Rc` cycle,
//! as in Nix's heap (where its GC frees it; kiln leaks cycles by design).
//! Rebuilding the sets on demand instead would allocate more on every
//! access and lose `drv.out` being `drv`.
//!
//! The user's attributes keep their source positions
//! (`unsafeGetAttrPos`); the wrapper's own have none (in Nix they point
//! into `derivation.nix`).
//!
//! To the language `derivation` still looks like Nix's lambda: its
//! `typeOf` is `"lambda"`, `functionArgs` gives `{ outputs = true; }`, and
//! it prints and serialises to XML as that lambda (see [`is_derivation`]).

use std::cell::RefCell;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::Builtin;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::span::Span;
use crate::symbol::Symbol;
use crate::value::{Attrs, ContextElem, List, NixString, PrimOpApp, Thunk, ThunkState, Value};

pub const BUILTINS: &[Builtin] = &[Builtin {
    name: "derivation",
    arity: 1,
    func: derivation,
}];

/// Whether `app` is the `derivation` builtin itself (no argument given):
/// the places that show a function's shape use it to present `derivation`
/// as Nix's `drvAttrs@{ outputs ? [ "out" ], ... }: …`.
pub fn is_derivation(app: &PrimOpApp) -> bool {
    // By name: a `const` table may exist at several addresses.
    app.args.is_empty() && app.builtin.name == BUILTINS[0].name
}

/// The pattern of Nix's lambda: its `@` name, and its formals with whether
/// each has a default (`outputs ? [ "out" ]`).
pub const PATTERN_NAME: &str = "drvAttrs";
pub const PATTERN_FORMALS: &[(&str, bool)] = &[("outputs", true)];

/// Names and values every call uses, made once per thread.
struct Known {
    all: Symbol,
    drv_attrs: Symbol,
    drv_path: Symbol,
    out_path: Symbol,
    output_name: Symbol,
    type_: Symbol,
    outputs: Symbol,
    out_sym: Symbol,
    /// `"derivation"`, the value of `type`.
    derivation: Value,
    /// `"out"`, the default output.
    out: Value,
    /// `builtins.derivationStrict`.
    derivation_strict: Value,
    /// `builtins.getAttr name` for each name asked for so far (`drvPath`
    /// and the output names: a handful in any program).
    selectors: RefCell<FxHashMap<Symbol, Value>>,
}

impl Known {
    fn new() -> Known {
        Known {
            all: Symbol::intern("all"),
            drv_attrs: Symbol::intern("drvAttrs"),
            drv_path: Symbol::intern("drvPath"),
            out_path: Symbol::intern("outPath"),
            output_name: Symbol::intern("outputName"),
            type_: Symbol::intern("type"),
            outputs: Symbol::intern("outputs"),
            out_sym: Symbol::intern("out"),
            derivation: Value::string("derivation"),
            out: Value::String(NixString::from_symbol(Symbol::intern("out"))),
            derivation_strict: super::primop(builtin("derivationStrict")),
            selectors: RefCell::new(FxHashMap::default()),
        }
    }

    /// The partial application `builtins.getAttr name`.
    fn selector(&self, name: Symbol) -> Value {
        self.selectors
            .borrow_mut()
            .entry(name)
            .or_insert_with(|| {
                Value::PrimOp(Rc::new(PrimOpApp {
                    builtin: builtin("getAttr"),
                    args: vec![Value::String(NixString::from_symbol(name))],
                }))
            })
            .clone()
    }

    /// The lazy `builtins.getAttr name strict`.
    fn select(&self, name: Symbol, strict: &Value) -> Value {
        Value::Thunk(Thunk::apply(self.selector(name), strict.clone()))
    }
}

thread_local! {
    static KNOWN: Known = Known::new();
}

/// A builtin of the static table (present by construction: the tests
/// call `derivation`, so a rename is caught there).
fn builtin(name: &str) -> &'static Builtin {
    super::lookup(name).unwrap_or_else(|| panic!("the builtin '{name}' is missing"))
}

fn invalid(message: String) -> EvalError {
    EvalError::new(ErrorKind::InvalidValue(message), None)
}

/// One output: its name as a symbol and as the string value the user gave
/// (which becomes `outputName`).
type Output = (Symbol, Value);

/// Force `outputs` (or take the default) and each name, as
/// `map`/`head`/`listToAttrs` do in `derivation.nix`.
fn output_names(
    m: &mut Machine,
    attrs: &Attrs,
    known: &Known,
) -> EvalResult<SmallVec<[Output; 2]>> {
    let Some(outputs) = attrs.get(known.outputs) else {
        return Ok(smallvec::smallvec![(known.out_sym, known.out.clone())]);
    };
    let list = m.force_list(&outputs.clone()).map_err(|e| {
        e.context(
            "while evaluating the 'outputs' attribute of a derivation",
            None,
        )
    })?;
    if list.is_empty() {
        // Where `builtins.head` fails in `derivation.nix`.
        return Err(invalid(
            "list index 0 is out of bounds: a derivation's 'outputs' list is empty".to_owned(),
        ));
    }
    let mut names = SmallVec::with_capacity(list.len());
    for item in list.iter() {
        let name = m
            .force_string(item)
            .map_err(|e| e.context("while evaluating an output name of a derivation", None))?;
        if let Some(path) = name.context().and_then(|c| c.iter().next()) {
            let path = match path {
                ContextElem::Path(p)
                | ContextElem::AllOutputs(p)
                | ContextElem::DrvOutput { drv: p, .. } => p,
            };
            return Err(invalid(format!(
                "the string '{}' is not allowed to refer to a store path (such as '{path}')",
                name.as_str()
            )));
        }
        names.push((name.to_symbol(), Value::String(name)));
    }
    Ok(names)
}

fn derivation(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let attrs = m.force_attrs(&args[0])?;
    KNOWN.with(|known| build(m, attrs, known))
}

fn build(m: &mut Machine, attrs: Attrs, known: &Known) -> EvalResult<Value> {
    let outputs = output_names(m, &attrs, known)?;
    let drv_attrs = Value::Attrs(attrs.clone());
    let strict = Value::Thunk(Thunk::apply(
        known.derivation_strict.clone(),
        drv_attrs.clone(),
    ));
    let drv_path = known.select(known.drv_path, &strict);
    // The output sets refer to each other (`drv.out`, `drv.all`), so they
    // are reached through thunks filled once every set exists. As in Nix,
    // the first output's attribute is evaluated already while `all`, its
    // elements and the other outputs' attributes are not until forced
    // (lazy printing shows it: `all = <CODE>`).
    let all = Thunk::uninit();

    // Everything the first output's set adds to `attrs`, later layers of
    // `derivation.nix` winning over earlier ones.
    let first_out_path = known.select(outputs[0].0, &strict);
    let mut overlay: SmallVec<[(Symbol, Value); 8]> = SmallVec::new();
    overlay.push((known.all, Value::Thunk(all.clone())));
    overlay.push((known.drv_attrs, drv_attrs));
    overlay.push((known.out_path, first_out_path));
    overlay.push((known.drv_path, drv_path));
    overlay.push((known.type_, known.derivation.clone()));
    overlay.push((known.output_name, outputs[0].1.clone()));
    // `None` for an output whose name is taken (by the wrapper or by an
    // earlier output of the same name).
    let mut cells: SmallVec<[Option<Thunk>; 2]> = SmallVec::with_capacity(outputs.len());
    for (name, _) in &outputs {
        let cell = if overlay.iter().any(|(taken, _)| taken == name) {
            None
        } else {
            let cell = Thunk::uninit();
            overlay.push((*name, Value::Thunk(cell.clone())));
            Some(cell)
        };
        cells.push(cell);
    }
    overlay.sort_unstable_by_key(|(name, _)| *name);

    let mut merged = Merged::new(&attrs, overlay, known);
    let mut sets: SmallVec<[Value; 2]> = SmallVec::with_capacity(outputs.len());
    for (name, output_name) in outputs.iter().skip(1) {
        let mut own = merged.entries.clone();
        own[merged.out_path_at].1 = known.select(*name, &strict);
        own[merged.output_name_at].1 = output_name.clone();
        sets.push(Value::Attrs(merged.attrs(own)));
    }
    let entries = std::mem::take(&mut merged.entries);
    let first = Value::Attrs(merged.attrs(entries));
    sets.insert(0, first.clone());

    let mut elements = Vec::with_capacity(sets.len());
    for (i, (cell, set)) in cells.iter().zip(sets).enumerate() {
        // An element stands for the output's attribute where there is one:
        // forcing either evaluates both, as in Nix.
        let element = match cell {
            Some(cell) => {
                *cell.0.borrow_mut() = if i == 0 {
                    ThunkState::Done(set)
                } else {
                    ThunkState::Alias(set)
                };
                Value::Thunk(cell.clone())
            }
            None => set,
        };
        elements.push(alias(element));
    }
    *all.0.borrow_mut() = ThunkState::Alias(Value::List(List::new(elements)));
    Ok(first)
}

/// A thunk that is `value` once forced (an unevaluated list element or
/// attribute for code that can tell).
fn alias(value: Value) -> Value {
    Value::Thunk(Thunk(Rc::new(RefCell::new(ThunkState::Alias(value)))))
}

/// `attrs // overlay` (both sorted by symbol).
struct Merged {
    entries: Vec<(Symbol, Value)>,
    /// Where `attrs` had positions (a literal): theirs, none for the
    /// overlay's names. Shared by every output's set.
    positions: Option<Rc<[Option<Span>]>>,
    /// The indices of `outPath` and `outputName`, which differ per output.
    out_path_at: usize,
    output_name_at: usize,
}

impl Merged {
    fn new(attrs: &Attrs, overlay: SmallVec<[(Symbol, Value); 8]>, known: &Known) -> Merged {
        let mut entries = Vec::with_capacity(attrs.len() + overlay.len());
        let user_positions = attrs.positions();
        let mut positions: SmallVec<[Option<Span>; 32]> = SmallVec::new();
        let mut position = |k: Option<usize>| {
            if let Some(user_positions) = user_positions {
                positions.push(k.and_then(|k| user_positions[k]));
            }
        };
        let (mut out_path_at, mut output_name_at) = (0, 0);
        let mut own = attrs.iter().enumerate().peekable();
        for (name, value) in overlay {
            while let Some((k, (user_name, user_value))) =
                own.next_if(|(_, (user_name, _))| *user_name <= name)
            {
                if user_name != name {
                    entries.push((user_name, user_value.clone()));
                    position(Some(k));
                }
            }
            if name == known.out_path {
                out_path_at = entries.len();
            } else if name == known.output_name {
                output_name_at = entries.len();
            }
            entries.push((name, value));
            position(None);
        }
        for (k, (name, value)) in own {
            entries.push((name, value.clone()));
            position(Some(k));
        }
        Merged {
            entries,
            positions: user_positions.map(|_| Rc::from(positions.as_slice())),
            out_path_at,
            output_name_at,
        }
    }

    fn attrs(&self, entries: Vec<(Symbol, Value)>) -> Attrs {
        match &self.positions {
            Some(positions) => Attrs::from_sorted_with_positions(entries, positions.clone()),
            None => Attrs::from_sorted(entries),
        }
    }
}
