//! The machine: evaluates compiled expressions to values.
//!
//! Evaluation is a recursive walk over [`Expr`](crate::compile::ir::Expr) with an environment.
//! `eval` always returns a forced value (never a thunk); sub-expressions
//! that must stay lazy become thunks through `Machine::delay`, which
//! skips the thunk for constants and variables (they are already values or
//! thunks). Recursion depth is counted, and the evaluation thread is given
//! a large stack (see [`crate::run_with_big_stack`]), so runaway recursion
//! ends as the error "stack overflow (possible infinite recursion)".
//!
//! This file holds the [`Machine`]'s state; its methods are split by what
//! they evaluate: `eval` (forcing, delaying, the walk over expressions),
//! `attrs` (selection, set literals, `let`), `call` (primops, functors,
//! lambdas and formals), `helpers` (expecting and forcing a type, deep
//! forcing, positions), `stack` (the recursion guard) and `known` (the
//! names the machine interns once).

use std::path::PathBuf;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::builtins;
use crate::eval_io::{EvalIO, RealIO};
use crate::options::EvalOptions;
use crate::search_path::SearchPathEntry;
use crate::source::Sources;
use crate::store::EvalStore;
use crate::symbol::Symbol;
use crate::value::{Attrs, Value};

mod attrs;
mod call;
mod eval;
mod helpers;
mod known;
mod stack;

pub(crate) use helpers::type_error;
use known::KnownSymbols;
pub use stack::DEFAULT_MAX_DEPTH;
use stack::STACK_LIMIT;
pub(crate) use stack::set_stack_size_here;

pub struct Machine {
    depth: usize,
    pub max_depth: usize,
    /// Lowest stack address allowed (0: rely on `max_depth` only).
    stack_limit: usize,
    pub(crate) sym: KnownSymbols,
    /// The `builtins` set.
    pub(crate) builtins: Attrs,
    pub(crate) sources: Sources,
    pub(crate) import_cache: FxHashMap<PathBuf, Value>,
    pub(crate) search_path: Vec<SearchPathEntry>,
    pub(crate) store: Rc<dyn EvalStore>,
    pub(crate) options: EvalOptions,
    /// Sources already copied to the store, by absolute path.
    pub(crate) copied_sources: FxHashMap<PathBuf, String>,
    /// The one door to the file system (`crate::eval_io`).
    pub(crate) io: Rc<dyn EvalIO>,
    /// The parser's names (the compiler re-interns them as [`Symbol`]s).
    pub(crate) interner: kiln_lang::symbol::Interner,
    /// The global scope the compiler resolves free names against.
    pub(crate) globals: FxHashMap<Symbol, Value>,
}

impl Machine {
    pub fn new(options: EvalOptions, store: Rc<dyn EvalStore>) -> Machine {
        let search_path = options.search_path.clone();
        let mut machine = Machine {
            depth: 0,
            max_depth: DEFAULT_MAX_DEPTH,
            stack_limit: STACK_LIMIT.with(|l| l.get()),
            sym: KnownSymbols::new(),
            builtins: Attrs::empty(),
            sources: Sources::default(),
            import_cache: FxHashMap::default(),
            search_path,
            store,
            options,
            copied_sources: FxHashMap::default(),
            io: Rc::new(RealIO::default()),
            interner: kiln_lang::symbol::Interner::new(),
            globals: FxHashMap::default(),
        };
        machine.builtins = builtins::builtins_set(&machine);
        machine.globals = builtins::global_scope(&machine).into_iter().collect();
        machine
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    pub fn store(&self) -> &Rc<dyn EvalStore> {
        &self.store
    }

    pub fn options(&self) -> &EvalOptions {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn deep_recursion_works_and_runaway_recursion_is_an_error() {
        assert_eq!(
            eval_str("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 100000").unwrap(),
            "100000"
        );
        let err = eval_str("let f = n: 1 + f (n + 1); in f 0").unwrap_err();
        assert!(err.contains("stack overflow"), "{err}");
    }

    #[test]
    fn has_attr_does_not_force_the_attribute_it_asks_about() {
        // Expected values from Nix 2.8 (`nix-instantiate --eval --strict`).
        assert_eq!(
            eval_str(
                "let fix = f: let x = f x; in x; in [ (fix (x: { a = if x ? a then \"a\" else \"b\"; })) ({ a = throw \"no\"; } ? a) ({ a = { b = 1; }; } ? a.b) ({ a = 1; } ? a.b) ]"
            )
            .unwrap(),
            "[ { a = \"a\"; } true true false ]"
        );
    }

    #[test]
    fn a_thunk_that_needs_itself_is_infinite_recursion() {
        let err = eval_str("let x = x + 1; in x").unwrap_err();
        assert!(err.contains("infinite recursion"), "{err}");
        // A failed thunk is not left blackholed: forcing it again repeats
        // the original error.
        assert_eq!(
            eval_str("let x = throw \"t\"; in [ (builtins.tryEval x).success (builtins.tryEval x).success ]").unwrap(),
            "[ false false ]"
        );
    }

    #[test]
    fn attribute_set_literals_keep_order_positions_and_recursion() {
        // Names interned in an order unlike their alphabetical one, built
        // by the compile-time layout (no dynamic attributes).
        assert_eq!(
            eval_str("builtins.attrNames { zz = 1; b = 2; aa = 3; }").unwrap(),
            "[ \"aa\" \"b\" \"zz\" ]"
        );
        assert_eq!(
            eval_str("let s = rec { y = x + 1; x = 1; z = y * 2; }; in [ s.x s.y s.z ]").unwrap(),
            "[ 1 2 4 ]"
        );
        // Each attribute keeps its own position, whatever the sort did.
        assert_eq!(
            eval_str(
                "let s = {\n  zz = 1;\n  b = 2;\n}; in map (n: (builtins.unsafeGetAttrPos n s).line) [ \"b\" \"zz\" ]"
            )
            .unwrap(),
            "[ 3 2 ]"
        );
        // With a dynamic attribute the general path is taken.
        assert_eq!(
            eval_str("let k = \"a\"; in builtins.attrNames { ${k} = 1; zz = 2; b = 3; }").unwrap(),
            "[ \"a\" \"b\" \"zz\" ]"
        );
    }

    #[test]
    fn scoping_rules() {
        // `let` beats `with`; globals beat `with`; inner `with` beats outer.
        assert_eq!(
            eval_str("let a = 1; in with { a = 2; b = 3; }; [ a b (with { b = 4; }; b) ]").unwrap(),
            "[ 1 3 4 ]"
        );
        assert_eq!(
            eval_str("with { map = 1; }; builtins.isFunction map").unwrap(),
            "true"
        );
        assert_eq!(
            eval_str("rec { a = b; b = 2; c = { inherit a; }; }.c.a").unwrap(),
            "2"
        );
        assert_eq!(
            eval_str("({ a, b ? a + 1, ... }@args: [ b args.c ]) { a = 1; c = 5; }").unwrap(),
            "[ 2 5 ]"
        );
    }

    #[test]
    fn calling_errors_name_the_argument() {
        let missing = eval_str("({ a, b }: a) { a = 1; }").unwrap_err();
        assert!(
            missing.contains("without required argument 'b'"),
            "{missing}"
        );
        let extra = eval_str("({ a }: a) { a = 1; z = 2; }").unwrap_err();
        assert!(extra.contains("unexpected argument 'z'"), "{extra}");
        let not_fn = eval_str("1 2").unwrap_err();
        assert!(not_fn.contains("not a function but an integer"), "{not_fn}");
    }

    #[test]
    fn equality_and_ordering_follow_nix() {
        assert_eq!(
            eval_str("let f = x: x; in [ (1 == 1.0) ([ 1 2 ] == [ 1 2 ]) ({ a = 1; } == { a = 1; }) (f == f) ([ f ] == [ f ]) ([ 1 2 ] < [ 1 3 ]) (\"a\" < \"b\") ]").unwrap(),
            "[ true true true false true true true ]"
        );
        assert!(eval_str("1 < \"a\"").is_err());
    }

    #[test]
    fn type_errors_name_both_types() {
        let err = eval_str("{ } + 1").unwrap_err();
        assert_eq!(err, "cannot coerce a set to a string");
        let err = eval_str("if 1 then 2 else 3").unwrap_err();
        assert_eq!(err, "value is an integer while a Boolean was expected");
        let err = eval_str("\"a\".b").unwrap_err();
        assert_eq!(err, "value is a string while a set was expected");
    }
}
