//! Closed pipes: every command piped into `head -1` and `head -c0` ends
//! promptly, without a panic, and a build in flight is stopped with its
//! temp state removed.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::kit::{DrvKit, Spec, TestEnv, process_running};

/// Run `kiln ARGS… REDIRECT | head HEAD` through sh; the exit code of kiln
/// (`PIPESTATUS` is bash's, so the pipeline records it in a file).
fn piped(env: &TestEnv, args: &[&str], both: bool, head: &str) -> (i32, Duration) {
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let status_file = env.work().join("status");
    let script = format!(
        "{{ '{kiln}' {} {}; echo $? > '{}'; }} | head {head} > /dev/null",
        quoted.join(" "),
        if both { "2>&1" } else { "2>/dev/null" },
        status_file.display()
    );
    let started = Instant::now();
    let template = env.kiln();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(script).current_dir(env.work());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let status = sh.status().expect("run sh");
    assert!(status.success() || status.code().is_some());
    let code = std::fs::read_to_string(&status_file)
        .expect("kiln's exit status")
        .trim()
        .parse()
        .unwrap();
    (code, started.elapsed())
}

fn assert_clean_end(env: &TestEnv, args: &[&str]) {
    for head in ["-1", "-c0"] {
        for both in [false, true] {
            let (code, took) = piped(env, args, both, head);
            assert!(
                (0..=2).contains(&code),
                "kiln {args:?} | head {head} (2>&1: {both}) exited {code}"
            );
            assert!(
                took < Duration::from_secs(20),
                "kiln {args:?} | head {head} took {took:?}"
            );
        }
    }
}

#[test]
fn evaluation_and_store_commands_end_cleanly() {
    let env = TestEnv::new();
    env.write("a.txt", "some text\n".repeat(10_000));
    let added = env.ok(&["store", "add", "a.txt"]);
    let added = added.trim();
    for args in [
        &["eval", "-E", "builtins.genList (x: x) 100000", "--strict"][..],
        &[
            "eval",
            "-E",
            "builtins.trace \"x\" (builtins.genList (x: x) 1000)",
        ],
        &["parse", "-E", "1 +"],
        &["eval", "-E", "1 +"],
        &["instantiate", "-E", "1"],
        &["store", "dump", added],
        &["store", "path-info", "--json", added],
        &["store", "query", "--requisites", added],
        &["hash", "file", "a.txt"],
        &["--help"],
        &["build", "--help"],
    ] {
        assert_clean_end(&env, args);
    }
}

#[test]
fn a_build_whose_output_is_closed_is_stopped_and_cleaned_up() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "talker",
        "echo one; echo two; sleep 27.18; echo > $out",
    ));
    let drv_path = kit.path(&drv);
    // (`head -1` on stdout alone waits for the output paths, printed at
    // the end, so the build rightly runs to its end: not a case here.)
    for (head, both) in [("-1", true), ("-c0", true), ("-c0", false)] {
        {
            let (code, took) = piped(&kit.env, &["build", &drv_path, "--no-out-link"], both, head);
            assert_eq!(code, 1, "head {head}, 2>&1: {both}");
            assert!(took < Duration::from_secs(20), "took {took:?}");
            let deadline = Instant::now() + Duration::from_secs(5);
            while process_running("sleep 27.18") {
                assert!(Instant::now() < deadline, "the builder survived");
                std::thread::sleep(Duration::from_millis(20));
            }
            let store_dir = kit.env.root().join("kiln/store");
            let temps: Vec<_> = std::fs::read_dir(&store_dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-kiln-"))
                .collect();
            assert!(temps.is_empty(), "temp state left: {temps:?}");
            assert!(!kit.reopen().is_valid(&kit.out(&drv, "out")).unwrap());
        }
    }
    kit.assert_store_consistent();
}
