//! `kiln parse`: prints the syntax tree, `--check` prints nothing, stdin
//! with `-`, and a syntax error exits 2 with file:line:column, the line and
//! a caret.

use std::io::Write;
use std::process::Stdio;

use crate::kit::TestEnv;

#[test]
fn parse_prints_the_tree() {
    let env = TestEnv::new();
    let file = env.write("a.nix", "{ a ? 1, ... }@args: a + args.b or 2\n");
    let out = env.ok(&["parse", file.to_str().unwrap()]);
    assert_eq!(
        out,
        "(lambda (formals (a 1) ... @args) (+ a (. args b (or 2))))\n"
    );
}

#[test]
fn parse_check_prints_nothing() {
    let env = TestEnv::new();
    let file = env.write("ok.nix", "let x = [ 1 2 ]; in x ++ x\n");
    assert_eq!(env.ok(&["parse", "--check", file.to_str().unwrap()]), "");
}

#[test]
fn parse_reads_stdin() {
    let env = TestEnv::new();
    let mut child = env
        .kiln()
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn kiln");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"rec { a = 1; b = a; }")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "(rec-attrs (a 1) (b a))\n"
    );
}

#[test]
fn parse_error_shows_position_line_and_caret() {
    let env = TestEnv::new();
    let file = env.write("bad.nix", "{\n  a = 1;\n  b = );\n}\n");
    let stderr = env.fails(&["parse", file.to_str().unwrap()], 2);
    assert!(
        stderr.contains("error: syntax error: unexpected ')', expected an expression"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.nix:3:7"), "{stderr}");
    assert!(stderr.contains("3 |   b = );"), "{stderr}");
    assert!(stderr.contains("  |       ^"), "{stderr}");
}

#[test]
fn parse_deep_nesting_is_a_clean_error() {
    let env = TestEnv::new();
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let file = env.write("deep.nix", deep);
    let stderr = env.fails(&["parse", "--check", file.to_str().unwrap()], 2);
    assert!(stderr.contains("nested too deeply"), "{stderr}");
}

#[test]
fn parse_missing_file_is_a_user_error() {
    let env = TestEnv::new();
    let stderr = env.fails(&["parse", "no-such-file.nix"], 2);
    assert!(stderr.contains("no-such-file.nix"), "{stderr}");
}

/// Regression: `kiln parse` accepted the names of Nix's global scope that
/// kiln does not define (`fetchTree`), which `kiln eval` then called
/// undefined. Both now check against the evaluator's one global scope.
#[test]
fn parse_and_eval_agree_on_undefined_names() {
    let env = TestEnv::new();
    for name in ["fetchTree", "fetchTarball", "__fetchurl", "__map"] {
        let parse = env.fails(&["parse", "-E", name], 2);
        assert!(
            parse.contains(&format!("undefined variable '{name}'")),
            "{parse}"
        );
        let eval = env.fails(&["eval", "-E", name], 2);
        assert!(
            eval.contains(&format!("undefined variable '{name}'")),
            "{eval}"
        );
        // Both name an expression given with -E as Nix does.
        for output in [&parse, &eval] {
            assert!(output.contains("--> «string»:1:1"), "{output}");
        }
    }
    for name in ["map", "__add", "builtins", "__curPos", "true", "derivation"] {
        env.ok(&["parse", "-E", name]);
        env.ok(&["eval", "-E", &format!("builtins.seq {name} 1")]);
    }
}
