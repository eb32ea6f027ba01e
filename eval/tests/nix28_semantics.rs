//! Semantics found to differ from Nix 2.8 on code written elsewhere
//! (issue 11). Every expected value is what `nix-instantiate --eval
//! --strict` of Nix 2.8 prints for the same expression (positions from a
//! file, where Nix and kiln agree on `file`).

use kiln_eval::{EvalOptions, Evaluation};

/// Evaluate `text` strictly (as the file `path` when given), printed as
/// `nix-instantiate --eval --strict` prints it, or the error's message.
fn eval_at(text: &str, path: Option<&std::path::Path>) -> String {
    if let Some(path) = path {
        std::fs::write(path, text).unwrap();
    }
    let text = text.to_owned();
    let path = path.map(|p| p.to_path_buf());
    kiln_eval::run_with_big_stack(move || {
        match Evaluation::new(EvalOptions::default()).eval_source(&text, path.as_deref(), true) {
            Ok((printed, _)) => printed,
            Err(e) => format!("error: {e}"),
        }
    })
}

fn eval(text: &str) -> String {
    eval_at(text, None)
}

#[track_caller]
fn same_as_nix(cases: &[(&str, &str)]) {
    for (expr, nix) in cases {
        assert_eq!(eval(expr), *nix, "{expr}");
    }
}

#[test]
fn foldl_strict_forces_the_initial_accumulator_only_for_an_empty_list() {
    same_as_nix(&[
        ("builtins.foldl' (a: b: b) (throw \"no\") [ 1 ]", "1"),
        ("builtins.foldl' (a: b: a) (throw \"no\") [ ]", "error: no"),
    ]);
}

#[test]
fn replace_strings_forces_every_replacement() {
    same_as_nix(&[
        (
            "builtins.replaceStrings [ \"a\" ] [ (throw \"r\") ] \"bbb\"",
            "error: r",
        ),
        (
            "builtins.replaceStrings [ \"a\" \"b\" ] [ \"x\" (throw \"r\") ] \"aaa\"",
            "error: r",
        ),
    ]);
}

#[test]
fn equality_forces_elements_then_compares_identity() {
    same_as_nix(&[
        (
            "let x = { a = throw \"forced\"; }; in x == x",
            "error: forced",
        ),
        ("let x = [ (throw \"forced\") ]; in x == x", "error: forced"),
        // One level only: the very same inner set is equal unforced.
        ("let x = { a = { b = throw \"no\"; }; }; in x == x", "true"),
        ("let f = x: x; in [ f ] == [ f ]", "true"),
        ("let f = x: x; in { a = f; } == { a = f; }", "true"),
        ("let f = x: x; in f == f", "false"),
    ]);
}

#[test]
fn path_exists_of_a_file_followed_by_a_slash_is_false() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let d = dir.path().display();
    for (rest, nix) in [
        ("f/", "false"),
        ("f/.", "false"),
        ("f", "true"),
        ("d/", "true"),
        ("d/.", "true"),
    ] {
        let expr = format!("builtins.pathExists \"{d}/{rest}\"");
        assert_eq!(eval(&expr), nix, "{expr}");
    }
    // A path literal is normalised when parsed.
    assert_eq!(eval(&format!("builtins.pathExists {d}/f/.")), "true");
}

#[test]
fn attribute_positions_as_nix_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.nix");
    let pos = |text: &str| eval_at(text, Some(&file));
    let at = |column: u32| {
        format!(
            "{{ column = {column}; file = \"{}\"; line = 1; }}",
            file.display()
        )
    };
    assert_eq!(
        pos("builtins.unsafeGetAttrPos \"a\" (builtins.mapAttrs (n: v: v) { a = 1; })"),
        "null"
    );
    // listToAttrs: where the `value` was written.
    assert_eq!(
        pos(
            "builtins.unsafeGetAttrPos \"a\" (builtins.listToAttrs [ { name = \"a\"; value = 1; } ])"
        ),
        at(69)
    );
    // removeAttrs and intersectAttrs keep the positions.
    assert_eq!(
        pos(
            "let x = { a = 1; }; in builtins.unsafeGetAttrPos \"a\" (builtins.removeAttrs x [\"b\"])"
        ),
        at(11)
    );
    assert_eq!(
        pos("builtins.unsafeGetAttrPos \"a\" (builtins.intersectAttrs { a = 0; } { a = 1; })"),
        at(69)
    );
    assert_eq!(
        pos("builtins.unsafeGetAttrPos \"a\" ({ a = 1; } // { b = 2; })"),
        at(34)
    );
}

#[test]
fn split_keeps_an_empty_match_after_a_non_empty_one() {
    same_as_nix(&[
        (
            "builtins.split \"(.*)\" \"abc\"",
            "[ \"\" [ \"abc\" ] \"\" [ \"\" ] \"\" ]",
        ),
        (
            "builtins.split \"(a*)\" \"xaay\"",
            "[ \"\" [ \"\" ] \"x\" [ \"aa\" ] \"\" [ \"\" ] \"y\" [ \"\" ] \"\" ]",
        ),
        (
            "builtins.split \"a*\" \"baaac\"",
            "[ \"\" [ ] \"b\" [ ] \"\" [ ] \"c\" [ ] \"\" ]",
        ),
        (
            "builtins.split \"(b)|\" \"abc\"",
            "[ \"\" [ null ] \"a\" [ \"b\" ] \"\" [ null ] \"c\" [ null ] \"\" ]",
        ),
        ("builtins.split \",\" \"a,b\"", "[ \"a\" [ ] \"b\" ]"),
        ("builtins.match \"a.b\" \"a\\nb\"", "[ ]"),
    ]);
}

#[test]
fn from_toml_clamps_integers_beyond_64_bits() {
    same_as_nix(&[
        (
            "builtins.fromTOML \"a = 99999999999999999999\"",
            "{ a = 9223372036854775807; }",
        ),
        (
            "builtins.fromTOML \"a = -99999999999999999999\"",
            "{ a = -9223372036854775808; }",
        ),
        ("builtins.fromTOML \"a = 0x10\"", "{ a = 16; }"),
        ("builtins.fromTOML \"a = 1_000\"", "{ a = 1000; }"),
        ("builtins.fromTOML \"a = 1.5e3\"", "{ a = 1500; }"),
    ]);
    // A key given twice stays an error.
    assert!(
        eval("builtins.fromTOML \"a = 1\\na = 2\"")
            .starts_with("error: while parsing a TOML string"),
        "{}",
        eval("builtins.fromTOML \"a = 1\\na = 2\"")
    );
}

#[test]
fn inherited_attributes_are_where_nix_says() {
    // Nix 2.8 puts every inherited attribute where `inherit`, or its
    // `(e)`, ends (from `nix-instantiate --eval --strict` of this file).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inh.nix");
    let text = "let a = 1; b = 2; s = { c = 3; d = 4; }; in {\n  x = builtins.unsafeGetAttrPos \"b\" { inherit a   b; };\n  y = builtins.unsafeGetAttrPos \"d\" { inherit (s)  c   d; };\n  z = builtins.unsafeGetAttrPos \"a\" { inherit\n    a; };\n  v = builtins.unsafeGetAttrPos \"a\" { a = 1; };\n}\n";
    let f = file.display();
    assert_eq!(
        eval_at(text, Some(&file)),
        format!(
            "{{ v = {{ column = 39; file = \"{f}\"; line = 6; }}; x = {{ column = 46; file = \"{f}\"; line = 2; }}; y = {{ column = 50; file = \"{f}\"; line = 3; }}; z = {{ column = 46; file = \"{f}\"; line = 4; }}; }}"
        )
    );
}

#[test]
fn argument_errors_name_the_function_as_nix_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.nix");
    let f = file.display();
    assert_eq!(
        eval_at("let f = { a }: a; in f { }\n", Some(&file)),
        format!("error: 'f' at {f}:1:9 called without required argument 'a'")
    );
    assert_eq!(
        eval_at("({ a }: a) { a = 1; b = 2; }\n", Some(&file)),
        format!("error: anonymous function at {f}:1:2 called with unexpected argument 'b'")
    );
}

#[test]
fn assertion_failures_show_the_condition_as_nix_2_8_prints_it() {
    // Nix 2.8's `Expr::show`: every compound expression parenthesised,
    // `<`, `-`, `*`, `/` and unary minus as the calls they desugar to.
    let cases: &[(&str, &str)] = &[
        ("1 == 2", "(1 == 2)"),
        ("(1 == 2) && true", "((1 == 2) && true)"),
        ("!true", "(! true)"),
        ("1 + 1 == 3", "((1 + 1) == 3)"),
        ("(x: x) 1 == 2", "(((x: x) 1) == 2)"),
        ("{a=1;}.a == 2", "(({ a = 1; }).a == 2)"),
        ("1 < 0", "(__lessThan 1 0)"),
        ("1 <= 0", "(! (__lessThan 0 1))"),
        ("1 > 2", "(__lessThan 2 1)"),
        ("1 >= 2", "(! (__lessThan 1 2))"),
        ("2 * 3 / 1 == 0", "((__div (__mul 2 3) 1) == 0)"),
        ("-1 == 0", "((__sub 0 1) == 0)"),
        ("\"a${\"b\"}c\" == 1", "((\"a\" + \"b\" + \"c\") == 1)"),
        ("[1 2] == []", "([ (1) (2) ] == [ ])"),
        ("{a=1;} ? b", "(({ a = 1; }) ? b)"),
        (
            "({a, b ? 1, ...}@c: a) == 1",
            "(({ a, b ? 1, ... } @ c: a) == 1)",
        ),
        ("(let a = 1; in a) == 2", "((let a = 1; in a) == 2)"),
        ("(with {}; 1) == 2", "((with { }; 1) == 2)"),
        (
            "(if true then 1 else 2) == 2",
            "((if true then 1 else 2) == 2)",
        ),
        (
            "{a.b = 1;}.a.b or 2 == 3",
            "(({ a = { b = 1; }; }).a.b or (2) == 3)",
        ),
        (
            "rec { inherit true; c = 1; ${\"d\"} = 2; } == 1",
            "(rec { c = 1; d = 2; inherit true ; } == 1)",
        ),
        (
            "let x = {}; in { inherit (x) a b; c = 1; } == 1",
            "({ a = (x).a; b = (x).b; c = 1; } == 1)",
        ),
        (
            "{ \"a b\" = 1; ${toString 1} = 2; } == 1",
            "({ \"a b\" = 1; \"${(toString 1)}\" = 2; } == 1)",
        ),
        ("(x@{}: 1) == 1", "(({  } @ x: 1) == 1)"),
        ("\"\\${x}\" == 1", "(\"\\${x}\" == 1)"),
        ("1.5 == 2", "(1.5 == 2)"),
        ("true -> false", "(true -> false)"),
        ("{} // {} == 1", "(({ } // { }) == 1)"),
        ("http://x == 1", "(\"http://x\" == 1)"),
    ];
    for (cond, nix) in cases {
        let expr = if cond.starts_with("let x") {
            // The `let` goes around the assertion.
            format!(
                "let x = {{}}; in assert {}; 1",
                &cond["let x = {}; in ".len()..]
            )
        } else {
            format!("assert {cond}; 1")
        };
        assert_eq!(
            eval(&expr),
            format!("error: assertion '{nix}' failed"),
            "{cond}"
        );
    }
}
