//! `kiln repl`: piped input (bindings, multi-line input, commands, errors
//! that keep the session), `:b`/`:log` on a real build, and a session on a
//! pseudo-terminal (line editing, tab completion, history).

use std::io::{Read, Write};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::kit::{Pty, TestEnv, require_bwrap};

/// Run `kiln repl ARGS…` with `input` on stdin.
fn repl(env: &TestEnv, args: &[&str], input: &str) -> Output {
    let mut child = env
        .kiln()
        .arg("repl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kiln repl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kiln repl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn piped_input_is_a_session() {
    let env = TestEnv::new();
    env.write(
        "lib.nix",
        "{ greeting ? \"hi\" }: { hello = \"${greeting} there\"; n = 41; }",
    );
    let input = "\
1 + 2
x = 3
x * 2
lazy = throw \"not yet\"
{ a = 1 + 1; b = { c = 2; }; l = [ 1 [ 2 ] ]; }
:p { b = { c = [ 2 ]; }; }
let
  y = 4;
in
  y + x
:t x
:t lazy
undefined_name
1 +)
:a { z = 10; }
z
:l lib.nix
n + 1
hello
\"two\\nlines\"
''
  indented
''
:nope
x
:q
2 + 2
";
    let out = repl(&env, &["--argstr", "greeting", "hello"], input);
    assert_eq!(
        text(&out.stdout),
        "\
3
6
{ a = 2; b = { ... }; l = [ ... ]; }
{ b = { c = [ 2 ]; }; }
7
an integer
Added 1 variables.
10
Added 2 variables.
42
\"hello there\"
\"two\\nlines\"
\"indented\\n\"
3
"
    );
    let stderr = text(&out.stderr);
    // `:t lazy` forces the binding; the errors are shown, the session goes on.
    for needle in [
        "error: not yet",
        "error: undefined variable 'undefined_name'",
        "unexpected ')'",
        "unknown command ':nope'",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn files_load_at_the_start_and_reload() {
    let env = TestEnv::new();
    let file = env.write("a.nix", "{ v = 1; }");
    let here = format!("here={}", env.work().display());
    let mut child = env
        .kiln()
        .args(["repl", "a.nix", "-I", &here])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"v\n").unwrap();
    stdin.flush().unwrap();
    // The first answer is out before the file changes.
    let mut first = [0u8; 21];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(text(&first), "Added 1 variables.\n1\n");
    std::fs::write(&file, "{ v = 2; }").unwrap();
    let rest = ":r\nv\nw = v + 100\n:r\nw\n:te\n:te false\n:l <here/a.nix>\nv\n";
    stdin.write_all(rest.as_bytes()).unwrap();
    drop(stdin);
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        out,
        "Added 1 variables.\n2\nAdded 1 variables.\nshowing error traces is on\n\
         showing error traces is off\nAdded 1 variables.\n2\n"
    );
    // After `:r` the binding `w` is gone, as in nix repl.
    assert!(stderr.contains("undefined variable 'w'"), "{stderr}");
}

#[test]
fn build_and_log_from_the_repl() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    let bin = env.work().join("busybox/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    env.write(
        "default.nix",
        r#"let bb = builtins.path { path = ./busybox; name = "busybox"; }; in {
  hi = derivation {
    name = "hi";
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" "echo building hi; echo hi > $out" ];
  };
}"#,
    );
    let out = repl(&env, &["default.nix"], "hi\n:b hi\n:log hi\n:b 1\n:t hi\n");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "Added 1 variables.");
    assert!(
        lines[1].starts_with("«derivation /kiln/store/") && lines[1].ends_with("-hi.drv»"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("/kiln/store/") && lines[2].ends_with("-hi"),
        "{stdout}"
    );
    assert_eq!(lines[3], "building hi");
    assert_eq!(lines[4], "a set");
    let real = env.root().join(lines[2].trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(real).unwrap(), "hi\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("expected a derivation, but the value is an integer"),
        "{stderr}"
    );
}

#[test]
fn a_terminal_session_edits_completes_and_keeps_history() {
    let env = TestEnv::new();
    let mut command = env.kiln();
    command.arg("repl").env("TERM", "xterm");
    let (mut pty, mut child) = Pty::spawn(command, "kiln-repl> ");
    // Keys typed before the prompt is back may be dropped by the line
    // editor, so each line waits for its prompt.
    let at = pty.line(0, "1 + 2\r");
    let at = pty.expect(at, "\n3\r\n");
    // Tab completes a builtin's name; the line then runs.
    let at = pty.line(at, "builtins.leng\t [ 1 2 ]\r");
    let at = pty.expect(at, "builtins.length");
    let at = pty.expect(at, "\n2\r\n");
    // An unfinished set continues on the next line.
    let at = pty.line(at, "{ a = 5;\r}.a\r");
    let at = pty.expect(at, "\n5\r\n");
    // An error keeps the session; a bound name completes.
    let at = pty.line(at, "throw \"oops\"\r");
    let at = pty.expect(at, "error: oops");
    let at = pty.line(at, "myvalue = 7\r");
    let at = pty.line(at, "myv\t * 2\r");
    let at = pty.expect(at, "\n14\r\n");
    // Up arrow recalls the previous line.
    let at = pty.line(at, "\x1b[A\r");
    let at = pty.expect(at, "\n14\r\n");
    pty.line(at, ":q\r");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the repl did not quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let history = std::fs::read_to_string(env.home().join(".local/share/kiln/repl-history"))
        .expect("a history file");
    for line in ["1 + 2", "builtins.length [ 1 2 ]", "myvalue * 2", ":q"] {
        assert!(
            history.contains(line),
            "{line:?} in the history:\n{history}"
        );
    }
}
