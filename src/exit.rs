//! Exit codes and error reporting, decided in one place.
//!
//! 0: success. 1: the operation failed (a verification, I/O, the store).
//! 2: the user's input was wrong (bad flag, bad file, parse or eval error).
//! 100–104: builds failed, as Nix counts them ([`BuildsFailed`]).

use std::fmt;
use std::process::ExitCode;

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug)]
pub struct UserError(pub anyhow::Error);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render_chain(&self.0))
    }
}

impl std::error::Error for UserError {}

/// Wrap any error as a user error (exit code 2).
pub fn user(err: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(UserError(err.into()))
}

/// A syntax error of the user's input, already rendered with its source
/// lines (`error: …` and a snippet; ends in a newline): exit code 2.
#[derive(Debug)]
pub struct Diagnosed(pub String);

impl fmt::Display for Diagnosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl std::error::Error for Diagnosed {}

/// Builds failed: the exit code is Nix 2.8's, which scripts test for.
/// 100 a build failed, 101 one timed out, 102 a fixed output's hash did
/// not match (103 both), 104 `--check` found an output that differs
/// (added to the others); when no build itself failed (only kiln, the
/// store or the sandbox around it), 1.
#[derive(Debug, Default)]
pub struct BuildsFailed {
    pub message: String,
    pub failed: bool,
    pub timed_out: bool,
    pub hash_mismatch: bool,
    pub not_reproducible: bool,
}

impl BuildsFailed {
    /// Nix's `Worker::exitStatus`.
    pub fn code(&self) -> u8 {
        let mut mask = 0;
        if self.failed || self.timed_out || self.hash_mismatch {
            mask |= 0x04;
        }
        if self.timed_out {
            mask |= 0x01;
        }
        if self.hash_mismatch {
            mask |= 0x02;
        }
        if self.not_reproducible {
            mask |= 0x08;
        }
        if mask == 0 { 1 } else { mask | 0x60 }
    }
}

impl fmt::Display for BuildsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildsFailed {}

/// Print an error once, at the top, and choose the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    if let Some(user) = err.downcast_ref::<UserError>() {
        crate::say!("error: {user}");
        return ExitCode::from(2);
    }
    let code = ExitCode::from(code(err));
    // Diagnostics come rendered (with their source lines), said as they are.
    if let Some(failure) = err.downcast_ref::<kiln_eval::EvalFailure>() {
        crate::say_raw!("{}", failure.rendered);
    } else if let Some(diagnosed) = err.downcast_ref::<Diagnosed>() {
        crate::say_raw!("{}", diagnosed.0);
    } else {
        crate::say!("error: {}", render_chain(err));
    }
    code
}

/// The exit code of an error that is not marked as the user's.
///
/// | error                                                  | code |
/// |--------------------------------------------------------|------|
/// | the store failed (database, install, disk), also under an evaluation | 1 |
/// | an evaluation error, a syntax error ([`Diagnosed`])    | 2    |
/// | a store request the input got wrong (a hash mismatch, a file that cannot be read, a bad store path), from the evaluator's store | 2 |
/// | builds failed ([`BuildsFailed`]): Nix's codes           | 100–104, or 1 |
/// | anything else (a verification, I/O)                    | 1    |
fn code(err: &anyhow::Error) -> u8 {
    if let Some(builds) = err.downcast_ref::<BuildsFailed>() {
        return builds.code();
    }
    let store = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<kiln_eval::StoreError>());
    if let Some(store) = store {
        return if store.store_failed() { 1 } else { 2 };
    }
    if err.is::<kiln_eval::EvalFailure>() || err.is::<Diagnosed>() {
        return 2;
    }
    1
}

/// Writing to a closed pipe (`kiln store dump … | head`) is not a failure,
/// also when the write was serde_json's (it wraps the I/O error).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|json| json.io_error_kind() == Some(BrokenPipe))
    })
}

/// The error and its causes on one line, `outer: inner: innermost`.
///
/// Library errors often print their source inside their own message as
/// well as exposing it as a cause; a cause whose text the line already
/// holds is left out so nothing is said twice.
pub fn render_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_failures_exit_as_nix_does() {
        let code = |failed, timed_out, hash_mismatch, not_reproducible| {
            BuildsFailed {
                message: String::new(),
                failed,
                timed_out,
                hash_mismatch,
                not_reproducible,
            }
            .code()
        };
        // nix-build of a failing builder, a --timeout, a wrong outputHash,
        // both, a `--check` that differs; a failure around the build.
        assert_eq!(code(true, false, false, false), 100);
        assert_eq!(code(true, true, false, false), 101);
        assert_eq!(code(true, false, true, false), 102);
        assert_eq!(code(true, true, true, false), 103);
        assert_eq!(code(false, false, false, true), 104);
        assert_eq!(code(false, false, false, false), 1);
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "moving into place /x: {}", self.0)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let err = anyhow::Error::new(Outer(io)).context("adding /tree");
        assert_eq!(
            render_chain(&err),
            "adding /tree: moving into place /x: Permission denied"
        );
    }

    #[test]
    fn a_closed_pipe_under_serde_json_is_a_clean_end() {
        use std::io::Write;
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = serde_json::to_writer(Closed, &[1, 2, 3]).unwrap_err();
        assert!(is_broken_pipe(&anyhow::Error::new(err)));
        let other = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(render_chain(&err), "outer: middle: inner");
    }
}
