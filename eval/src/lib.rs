//! kiln-eval: the lazy evaluator.
//!
//! Owns values, thunks, scopes, builtins, string context, `derivation`,
//! `import` and search paths. Reaches the store only through the
//! [`EvalStore`] trait; knows nothing of building.
//!
//! The pipeline: the lang crate parses a file to an AST; [`compile`]
//! resolves every name to a slot ([`compile::ir`]); the [`machine`]
//! evaluates that lazily, with [`value`]s that share their contents through
//! `Rc`s. [`Evaluation`] is the entry point the CLI uses.
//!
//! Values are `Rc`-based and not `Send`: an evaluation lives on one
//! thread. [`run_with_big_stack`] gives it a thread with a large stack so
//! deep (non-tail) recursion in user code works; a depth counter turns
//! runaway recursion into an error before the stack is exhausted.

pub mod builtins;
pub mod coerce;
pub mod compile;
pub mod env;
pub mod error;
mod evaluation;
pub mod import;
pub mod kiln_store;
pub mod machine;
pub mod ops;
pub mod options;
mod parse;
pub mod path;
pub mod print;
mod render;
pub mod search_path;
pub mod source;
pub mod span;
pub mod store;
pub mod symbol;
pub mod value;
pub mod xml;

pub use self::kiln_store::KilnEvalStore;
pub use error::{ErrorKind, EvalError, EvalResult};
pub use evaluation::{AutoArg, Evaluation, OutputFormat};
pub use options::EvalOptions;
pub use search_path::SearchPathEntry;
pub use store::{EvalStore, MemoryStore};
pub use value::Value;

/// Stack size of the evaluation thread. Virtual memory: only the pages a
/// deep recursion really touches are ever resident.
pub const EVAL_STACK_SIZE: usize = 1 << 30;

/// Run `f` on a fresh thread with an [`EVAL_STACK_SIZE`] stack and return
/// its result. Panics inside `f` are resumed on the caller.
pub fn run_with_big_stack<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let handle = std::thread::Builder::new()
        .name("kiln-eval".into())
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || {
            machine::set_stack_size_here(EVAL_STACK_SIZE);
            f()
        });
    match handle {
        Ok(handle) => match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        // Could not get a big stack (address space limits): run here.
        Err(_) => panic!("could not start the evaluation thread"),
    }
}
