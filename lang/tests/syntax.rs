//! The parser on tricky inputs, checked through the S-expression printing
//! (one `check` helper, so an AST change touches one place) and through
//! rendered errors. Expected results were cross-checked against
//! `nix-instantiate --parse` / `--eval` (Nix 2.8).

use kiln_lang::ast::{ExprKind, StrPart};
use kiln_lang::{Interner, SourceMap};

fn parse(src: &str) -> Result<String, String> {
    let mut map = SourceMap::new();
    let file = map.add("t.nix", None, src.to_string());
    let mut names = Interner::new();
    match kiln_lang::parse(file, map.text(file), &mut names) {
        Ok(e) => Ok(kiln_lang::sexpr::to_sexpr(&e, &names)),
        Err(err) => Err(err.to_diagnostic().render(&map)),
    }
}

#[track_caller]
fn check(src: &str, expected: &str) {
    match parse(src) {
        Ok(got) => assert_eq!(got, expected, "for input {src:?}"),
        Err(err) => panic!("{src:?} failed to parse:\n{err}"),
    }
}

#[track_caller]
fn check_err(src: &str, expected_part: &str) {
    match parse(src) {
        Ok(got) => panic!("{src:?} parsed as {got}, expected an error"),
        Err(err) => assert!(
            err.contains(expected_part),
            "error for {src:?} lacks {expected_part:?}:\n{err}"
        ),
    }
}

/// The literal text of a string expression without interpolation.
fn string_value(src: &str) -> String {
    let mut map = SourceMap::new();
    let file = map.add("t.nix", None, src.to_string());
    let mut names = Interner::new();
    let e = kiln_lang::parse(file, map.text(file), &mut names).expect("parses");
    match &e.kind {
        ExprKind::Str(parts) => parts
            .iter()
            .map(|p| match p {
                StrPart::Literal(s) => s.to_string(),
                StrPart::Interp(_) => "<interp>".to_string(),
            })
            .collect(),
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn numbers() {
    check("123", "123");
    check("1.5", "1.5");
    check("1.", "1.0");
    check(".5", "0.5");
    check("1.e3", "1000.0");
    check("2.5E-1", "0.25");
    // No float without a dot in Nix 2.8: `1e3` is `1` applied to `e3`.
    check("e3: 1e3", "(lambda e3 (call 1 e3))");
    // `a.5` is `a` applied to `.5`.
    check("a: a.5", "(lambda a (call a 0.5))");
    check("9223372036854775807", "9223372036854775807");
    check_err(
        "9223372036854775808",
        "invalid integer '9223372036854775808'",
    );
}

#[test]
fn unary_minus_and_precedence() {
    check("-1 - -2", "(- (neg 1) (neg 2))");
    check("1 - 2 - 3", "(- (- 1 2) 3)");
    check("1 + 2 * 3", "(+ 1 (* 2 3))");
    check("a: -a.b", "(lambda a (neg (. a b)))");
    check("f: -f 1", "(lambda f (neg (call f 1)))");
    // `!` binds looser than `+` but tighter than `==`.
    check("a: !a + 1", "(lambda a (not (+ a 1)))");
    check("a: !a == true", "(lambda a (== (not a) true))");
    check("a: b: a -> b -> a", "(lambda a (lambda b (-> a (-> b a))))");
    check("a: b: a || b && a", "(lambda a (lambda b (|| a (&& b a))))");
    check("a: b: a // b // a", "(lambda a (lambda b (// a (// b a))))");
    check("[1] ++ [2] ++ [3]", "(++ (list 1) (++ (list 2) (list 3)))");
    check("a: a ? b ++ [1]", "(lambda a (++ (? a b) (list 1)))");
    check("a: -a ? b", "(lambda a (? (neg a) b))");
    check("a: a ? b ? c", "(lambda a (? (? a b) c))");
    check("1 < 2 == true", "(== (< 1 2) true)");
    check_err("1 == 2 == 3", "unexpected '=='");
    check_err("1 < 2 < 3", "unexpected '<'");
}

#[test]
fn lambdas_and_formals() {
    check("x: y: x", "(lambda x (lambda y x))");
    check(
        "{ a ? 1, ... }@args: a",
        "(lambda (formals (a 1) ... @args) a)",
    );
    check("args@{ ... }: args", "(lambda (formals ... @args) args)");
    check("{ a, b ? a }: b", "(lambda (formals a (b a)) b)");
    check("{ a, }: a", "(lambda (formals a) a)");
    check("{}: 1", "(lambda (formals) 1)");
    check("{ }@x: x", "(lambda (formals @x) x)");
    check_err("{ a, a }: a", "duplicate formal function argument 'a'");
    check_err("a@{ a }: a", "duplicate formal function argument 'a'");
    check_err("{ ..., a }: a", "'...' must come last");
    check_err("{ a } ", "expected ':'");
}

#[test]
fn uris_versus_lambdas() {
    check("x:x", "x:x");
    check("x: x", "(lambda x x)");
    check(
        "[ https://example.org/a?b=c a:b ]",
        "(list https://example.org/a?b=c a:b)",
    );
}

#[test]
fn or_as_identifier_and_default() {
    check("a: c: a.b or c", "(lambda a (lambda c (. a b (or c))))");
    check("a: a.or", "(lambda a (. a or))");
    check("a: a.b.or or 1", "(lambda a (. a b or (or 1)))");
    check("{ or = 1; }", "(attrs (or 1))");
    check("let or = 1; in 2", "(let ((or 1)) 2)");
    // Backwards compatibility: `f or` applies `f` to the variable `or`.
    check(
        "let or = 1; f = x: x; in f or",
        "(let ((or 1) (f (lambda x x))) (call f or))",
    );
    check(
        "a: b: a.x or b.y or 3",
        "(lambda a (lambda b (. a x (or (. b y (or 3))))))",
    );
    check_err("a: a or", "undefined variable 'or'");
}

#[test]
fn sets_and_bindings() {
    check("rec { }", "(rec-attrs)");
    check("rec { a = 1; b = a; }", "(rec-attrs (a 1) (b a))");
    check(
        "{ a.b.c = 1; a.d = 2; }",
        "(attrs (a (attrs (b (attrs (c 1))) (d 2))))",
    );
    check(
        "{ a = { x = 1; }; a.y = 2; }",
        "(attrs (a (attrs (x 1) (y 2))))",
    );
    check(
        "{ a.y = 2; a = { x = 1; }; }",
        "(attrs (a (attrs (y 2) (x 1))))",
    );
    check(
        "x: { ${x} = 1; \"s\" = 2; ${\"t\"} = 3; \"u${x}\" = 4; }",
        "(lambda x (attrs (s 2) (t 3) (${x} 1) (${(str \"u\" x)} 4)))",
    );
    check(
        "x: { a.${x}.c = 1; }",
        "(lambda x (attrs (a (attrs (${x} (attrs (c 1)))))))",
    );
    check(
        "x: { inherit x; inherit (x) a b; }",
        "(lambda x (attrs (x inherit) (a (inherit-from x)) (b (inherit-from x))))",
    );
    check("let { body = 1; }", "(legacy-let (body 1))");
    check("let in 1", "(let () 1)");
    check_err("{ a = 1; a = 2; }", "attribute 'a' already defined");
    check_err("{ a.b = 1; a.b = 2; }", "attribute 'a.b' already defined");
    check_err("{ a = 1; a.b = 2; }", "attribute 'a.b' already defined");
    check_err(
        "x: let ${x} = 1; in 2",
        "dynamic attributes not allowed in let",
    );
    check_err(
        "x: { inherit ${x}; }",
        "dynamic attributes not allowed in inherit",
    );
}

#[test]
fn selects_and_has_attr() {
    check("a: a.b.c", "(lambda a (. a b c))");
    check("a: a.\"b c\".${\"d\"}", "(lambda a (. a \"b c\" d))");
    check("a: x: a.${x}", "(lambda a (lambda x (. a ${x})))");
    check("a: a ? b.c", "(lambda a (? a b c))");
    check("{ a = 1; }.a", "(. (attrs (a 1)) a)");
    check("f: x: f x.y", "(lambda f (lambda x (call f (. x y))))");
}

#[test]
fn keywords_and_control() {
    check("with {}; x", "(with (attrs) x)");
    check("assert true; 1", "(assert true 1)");
    check("if true then 1 else 2", "(if true 1 2)");
    check("if-x: if-x", "(lambda if-x if-x)");
    check_err("let if = 1; in if", "unexpected 'if'");
}

#[test]
fn paths() {
    check("./a", "./a");
    check("../a/b.nix", "../a/b.nix");
    check("/a/b", "/a/b");
    check("a/b", "a/b");
    check("~/a", "~/a");
    check("<nixpkgs/lib>", "<nixpkgs/lib>");
    check("x: ./a/${x}.nix", "(lambda x (path \"./a/\" x \".nix\"))");
    check("x: /${x}", "(lambda x (path \"/\" x))");
    check("x: ~/${x}/b", "(lambda x (path \"~/\" x \"/b\"))");
    check("x: ./a.${x}", "(lambda x (path \"./a.\" x))");
    check("x: ./a//${x}", "(lambda x (path \"./a//\" x))");
    check("1/2", "1/2");
    check_err("/nix/store/", "path has a trailing slash");
    check_err("x: ./a/${x}/", "path has a trailing slash");
    check_err("./a//b", "expected '${'");
}

#[test]
fn strings_and_escapes() {
    assert_eq!(string_value(r#""a\"b\\c\n\t\r\$x""#), "a\"b\\c\n\t\r$x");
    assert_eq!(string_value(r#""$${x}""#), "$${x}");
    assert_eq!(string_value(r#""\${x}""#), "${x}");
    assert_eq!(string_value(r#""$\{x}""#), "${x}");
    assert_eq!(string_value("\"a$\""), "a$");
    assert_eq!(string_value("\"a\r\nb\rc\""), "a\nb\nc");
    check(r#""a${"b${"c"}"}d""#, r#"(str "a" (str "b" "c") "d")"#);
    check(r#""${"\${"}""#, r#"(str "\${")"#);
    check_err("\"abc", "unterminated string");
}

#[test]
fn indented_strings() {
    // Minimum indentation over lines with content; the first line after
    // `''` is dropped when empty; a final whitespace-only line is dropped.
    assert_eq!(string_value("''\n    a\n      b\n  ''"), "a\n  b\n");
    assert_eq!(string_value("''\n  a\n\n  b\n''"), "a\n\nb\n");
    assert_eq!(string_value("''  a\n  b''"), "a\nb");
    assert_eq!(string_value("''\n  a\n  b ''"), "a\nb ");
    // Tabs are not indentation.
    assert_eq!(string_value("''\n\ta\n  b\n''"), "\ta\n  b\n");
    // Escapes.
    assert_eq!(string_value("''a'''b''"), "a''b");
    assert_eq!(string_value("''a''$b''"), "a$b");
    assert_eq!(string_value("''a''\\nb''"), "a\nb");
    assert_eq!(string_value("''$${x}''"), "$${x}");
    // An escape ends a line's indentation: here it makes the minimum 0.
    assert_eq!(string_value("''\n  a\n''\\n  b\n  ''"), "  a\n\n  b\n");
    // But an escaped newline keeps the next line at its start.
    assert_eq!(
        string_value("''\n    a\n    ''\\n    b\n  c\n''"),
        "  a\n  \n  b\nc\n"
    );
    // Only spaces: all stripped.
    assert_eq!(string_value("''  \n     \n''"), "\n");
    check(
        "x: ''\n  a ${x}\n  b\n''",
        r#"(lambda x (str "a " x "\nb\n"))"#,
    );
    check_err("''abc", "unterminated indented string");
}

#[test]
fn comments() {
    check("/* a */ 1 # b\n + /* c */ 2", "(+ 1 2)");
    check_err("1 /* open", "unterminated comment");
}

#[test]
fn undefined_variables() {
    check_err("x: y", "undefined variable 'y'");
    check_err("let a = b; in a", "undefined variable 'b'");
    check_err("rec { inherit b; a = 1; }", "undefined variable 'b'");
    check_err("rec { a = 1; inherit a; }", "attribute 'a' already defined");
    check(
        "rec { b = 1; c = { inherit b; }; }",
        "(rec-attrs (b 1) (c (attrs (b inherit))))",
    );
    check("with {}; y", "(with (attrs) y)");
    check("builtins.map", "(. builtins map)");
    check("__curPos", "__curPos");
    check("__head [1]", "(call __head (list 1))");
    check_err("__map", "undefined variable '__map'");
    check(
        "let a = 1; b = { inherit a; }; in b",
        "(let ((a 1) (b (attrs (a inherit)))) b)",
    );
}

#[test]
fn errors_point_at_the_problem() {
    let err = parse("{\n  a = );\n}").unwrap_err();
    assert!(
        err.contains("unexpected ')', expected an expression"),
        "{err}"
    );
    assert!(err.contains("t.nix:2:7"), "{err}");
    assert!(err.contains("2 |   a = );"), "{err}");
    assert!(err.contains("  |       ^"), "{err}");
    check_err("123 é 4", "unexpected character 'é'");
    check_err("(1", "expected ')'");
    check_err("[1 2", "expected a list element or ']'");
    check_err("1 1)", "expected end of file or an operator");
    check_err("", "unexpected end of file");
}

#[test]
fn a_missing_semicolon_points_at_the_end_of_its_line() {
    // The next binding was swallowed as an argument until its `=`.
    let err = parse("let\n  a = f 1 # one\n  b = 2;\nin a").unwrap_err();
    assert!(err.contains("missing ';' at the end of this line"), "{err}");
    assert!(err.contains("t.nix:2:10"), "{err}");
    assert!(err.contains("- unexpected '='"), "{err}");
    // The set closes on the next line.
    let err = parse("{\n  a = 1\n}").unwrap_err();
    assert!(err.contains("t.nix:2:8"), "{err}");
    // On one line there is no line to blame: the token is the problem.
    check_err(
        "{ a = 1 }",
        "unexpected '}', expected ';' after the attribute's value",
    );
    check_err("{ a = 1 b = 2; }", "unexpected '=', expected ';'");
}

#[test]
fn a_missing_semicolon_is_found_inside_the_value() {
    // The swallowed name sits at the end of a function's body, of an
    // operator's right side, of an `if`'s else branch.
    for (src, at) in [
        ("rec {\n  a = x: x\n  b = 2;\n}", "t.nix:2:11"),
        ("{\n  a = 1 + f\n  b = 2;\n}", "t.nix:2:12"),
        ("{\n  a = if c then 1 else g\n  b = 2;\n}", "t.nix:2:25"),
        ("let\n  a = with s; x\n  b.c = 2;\nin a", "t.nix:2:16"),
    ] {
        let err = parse(src).unwrap_err();
        assert!(
            err.contains("missing ';' at the end of this line"),
            "{src}: {err}"
        );
        assert!(err.contains(at), "{src}: {err}");
    }
}

#[test]
fn a_missing_semicolon_after_inherit_points_at_its_line() {
    let err = parse("{\n  inherit a c\n  b = 2;\n}").unwrap_err();
    assert!(err.contains("missing ';' at the end of this line"), "{err}");
    assert!(err.contains("t.nix:2:14"), "{err}");
    let err = parse("{\n  inherit (s) a\n  b.c = 2;\n}").unwrap_err();
    assert!(err.contains("t.nix:2:16"), "{err}");
    // One name only: the `;` belongs after `inherit (s)`.
    let err = parse("{\n  inherit (s)\n  b = 2;\n}").unwrap_err();
    assert!(err.contains("t.nix:2:14"), "{err}");
    check_err(
        "{ inherit a b = 2; }",
        "unexpected '=', expected an attribute name or ';'",
    );
}

#[test]
fn a_missing_semicolon_after_with_or_assert_points_at_its_line() {
    for src in ["with builtins\n[ 1 ]\n", "assert true\nx\n"] {
        let err = parse(src).unwrap_err();
        assert!(
            err.contains("missing ';' at the end of this line"),
            "{src}: {err}"
        );
        assert!(err.contains("t.nix:1:"), "{src}: {err}");
    }
    let err = parse("with builtins\n[ 1 ]\n").unwrap_err();
    assert!(err.contains("t.nix:1:14"), "{err}");
    check_err("with s x", "unexpected end of file, expected ';'");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for (open, close) in [("(", ")"), ("[", "]"), ("{a=", ";}")] {
        let src = format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
        check_err(&src, "nested too deeply");
    }
    check_err(&"x: ".repeat(10_000), "nested too deeply");
    // Well below the limit works, even on a 2 MiB test thread.
    let src = format!("{}1{}", "(".repeat(1500), ")".repeat(1500));
    check(&src, "1");
}

#[test]
fn long_chains_work() {
    let sum = format!("1{}", " + 1".repeat(100_000));
    let mut map = SourceMap::new();
    let file = map.add("t.nix", None, sum);
    let mut names = Interner::new();
    let e = kiln_lang::parse(file, map.text(file), &mut names).expect("long + chain");
    assert!(matches!(e.kind, ExprKind::Binary(_)));
    drop(e);
    for src in [
        format!("[1]{}", " ++ [1]".repeat(100_000)),
        format!("x: x{}", ".a".repeat(100_000)),
        format!("f: f{}", " 1".repeat(100_000)),
        format!("{}1", "-".repeat(100_000)),
        format!("{}true", "!".repeat(100_000)),
    ] {
        let file = map.add("t.nix", None, src);
        kiln_lang::parse(file, map.text(file), &mut names).expect("long chain parses");
    }
}
