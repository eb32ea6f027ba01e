//! `kiln eval`: printing like `nix-instantiate --eval`, auto-calling with
//! `--arg`/`--argstr`, `-A`, search paths, and errors with positions.

use crate::kit::TestEnv;

#[test]
fn prints_values_like_nix() {
    let env = TestEnv::new();
    assert_eq!(env.ok(&["eval", "-E", "1 + 2"]), "3\n");
    assert_eq!(
        env.ok(&[
            "eval",
            "--strict",
            "-E",
            r#"{ b = [ 2 "x\n" ]; a = 1.5; c = null; "d e" = x: x; }"#
        ]),
        "{ a = 1.5; b = [ 2 \"x\\n\" ]; c = null; \"d e\" = <LAMBDA>; }\n"
    );
    // Without --strict nested values that were never needed stay unevaluated.
    assert_eq!(
        env.ok(&["eval", "-E", "{ a = builtins.add 1 1; }"]),
        "{ a = <CODE>; }\n"
    );
}

#[test]
fn json_and_xml_output() {
    let env = TestEnv::new();
    assert_eq!(
        env.ok(&["eval", "--json", "-E", r#"{ b = [ 1 2.5 ]; a = "s"; }"#]),
        "{\"a\":\"s\",\"b\":[1,2.5]}\n"
    );
    let xml = env.ok(&["eval", "--xml", "--strict", "-E", "[ 1 ]"]);
    assert!(
        xml.starts_with(
            "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <list>\n    <int value=\"1\" />"
        ),
        "{xml}"
    );
}

#[test]
fn auto_calls_a_file_with_args_and_selects_attributes() {
    let env = TestEnv::new();
    env.write(
        "default.nix",
        "{ name, greeting ? \"hello\", n }: { out = { text = \"${greeting} ${name}\"; twice = n * 2; }; }",
    );
    assert_eq!(
        env.ok(&[
            "eval", "--argstr", "name", "kiln", "--arg", "n", "21", "-A", "out.text"
        ]),
        "\"hello kiln\"\n"
    );
    assert_eq!(
        env.ok(&[
            "eval",
            "default.nix",
            "--argstr",
            "name",
            "x",
            "--arg",
            "n",
            "21",
            "-A",
            "out.twice"
        ]),
        "42\n"
    );
    let err = env.fails(&["eval", "--arg", "n", "1", "-A", "out"], 2);
    assert!(err.contains("without required argument 'name'"), "{err}");
}

#[test]
fn a_missing_attribute_of_the_selection_path_is_named_as_nix_names_it() {
    // Nix 2.8's wording, which nixpkgs' module tests match.
    let env = TestEnv::new();
    let err = env.fails(&["eval", "-E", "{ a = { x = 1; }; }", "-A", "a.b.c"], 2);
    assert!(
        err.contains("error: attribute 'b' in selection path 'a.b.c' not found"),
        "{err}"
    );
}

#[test]
fn a_function_is_called_only_with_args_or_along_a_path_as_in_nix() {
    // Each expected output checked with `nix-instantiate --eval` 2.8.
    let env = TestEnv::new();
    let f = "{ x ? 1 }: { a = x; }";
    assert_eq!(env.ok(&["eval", "-E", f]), "<LAMBDA>\n");
    assert_eq!(env.ok(&["eval", "-E", f, "-A", "a"]), "1\n");
    assert_eq!(
        env.ok(&["eval", "-E", "{ x ? 1 }: x", "--arg", "y", "2"]),
        "1\n"
    );
    assert_eq!(
        env.ok(&["eval", "-E", "{ x ? 1 }: x", "--arg", "x", "2"]),
        "2\n"
    );
}

#[test]
fn search_path_from_option_and_environment() {
    let env = TestEnv::new();
    env.write("lib1/util.nix", "40");
    env.write("lib2/more.nix", "2");
    let work = env.work();
    let out = env
        .kiln()
        .env("KILN_PATH", work.join("lib2"))
        .args([
            "eval",
            "-I",
            "mylib=lib1",
            "-E",
            "import <mylib/util.nix> + import <more.nix>",
        ])
        .output()
        .expect("run kiln");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    let err = env.fails(&["eval", "-E", "<nowhere>"], 2);
    assert!(
        err.contains("'nowhere' was not found in the search path"),
        "{err}"
    );
    // NIX_PATH comes after -I and KILN_PATH, as Nix puts it after -I.
    env.write("nixpath/nixpkgs/default.nix", "\"from NIX_PATH\"");
    env.write("kilnpath/nixpkgs/default.nix", "\"from KILN_PATH\"");
    let eval_nixpkgs = |kiln_path: Option<&str>| {
        let mut cmd = env.kiln();
        cmd.env(
            "NIX_PATH",
            format!("nixpkgs={}", work.join("nixpath/nixpkgs").display()),
        );
        if let Some(dir) = kiln_path {
            cmd.env("KILN_PATH", work.join(dir));
        }
        let out = cmd
            .args(["eval", "-E", "import <nixpkgs>"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(eval_nixpkgs(None), "\"from NIX_PATH\"\n");
    assert_eq!(eval_nixpkgs(Some("kilnpath")), "\"from KILN_PATH\"\n");
}

#[test]
fn show_trace_adds_the_builtin_frames() {
    let env = TestEnv::new();
    env.write(
        "t.nix",
        "let f = x: x.foo; in builtins.getAttr \"a\" { a = f {}; }\n",
    );
    let short = env.fails(&["eval", "t.nix"], 2);
    assert!(!short.contains("while calling the builtin"), "{short}");
    assert!(short.contains("--show-trace shows them"), "{short}");
    let full = env.fails(&["eval", "--show-trace", "t.nix"], 2);
    assert!(
        full.contains("while calling the builtin 'getAttr'"),
        "{full}"
    );
    // Anywhere on the line, and as Nix's setting.
    let full = env.fails(&["--show-trace", "eval", "t.nix"], 2);
    assert!(
        full.contains("while calling the builtin 'getAttr'"),
        "{full}"
    );
    let full = env.fails(&["eval", "t.nix", "--option", "show-trace", "true"], 2);
    assert!(
        full.contains("while calling the builtin 'getAttr'"),
        "{full}"
    );
}

#[test]
fn options_kiln_lacks_are_refused_naming_the_way() {
    let env = TestEnv::new();
    let err = env.fails(&["eval", "-E", "1", "--option", "store", "/nix/store"], 2);
    assert!(err.contains("--root DIR and --store-dir DIR"), "{err}");
}

#[test]
fn help_is_long_only_and_h_says_so() {
    let env = TestEnv::new();
    assert!(env.ok(&["eval", "--help"]).contains("Usage: kiln eval"));
    let err = env.fails(&["eval", "-h"], 2);
    assert!(err.contains("help is '--help'"), "{err}");
    assert!(!err.contains("use '-- -h'"), "{err}");
}

#[test]
fn errors_show_position_source_line_and_suggestion() {
    let env = TestEnv::new();
    env.write("bad.nix", "let\n  pkg = { name = \"x\"; };\nin pkg.nmae\n");
    let err = env.fails(&["eval", "bad.nix"], 2);
    assert!(
        err.contains("attribute 'nmae' missing; did you mean 'name'?"),
        "{err}"
    );
    assert!(err.contains("bad.nix:3:4"), "{err}");
    assert!(err.contains("in pkg.nmae"), "{err}");
    let err = env.fails(&["eval", "-E", "throw \"custom message\""], 2);
    assert!(err.contains("custom message"), "{err}");
}

#[test]
fn deep_and_runaway_recursion() {
    let env = TestEnv::new();
    assert_eq!(
        env.ok(&[
            "eval",
            "-E",
            "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 200000"
        ]),
        "200000\n"
    );
    assert_eq!(
        env.ok(&[
            "eval",
            "-E",
            "builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 1000000)"
        ]),
        "499999500000\n"
    );
    let err = env.fails(&["eval", "-E", "let f = n: 1 + f n; in f 0"], 2);
    assert!(
        err.contains("stack overflow (possible infinite recursion)"),
        "{err}"
    );
    let err = env.fails(&["eval", "-E", "9223372036854775807 + 1"], 2);
    assert!(err.contains("integer overflow"), "{err}");
}

/// Regression: an infinite recursion through plain variables
/// (`let x = y; y = x;`) was reported with no position at all, because a
/// variable reference carried no span. Nix points into the cycle; so does
/// kiln now.
#[test]
fn infinite_recursion_through_variables_says_where() {
    let env = TestEnv::new();
    let stderr = env.fails(&["eval", "-E", "let x = y; y = x; in x"], 2);
    assert!(
        stderr.contains("infinite recursion encountered"),
        "{stderr}"
    );
    assert!(stderr.contains("«string»:1:9"), "{stderr}");
    env.write("cycle.nix", "let\n  x = y;\n  y = x;\nin x\n");
    let stderr = env.fails(&["eval", "cycle.nix"], 2);
    assert!(stderr.contains("cycle.nix:2:7"), "{stderr}");
}

/// `kiln ARGS…` under `ulimit -v 800000` (about 780 MiB of address space).
fn run_with_little_address_space(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let cmd = env.kiln();
    let program = cmd.get_program().to_owned();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("ulimit -v 800000 && exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh.output().expect("run sh")
}

/// Regression: with less address space than the evaluator's 1 GiB stack,
/// `kiln eval -E 1+1` panicked ("could not start the evaluation thread",
/// exit 101). The evaluation, the deep-nesting parser and `kiln parse` now
/// take the largest stack the address space allows, and the recursion
/// limit follows the stack they got.
#[test]
fn little_address_space_is_no_crash() {
    let env = TestEnv::new();
    let text = |out: &std::process::Output| {
        format!(
            "{}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let out = run_with_little_address_space(&env, &["eval", "-E", "1+1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(out.stdout, b"2\n");
    // Deep nesting takes the parser's helper thread.
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    let out = run_with_little_address_space(&env, &["eval", "-E", &deep]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(out.stdout, b"1\n");
    let out = run_with_little_address_space(&env, &["parse", "-E", "1+1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Runaway recursion is still an error, not a crash, on the smaller stack.
    let out = run_with_little_address_space(&env, &["eval", "-E", "let f = n: 1 + f n; in f 0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stack overflow (possible infinite recursion)"),
        "{stderr}"
    );
}

/// The exit code is the kind of failure, the same in every command: the
/// store failing is 1 (it was 2 under `kiln eval`), the user's expression
/// 2; a rendered evaluation error says `error:` once.
#[test]
fn store_failures_exit_1_and_evaluation_errors_2() {
    let env = TestEnv::new();
    let not_a_dir = env.write("not-a-dir", "x");
    let run = |args: &[&str]| {
        env.kiln()
            .env("KILN_ROOT", &not_a_dir)
            .args(args)
            .output()
            .expect("run kiln")
    };
    for args in [
        &["eval", "--read-write-mode", "-E", "1"][..],
        &[
            "instantiate",
            "-E",
            "derivation { name = \"x\"; system = \"x\"; builder = \"x\"; }",
        ],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: opening the store at root "),
            "{stderr}"
        );
    }
    for args in [
        &["eval", "-E", "1 + \"x\""][..],
        &["instantiate", "-E", "1 + \"x\""],
    ] {
        let stderr = env.fails(args, 2);
        assert!(
            stderr.starts_with("error: cannot add"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    }
    // A wrong hash is the user's input, though the store found it.
    env.write("src/a", "a");
    let wrong = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let expr = format!("builtins.path {{ path = ./src; sha256 = \"{wrong}\"; }}");
    let stderr = env.fails(&["eval", "--read-write-mode", "-E", &expr], 2);
    assert!(stderr.contains("store path mismatch"), "{stderr}");
}

/// Regression: the parser's secondary labels ("first defined here") were
/// dropped on the way into `kiln eval`'s error; `kiln parse` showed them.
#[test]
fn parse_errors_show_their_secondary_labels() {
    let env = TestEnv::new();
    let stderr = env.fails(&["eval", "-E", "{ a = 1; a = 2; }"], 2);
    assert!(stderr.contains("attribute 'a' already defined"), "{stderr}");
    assert!(stderr.contains(" ::: «string»:1:3"), "{stderr}");
    assert!(stderr.contains("- first defined here"), "{stderr}");
    env.write("f.nix", "{ x, y, x }: x\n");
    let stderr = env.fails(&["eval", "f.nix"], 2);
    assert!(stderr.contains("first declared here"), "{stderr}");
}

/// The code an evaluation error ends with has a page, and the page's
/// example (run as it says) fails with that code.
#[test]
fn error_codes_are_explained() {
    let env = TestEnv::new();
    let stderr = env.fails(&["eval", "-E", "{ a = 1; }.b"], 2);
    assert!(
        stderr.contains("error code E005: 'kiln explain E005' says more"),
        "{stderr}"
    );
    let list = env.ok(&["explain"]);
    assert_eq!(list.lines().count(), 17, "{list}");
    for line in list.lines() {
        let code = line.split_whitespace().next().unwrap();
        let page = env.ok(&["explain", code]);
        assert!(page.starts_with(&format!("{code}: ")), "{page}");
        assert!(page.lines().all(|l| l.chars().count() <= 78), "{page}");
        // The example is the last line: `    kiln eval -E '…'`.
        let example = page.lines().last().unwrap().trim();
        let expr = example
            .strip_prefix("kiln eval -E '")
            .and_then(|e| e.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{example}"))
            .replace("'\\''", "'");
        let stderr = env.fails(&["eval", "--strict", "-E", &expr], 2);
        assert!(
            stderr.contains(&format!("error code {code}:")),
            "{code}: {expr}: {stderr}"
        );
    }
    assert_eq!(env.ok(&["explain", "e5"]), env.ok(&["explain", "E005"]));
    let err = env.fails(&["explain", "E099"], 2);
    assert!(err.contains("E001 to E017"), "{err}");
}
