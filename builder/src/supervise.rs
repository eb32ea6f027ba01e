//! Running a builder: stream its output into the log, enforce `--timeout`
//! and `--max-silent-time`, and stop it when the whole run is cancelled.
//! The loop also wakes up when buffered log output is due to be written
//! (at most a second after it arrived), so a quiet build's log is readable.
//!
//! stdout and stderr share one pipe so the log keeps their interleaving.
//! The child (bwrap) leads its own process group; killing that group kills
//! bwrap, whose death kills the sandbox's pid 1 (`--die-with-parent`) and so
//! every process in the sandbox's pid namespace.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::BuildError;
use crate::log::LogWriter;

/// Time limits of one build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Kill the build after this long in total.
    pub timeout: Option<Duration>,
    /// Kill the build after this long without output.
    pub max_silent: Option<Duration>,
}

/// How a builder ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
    TimedOut(Duration),
    Silent(Duration),
    Cancelled,
}

impl Outcome {
    pub fn success(&self) -> bool {
        *self == Outcome::Exited(0)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // bwrap, as the sandbox's pid 1, reports a builder killed by
            // signal N as status 128 + N.
            Outcome::Exited(code) if (129..=159).contains(code) => write!(
                f,
                "builder exited with status {code} (killed by signal {} ({}))",
                code - 128,
                signal_name(code - 128)
            ),
            Outcome::Exited(code) => write!(f, "builder exited with status {code}"),
            Outcome::Signalled(sig) => {
                write!(
                    f,
                    "builder was killed by signal {sig} ({})",
                    signal_name(*sig)
                )
            }
            Outcome::TimedOut(d) => {
                write!(f, "build timed out after {}s (--timeout)", d.as_secs())
            }
            Outcome::Silent(d) => write!(
                f,
                "build printed nothing for {}s and was killed (--max-silent-time)",
                d.as_secs()
            ),
            Outcome::Cancelled => write!(f, "build was stopped because another build failed"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGINT => "SIGINT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => "signal",
    }
}

/// Run `cmd` to completion. Every chunk of output goes to `log`; each
/// completed line is also passed to `on_line`. `started` runs once the
/// child exists (with its pid); what it returns lives until the child has
/// ended, and if it fails the child is killed.
pub fn supervise<G>(
    mut cmd: Command,
    drv_name: &str,
    log: &mut LogWriter,
    limits: Limits,
    cancel: &AtomicBool,
    on_line: &mut dyn FnMut(&str),
    started: impl FnOnce(u32) -> Result<G, BuildError>,
) -> Result<Outcome, BuildError> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| spawn_error(drv_name, e))?;
    let writer2 = writer.try_clone().map_err(|e| spawn_error(drv_name, e))?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = cmd.spawn().map_err(|e| spawn_error(drv_name, e))?;
    // The Command holds the pipe's write ends: drop it so EOF arrives when
    // the sandbox is gone.
    drop(cmd);
    let pgid = child.id() as libc::pid_t;
    let _guard = match started(child.id()) {
        Ok(guard) => guard,
        Err(e) => {
            // SAFETY: kill(2) with the group of a child we spawned.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return Err(e);
        }
    };

    let start = Instant::now();
    let mut last_output = start;
    let mut stop: Option<Outcome> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let fd = reader.as_raw_fd();
    loop {
        let now = Instant::now();
        log.flush_due(now)?;
        if stop.is_none() {
            stop = if cancel.load(Ordering::Relaxed) {
                Some(Outcome::Cancelled)
            } else if let Some(t) = limits.timeout.filter(|t| now >= start + *t) {
                Some(Outcome::TimedOut(t))
            } else {
                limits
                    .max_silent
                    .filter(|t| now >= last_output + *t)
                    .map(Outcome::Silent)
            };
            if stop.is_some() {
                // SAFETY: kill(2) with the group of a child we spawned.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
        }
        // Wake up in time for the nearest deadline, and often enough to see
        // a cancellation.
        let mut wait = Duration::from_millis(200);
        if let Some(t) = limits.timeout {
            wait = wait.min((start + t).saturating_duration_since(now));
        }
        if let Some(t) = limits.max_silent {
            wait = wait.min((last_output + t).saturating_duration_since(now));
        }
        if let Some(deadline) = log.flush_deadline() {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = wait.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(BuildError::io(log.path(), err));
        }
        if ready == 0 {
            continue;
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BuildError::io(log.path(), e)),
        };
        if n == 0 {
            break;
        }
        last_output = Instant::now();
        for line in log.write(&buf[..n])? {
            on_line(&line);
        }
    }
    let status = child.wait().map_err(|e| spawn_error(drv_name, e))?;
    if let Some(outcome) = stop {
        return Ok(outcome);
    }
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Some(sig)) => Outcome::Signalled(sig),
        (None, None) => Outcome::Exited(-1),
    })
}

fn spawn_error(drv: &str, source: std::io::Error) -> BuildError {
    BuildError::Spawn {
        drv: drv.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn run(script: &str, limits: Limits) -> (Outcome, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogWriter::create(dir.path().join("l.zst")).unwrap();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]).process_group(0);
        let mut lines = Vec::new();
        let cancel = AtomicBool::new(false);
        let outcome = supervise(
            cmd,
            "t",
            &mut log,
            limits,
            &cancel,
            &mut |l| lines.push(l.to_string()),
            |_| Ok(()),
        )
        .unwrap();
        (outcome, lines)
    }

    #[test]
    fn collects_both_streams_and_status() {
        let (outcome, lines) = run("echo out; echo err >&2; exit 3", Limits::default());
        assert_eq!(outcome, Outcome::Exited(3));
        assert_eq!(lines, vec!["out", "err"]);
    }

    #[test]
    fn timeout_kills_the_group() {
        let started = Instant::now();
        let limits = Limits {
            timeout: Some(Duration::from_millis(300)),
            max_silent: None,
        };
        let (outcome, _) = run("echo a; sleep 30 & sleep 30", limits);
        assert!(matches!(outcome, Outcome::TimedOut(_)));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn output_of_a_quiet_builder_reaches_the_log_file_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.zst");
        let mut log = LogWriter::create(path.clone()).unwrap();
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo early; sleep 2.5; echo late"])
            .process_group(0);
        let cancel = AtomicBool::new(false);
        let read = |path: &std::path::Path| {
            let mut text = Vec::new();
            let end = crate::log::read_log(path, &mut text).unwrap();
            (String::from_utf8(text).unwrap(), end)
        };
        // Poll the file while the builder sleeps (it is flushed a second
        // after "early" arrives).
        let seen_while_running = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let started = Instant::now();
                loop {
                    let seen = read(&path);
                    if !seen.0.is_empty() || started.elapsed() > Duration::from_secs(2) {
                        return (seen, started.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            let outcome = supervise(
                cmd,
                "t",
                &mut log,
                Limits::default(),
                &cancel,
                &mut |_| {},
                |_| Ok(()),
            );
            assert_eq!(outcome.unwrap(), Outcome::Exited(0));
            reader.join().unwrap()
        });
        let (seen, after) = seen_while_running;
        assert_eq!(
            seen,
            ("early\n".to_string(), crate::log::LogEnd::Incomplete),
            "after {after:?}"
        );
        log.finish().unwrap();
        let expected = ("early\nlate\n".to_string(), crate::log::LogEnd::Complete);
        assert_eq!(read(&path), expected);
    }

    #[test]
    fn silence_is_detected() {
        let limits = Limits {
            timeout: None,
            max_silent: Some(Duration::from_millis(300)),
        };
        let (outcome, lines) = run("echo hello; sleep 30", limits);
        assert!(matches!(outcome, Outcome::Silent(_)));
        assert_eq!(lines, vec!["hello"]);
    }
}
