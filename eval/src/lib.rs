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
//!
//! No `unsafe` but one exception, allowed where it stands with its
//! `SAFETY:` comment: `value::string::Text::as_str` (bytes known to be
//! UTF-8, read on every string operation; checking them again each time
//! would make string access linear in the length).

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod builtins;
pub mod coerce;
pub mod compile;
pub mod env;
pub mod error;
pub mod eval_io;
mod evaluation;
pub mod explain;
pub mod get_drvs;
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
pub use eval_io::{EvalIO, RealIO};
pub use evaluation::{AutoArg, EvalFailure, Evaluation, OutputFormat};
pub use options::EvalOptions;
pub use search_path::SearchPathEntry;
pub use store::{EvalStore, MemoryStore, StoreError};
pub use value::Value;

/// Stack size wanted for the evaluation thread. Virtual memory: only the
/// pages a deep recursion really touches are ever resident.
pub const EVAL_STACK_SIZE: usize = 1 << 30;

/// The smallest stack worth a thread of its own: below it the evaluation
/// runs on the caller's thread, its recursion bounded by a depth counter.
const LEAST_EVAL_STACK: usize = 16 << 20;

/// Run `f` on a fresh thread with an [`EVAL_STACK_SIZE`] stack (or, when the
/// address space is short, the largest part of it that can be had) and
/// return its result. The evaluator's recursion limit follows the stack
/// the thread got. Panics inside `f` are resumed on the caller.
pub fn run_with_big_stack<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let on_thread = |size: usize| {
        machine::set_stack_size_here(size);
        f()
    };
    match kiln_lang::stack::run_on_big_stack(
        "kiln-eval",
        EVAL_STACK_SIZE,
        LEAST_EVAL_STACK,
        on_thread,
    ) {
        Ok(r) => r,
        // Not even the least stack: run here, on the depth counter alone
        // (stack size 0: unknown).
        Err(on_thread) => on_thread(0),
    }
}
