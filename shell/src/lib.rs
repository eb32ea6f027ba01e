//! kiln-shell: developer shells and `kiln run`.
//!
//! The one crate besides the CLI that uses the evaluator, the builder and
//! the store together, so that the CLI stays argument parsing, one call
//! and rendering.
//!
//! # Code map
//!
//! - [`cache`]: from an expression to one derivation, through the
//!   evaluation cache keyed by every file and argument evaluation read.
//! - [`shell`]: `kiln shell`: the builder's environment, the rc file, the
//!   shell started directly, in a namespace or in bubblewrap.
//! - [`run`]: `kiln run`: build if needed, pick the program, run it.
//! - [`roots`]: the shell's GC root, tied to its project file.
//! - [`view`]: the user + mount namespace that binds the physical store at
//!   the logical path.
//! - [`launch`]: starting a program in that view and waiting for it.
//! - [`setup`]: `kiln setup`, the one-time root command that makes a
//!   root's store visible system-wide.
//! - [`packages`]: the expression of `kiln shell -p PKG…`.

pub mod cache;
pub mod error;
pub mod launch;
pub mod packages;
pub mod roots;
pub mod run;
pub mod setup;
pub mod shell;
pub mod view;

pub use cache::{CacheOutcome, Expression, Resolved, Source};
pub use error::ShellError;
pub use run::{RunRequest, Target};
pub use shell::{Mode, PURE_KEEP, Sandbox, ShellOutcome, ShellRequest};
