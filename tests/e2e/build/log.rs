//! `kiln log` and `--print-build-logs`, while a build runs and after it
//! was killed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::kit::{DrvKit, Spec, command_running};

#[test]
fn print_build_logs_prefixes_lines() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "chatty",
        "echo first; echo second >&2; echo > $out",
    ));
    let out = kit.build(&drv, &["-L"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("chatty> first\n") && stderr.contains("chatty> second\n"),
        "{stderr}"
    );
}

/// `kiln log ARG` until its stdout is `expected`, for at most `limit`.
fn wait_for_log(kit: &DrvKit, arg: &str, expected: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let out = kit.env.run(&["log", arg]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() && out.stdout == expected.as_bytes() {
            return stderr;
        }
        assert!(
            Instant::now() < deadline,
            "kiln log {arg} never showed {expected:?}; last: {}, stdout {:?}, stderr {stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn log_shows_what_a_running_and_then_killed_build_printed() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "slow-talker",
        "echo one; echo two >&2; echo three; sleep 31.41; echo > $out",
    ));
    let drv_path = kit.path(&drv);
    let out_path = kit.path(&kit.out(&drv, "out"));
    let expected = "one\ntwo\nthree\n";
    let mut child = kit
        .env
        .kiln()
        .args(["build", &drv_path, "--no-out-link"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // While the builder sleeps, its lines are in the log (within about a
    // second of being printed), by derivation and by output.
    let started = Instant::now();
    let stderr = wait_for_log(&kit, &drv_path, expected, Duration::from_secs(15));
    let shown_after = started.elapsed();
    assert!(child.try_wait().unwrap().is_none(), "the build ended early");
    assert!(command_running("sleep 31.41"), "the builder is not running");
    assert!(stderr.contains("is incomplete"), "{stderr}");
    wait_for_log(&kit, &out_path, expected, Duration::from_secs(5));

    // SIGKILL kiln: the sandbox dies with it, the log stays readable.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while command_running("sleep 31.41") {
        assert!(Instant::now() < deadline, "the builder survived kiln");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = kit.env.run(&["log", &drv_path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(
        stderr.contains(&format!("note: the log of {drv_path} is incomplete")),
        "{stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    eprintln!("the lines were in the log {shown_after:?} after the build started");
}

/// Run `cmd` with stdout and stderr on a new pseudo-terminal; everything
/// the terminal received.
fn on_a_terminal(mut cmd: std::process::Command) -> (std::process::ExitStatus, Vec<u8>) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: valid out-pointers; name, termios and size may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: openpty returned two descriptors we now own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last writer is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let status = child.wait().unwrap();
    (status, reader.join().unwrap())
}

/// A builder's escape sequences (here: set the window title, move the
/// cursor up and erase the line) reach a terminal only as text, from
/// `-L`, from the failure's log tail and from `kiln log`; a pipe gets the
/// bytes as they were written.
#[test]
fn control_characters_from_a_build_are_escaped_on_a_terminal() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "escapes",
        "printf 'title\\033]0;pwned\\007 up\\033[1A\\033[2K \\033[1mbold\\033[0m\\n'; exit 1",
    ));
    let raw = "\x1b]0;pwned\x07";
    let shown = "title\\x1b]0;pwned\\x07 up\\x1b[1A\\x1b[2K \x1b[1mbold\x1b[0m";

    let mut build = kit.env.kiln();
    build.args(["build", "--no-out-link", "-L", &kit.path(&drv)]);
    let (status, seen) = on_a_terminal(build);
    let seen = String::from_utf8_lossy(&seen);
    assert!(!status.success());
    assert!(
        !seen.contains(raw),
        "a raw escape reached the terminal:\n{seen:?}"
    );
    // From -L, in the failure's log tail (and in the progress line).
    assert!(seen.contains(&format!("escapes> {shown}")), "{seen:?}");
    assert!(seen.contains(&format!("\n> {shown}")), "{seen:?}");

    let mut log = kit.env.kiln();
    log.args(["log", &kit.path(&drv)]);
    let (status, seen) = on_a_terminal(log);
    let seen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{seen}");
    assert!(!seen.contains(raw) && seen.contains(shown), "{seen:?}");

    let piped = kit.env.run(&["log", &kit.path(&drv)]);
    assert!(String::from_utf8_lossy(&piped.stdout).contains(raw));
}
