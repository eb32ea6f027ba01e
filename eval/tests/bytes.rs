//! Strings are bytes, as in Nix (issue 11): every expected output below is
//! what `nix-instantiate --eval --strict` of Nix 2.8 prints, byte for byte,
//! for the same expression (checked with `od -c`).

use kiln_eval::{EvalOptions, Evaluation, OutputFormat};

/// The bytes `kiln eval --strict` prints for `text` (in `dir`, so that
/// `./lat1` is a file there holding `a\xe9b`), or the error's message.
fn eval_in(dir: &std::path::Path, text: &str, format: OutputFormat) -> Vec<u8> {
    let text = text.to_owned();
    let path = dir.join("test.nix");
    std::fs::write(&path, &text).unwrap();
    kiln_eval::run_with_big_stack(move || {
        let mut session = Evaluation::new(EvalOptions::default());
        let result = session
            .eval_source(&text, Some(&path), false)
            .and_then(|(_, v)| session.render_bytes(&v, format, true));
        match result {
            Ok(bytes) => bytes,
            Err(e) => format!("error: {e}").into_bytes(),
        }
    })
}

fn latin1_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lat1"), b"a\xe9b").unwrap();
    dir
}

#[track_caller]
fn same_as_nix(cases: &[(&str, &[u8])]) {
    let dir = latin1_dir();
    for (expr, nix) in cases {
        let got = eval_in(dir.path(), expr, OutputFormat::Nix);
        assert_eq!(
            got.escape_ascii().to_string(),
            nix.escape_ascii().to_string(),
            "{expr}"
        );
    }
}

#[test]
fn lengths_and_substrings_count_bytes() {
    same_as_nix(&[
        (
            r#"builtins.stringLength (builtins.substring 0 1 "é")"#,
            b"1",
        ),
        (r#"builtins.substring 0 1 "é""#, b"\"\xc3\""),
        (r#"builtins.substring 1 1 "é""#, b"\"\xa9\""),
        // Two halves make the character again.
        (
            r#"builtins.substring 0 1 "é" + builtins.substring 1 1 "é" == "é""#,
            b"true",
        ),
    ]);
}

#[test]
fn read_file_keeps_every_byte() {
    same_as_nix(&[
        ("builtins.readFile ./lat1", b"\"a\xe9b\""),
        ("builtins.stringLength (builtins.readFile ./lat1)", b"3"),
        (
            r#"builtins.hashString "sha256" (builtins.readFile ./lat1)"#,
            b"\"5941946d4bd1af61de964d7db669180b24808b2c60205c70df2b7cc3ecaefc2c\"",
        ),
        (
            r#"builtins.replaceStrings [ "a" ] [ "x" ] (builtins.readFile ./lat1)"#,
            b"\"x\xe9b\"",
        ),
        (r#""${builtins.readFile ./lat1}!""#, b"\"a\xe9b!\""),
        (
            r#"builtins.concatStringsSep "," [ (builtins.readFile ./lat1) "c" ]"#,
            b"\"a\xe9b,c\"",
        ),
    ]);
}

#[test]
fn regular_expressions_see_bytes() {
    same_as_nix(&[
        (r#"builtins.match "a.b" (builtins.readFile ./lat1)"#, b"[ ]"),
        (
            r#"builtins.match "a(.)b" (builtins.readFile ./lat1)"#,
            b"[ \"\xe9\" ]",
        ),
        (
            r#"builtins.split "." (builtins.substring 0 1 "é")"#,
            b"[ \"\" [ ] \"\" ]",
        ),
        (r#"builtins.match "(.)(.)" "é""#, b"[ \"\xc3\" \"\xa9\" ]"),
    ]);
}

#[test]
fn comparison_and_names_are_bytewise() {
    same_as_nix(&[
        (r#""é" < (builtins.readFile ./lat1)"#, b"false"),
        (r#"(builtins.readFile ./lat1) < "b""#, b"true"),
        (
            "{ ${builtins.readFile ./lat1} = 1; }",
            b"{ \"a\xe9b\" = 1; }",
        ),
        (
            "builtins.attrNames { ${builtins.readFile ./lat1} = 1; b = 2; }",
            b"[ \"a\xe9b\" \"b\" ]",
        ),
        (
            "{ ${builtins.readFile ./lat1} = 1; }.${builtins.readFile ./lat1}",
            b"1",
        ),
    ]);
}

#[test]
fn json_and_xml_write_the_bytes() {
    same_as_nix(&[
        (
            "builtins.toJSON (builtins.readFile ./lat1)",
            b"\"\\\"a\xe9b\\\"\"",
        ),
        (r#"builtins.fromJSON "\"\\u00e9\"""#, b"\"\xc3\xa9\""),
        (
            "builtins.toXML (builtins.readFile ./lat1)",
            b"\"<?xml version='1.0' encoding='utf-8'?>\\n<expr>\\n  <string value=\\\"a\xe9b\\\" />\\n</expr>\\n\"",
        ),
    ]);
    let dir = latin1_dir();
    assert_eq!(
        eval_in(dir.path(), "builtins.readFile ./lat1", OutputFormat::Raw),
        b"a\xe9b"
    );
    assert_eq!(
        eval_in(
            dir.path(),
            "[ (builtins.readFile ./lat1) ]",
            OutputFormat::Json
        ),
        b"[\"a\xe9b\"]"
    );
}

#[test]
fn a_derivation_refuses_bytes_that_are_not_utf8_instead_of_replacing_them() {
    let dir = latin1_dir();
    let got = eval_in(
        dir.path(),
        r#"(derivation { name = "x"; system = "x"; builder = "/b"; a = builtins.readFile ./lat1; }).drvPath"#,
        OutputFormat::Nix,
    );
    let got = String::from_utf8_lossy(&got);
    assert!(got.contains("is not valid UTF-8"), "{got}");
    assert!(got.contains("a\\xe9b"), "{got}");
}
