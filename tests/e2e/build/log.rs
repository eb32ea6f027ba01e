//! `kiln log` and `--print-build-logs`, while a build runs and after it
//! was killed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::kit::{DrvKit, Spec, process_running};

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
    assert!(process_running("sleep 31.41"), "the builder is not running");
    assert!(stderr.contains("is incomplete"), "{stderr}");
    wait_for_log(&kit, &out_path, expected, Duration::from_secs(5));

    // SIGKILL kiln: the sandbox dies with it, the log stays readable.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_running("sleep 31.41") {
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
