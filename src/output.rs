//! Writing to stdout and stderr without panicking when they are closed.
//!
//! `println!`/`eprintln!` panic when the other end of a pipe is gone
//! (`kiln build 2>&1 | head -1`). Everything kiln prints goes through here
//! instead: a failed write is remembered, and long-running commands poll
//! [`closed`] to stop their work (builds in flight are cancelled and
//! cleaned up) rather than run on for nobody.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout or stderr is closed: a write to it failed, or it is a
/// pipe whose reader went away (seen without writing, so a build whose
/// output is printed only at the end still stops early).
pub fn closed() -> bool {
    if CLOSED.load(Ordering::Relaxed) {
        return true;
    }
    if reader_gone(libc::STDOUT_FILENO) || reader_gone(libc::STDERR_FILENO) {
        mark_closed();
        return true;
    }
    false
}

/// A pipe's write end reports POLLERR once its read end is closed.
fn reader_gone(fd: libc::c_int) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: `poll` points at one valid pollfd for the duration of the
    // call, and a zero timeout never blocks.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLERR != 0
}

/// Remember that output was closed (a write failed with `err`).
pub fn mark_closed() {
    CLOSED.store(true, Ordering::Relaxed);
}

/// Write to stderr; a failure is remembered, never a panic.
pub fn stderr(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    if err.write_fmt(args).and_then(|()| err.flush()).is_err() {
        mark_closed();
    }
}

/// Write all of `text` to stdout and flush it. A closed stdout is
/// remembered and returned as the error (`exit::report` treats a broken
/// pipe as a quiet end).
pub fn stdout(text: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text).and_then(|()| out.flush());
    if result.is_err() {
        mark_closed();
    }
    result
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!($($arg)*))
    };
}
