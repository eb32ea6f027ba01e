//! Exit codes and error reporting, decided in one place.
//!
//! 0: success. 1: the operation failed (a build, a verification, I/O).
//! 2: the user's input was wrong (bad flag, bad file, parse or eval error).

use std::fmt;
use std::process::ExitCode;

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug)]
pub struct UserError(pub anyhow::Error);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The alternate form prints the whole context chain on one line.
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for UserError {}

/// Wrap any error as a user error (exit code 2).
pub fn user(err: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(UserError(err.into()))
}

/// Print an error once, at the top, and choose the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    if let Some(user) = err.downcast_ref::<UserError>() {
        eprintln!("error: {user}");
        return ExitCode::from(2);
    }
    eprintln!("error: {err:#}");
    ExitCode::from(1)
}

/// Writing to a closed pipe (`kiln store dump … | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
