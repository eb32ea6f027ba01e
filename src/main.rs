//! The `kiln` command line: parse arguments, run one command, map the
//! outcome to an exit code. No domain logic lives here.

mod cli;
mod escape;
mod exit;
mod output;

use std::process::ExitCode;

// The evaluator makes millions of small, short-lived allocations; mimalloc
// serves them markedly faster than glibc malloc (see bench/eval).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::parse_or_exit();
    cli::init_logging(&args.global);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
