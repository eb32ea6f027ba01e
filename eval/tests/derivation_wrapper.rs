//! `derivation` (the lazy wrapper around `derivationStrict`) against Nix
//! 2.8's `derivation.nix`: what forcing it evaluates, the attributes of
//! the result and of each output, and its errors.
//!
//! Every expected value was checked with Nix 2.8
//! (`NIX_REMOTE= nix-instantiate --eval --strict -E '…'`); store paths are
//! Nix's with the store under `/nix/store` (dry run, nothing written).

use std::rc::Rc;

use kiln_eval::{EvalOptions, EvalStore, Evaluation, KilnEvalStore};
use kiln_store::StoreDir;

/// Evaluate `expr` strictly and print it as `nix-instantiate --eval
/// --strict` does; an error is returned as its rendered message.
fn eval(expr: &str) -> Result<String, String> {
    eval_printing(expr, true)
}

/// Evaluate `expr` to weak head normal form and print it as
/// `nix-instantiate --eval` does: what is not evaluated yet is `<CODE>`.
fn eval_lazy(expr: &str) -> Result<String, String> {
    eval_printing(expr, false)
}

fn eval_printing(expr: &str, strict: bool) -> Result<String, String> {
    let expr = expr.to_owned();
    kiln_eval::run_with_big_stack(move || {
        let dir = StoreDir::new("/nix/store").expect("store dir");
        let store: Rc<dyn EvalStore> = Rc::new(KilnEvalStore::dry_run(dir));
        let mut session = Evaluation::with_store(EvalOptions::default(), store);
        let result = session.eval_source(&expr, None, strict);
        result
            .map(|(text, _)| text)
            .map_err(|e| session.render_error(&e))
    })
}

fn ok(expr: &str) -> String {
    eval(expr).unwrap_or_else(|e| panic!("{expr}\nfailed: {e}"))
}

fn error(expr: &str) -> String {
    match eval(expr) {
        Ok(v) => panic!("{expr}\nshould fail, gave {v}"),
        Err(e) => e,
    }
}

const AB: &str = r#"{ name = "a"; builder = "/bin/sh"; system = "x"; }"#;

#[test]
fn only_the_set_and_the_output_names_are_forced() {
    assert_eq!(
        ok(r#"(derivation { name = throw "x"; }).type"#),
        r#""derivation""#
    );
    let d = r#"derivation { name = throw "n"; builder = throw "b"; system = "x"; }"#;
    assert_eq!(
        ok(&format!(
            "let d = {d}; in [ d.type d.outputName (builtins.attrNames d.drvAttrs) \
             (builtins.attrNames d) (d ? outputs) (d.drvAttrs ? outputs) ]"
        )),
        r#"[ "derivation" "out" [ "builder" "name" "system" ] [ "all" "builder" "drvAttrs" "drvPath" "name" "out" "outPath" "outputName" "system" "type" ] false false ]"#
    );
    assert_eq!(
        ok(r#"(derivation { name = "n"; builder = throw "b"; }).name"#),
        r#""n""#
    );
    // The paths do run derivationStrict, which forces the builder.
    let drv = r#"derivation { name = "n"; builder = throw "b"; system = "x"; }"#;
    assert!(error(&format!("({drv}).drvPath")).contains("b"));
    assert!(error(&format!("({drv}).outPath")).contains("b"));
    assert_eq!(
        ok(concat!(
            r#"builtins.length (builtins.filter (o: o.outputName == "dev") "#,
            r#"(derivation { name = throw "n"; outputs = [ "out" "dev" ]; }).all)"#
        )),
        "1"
    );
}

#[test]
fn each_output_is_a_set_sharing_one_derivation() {
    let d = r#"derivation { name = "a"; builder = "/bin/sh"; system = "x"; outputs = [ "out" "dev" ]; }"#;
    assert_eq!(
        ok(&format!(
            "let d = {d}; in [ d.dev.outputName d.out.outputName d.outputName (builtins.length d.all) \
             (map (o: o.outputName) d.all) (d.dev.drvPath == d.drvPath) (d.dev.outPath != d.outPath) \
             d.out.out.dev.outputName d.dev.dev.out.outPath d.drvPath d.dev.outPath d.outPath \
             (builtins.elemAt d.all 1).outPath d.drvAttrs.outputs ]"
        )),
        concat!(
            r#"[ "dev" "out" "out" 2 [ "out" "dev" ] true true "dev" "/nix/store/p1vvsska9xdy0pgdjfcg0zcn54xsvx9b-a" "#,
            r#""/nix/store/9i16pgg7s50rmwnb0hj7hkyfjz1fi7lc-a.drv" "/nix/store/gqlnmlw49vf82if469f34bk8i241y1b9-a-dev" "#,
            r#""/nix/store/p1vvsska9xdy0pgdjfcg0zcn54xsvx9b-a" "/nix/store/gqlnmlw49vf82if469f34bk8i241y1b9-a-dev" [ "out" "dev" ] ]"#
        )
    );
    // Every output set has the same attributes.
    let names = "[ \"all\" \"builder\" \"dev\" \"drvAttrs\" \"drvPath\" \"name\" \"out\" \"outPath\" \"outputName\" \"outputs\" \"system\" \"type\" ]";
    assert_eq!(ok(&format!("builtins.attrNames ({d})")), names);
    assert_eq!(ok(&format!("builtins.attrNames ({d}).dev")), names);
    // The first output listed is the value, whatever its name.
    assert_eq!(
        ok(
            r#"let d = derivation { name = "a"; builder = "/bin/sh"; system = "x"; outputs = [ "b" "a" ]; }; in [ d.outputName d.outPath d.a.outPath d.b.outPath ]"#
        ),
        r#"[ "b" "/nix/store/zr8y498fflyw40lbzjqhn1knpwy95h83-a-b" "/nix/store/a7cidw5minsc0098906dgjrn4dgzpkqy-a-a" "/nix/store/zr8y498fflyw40lbzjqhn1knpwy95h83-a-b" ]"#
    );
}

#[test]
fn paths_carry_the_context_nix_gives_them() {
    assert_eq!(
        ok(&format!(
            "let d = derivation {AB}; in [ (builtins.getContext d.drvPath) (builtins.getContext d.outPath) ]"
        )),
        r#"[ { "/nix/store/l9ldjc53ry43x24hvq73jx7dx0489mhj-a.drv" = { allOutputs = true; }; } { "/nix/store/l9ldjc53ry43x24hvq73jx7dx0489mhj-a.drv" = { outputs = [ "out" ]; }; } ]"#
    );
}

#[test]
fn the_wrapper_attributes_override_the_users() {
    assert_eq!(
        ok(
            r#"let d = derivation { name = "a"; builder = "/bin/sh"; system = "x"; type = "x"; outputName = "y"; all = 1; }; in [ d.type d.outputName (builtins.isList d.all) d.drvAttrs.type ]"#
        ),
        r#"[ "derivation" "out" true "x" ]"#
    );
    // Outputs named like the wrapper's attributes: the wrapper wins, `all`
    // still lists every output.
    assert_eq!(
        ok(
            r#"let d = derivation { outputs = [ "a" "all" "type" "b" ]; x = 1; }; in [ (map (x: x.outputName) d.all) d.type d.a.outputName d.b.outputName (builtins.attrNames d) ]"#
        ),
        r#"[ [ "a" "all" "type" "b" ] "derivation" "a" "b" [ "a" "all" "b" "drvAttrs" "drvPath" "outPath" "outputName" "outputs" "type" "x" ] ]"#
    );
}

#[test]
fn duplicate_outputs_are_kept_until_derivation_strict_rejects_them() {
    let d = r#"derivation { name = "a"; builder = "/bin/sh"; system = "x"; outputs = [ "a" "b" "a" ]; }"#;
    assert_eq!(
        ok(&format!("map (o: o.outputName) ({d}).all")),
        r#"[ "a" "b" "a" ]"#
    );
    assert_eq!(
        ok(&format!("builtins.length (builtins.attrNames ({d}))")),
        "12"
    );
    assert!(error(&format!("({d}).drvPath")).contains("duplicate derivation output 'a'"));
}

#[test]
fn builtins_derivation_is_the_same_function_shaped_like_nixs_lambda() {
    assert_eq!(
        ok(&format!(
            "let a = {AB}; in [ (derivation a).drvPath (builtins.derivation a).drvPath \
             (builtins.attrNames (builtins.derivation a)) (builtins.typeOf builtins.derivation) \
             (builtins.functionArgs builtins.derivation) (builtins.functionArgs derivation) ]"
        )),
        r#"[ "/nix/store/l9ldjc53ry43x24hvq73jx7dx0489mhj-a.drv" "/nix/store/l9ldjc53ry43x24hvq73jx7dx0489mhj-a.drv" [ "all" "builder" "drvAttrs" "drvPath" "name" "out" "outPath" "outputName" "system" "type" ] "lambda" { outputs = true; } { outputs = true; } ]"#
    );
    assert_eq!(
        ok("[ derivation builtins.derivation ]"),
        "[ <LAMBDA> <LAMBDA> ]"
    );
    assert_eq!(
        ok("builtins.toXML derivation"),
        r#""<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <function>\n    <attrspat ellipsis=\"1\" name=\"drvAttrs\">\n      <attr name=\"outputs\" />\n    </attrspat>\n  </function>\n</expr>\n""#
    );
}

#[test]
fn bad_arguments_and_outputs_are_reported_like_nix() {
    assert!(error("derivation 1").contains("value is an integer while a set was expected"));
    assert!(
        error(r#"derivation { outputs = "out"; }"#)
            .contains("value is a string while a list was expected")
    );
    assert!(
        error("derivation { outputs = [ 1 ]; }")
            .contains("value is an integer while a string was expected")
    );
    assert!(error("derivation { outputs = [ ]; }").contains("list index 0 is out of bounds"));
    assert!(error(r#"derivation { outputs = [ "out" (throw "t") ]; }"#).contains("t"));
    assert!(
        error(r#"let s = builtins.toFile "x" "y"; in derivation { outputs = [ "a${s}" ]; }"#)
            .contains("is not allowed to refer to a store path")
    );
}

#[test]
fn what_is_evaluated_already_matches_nix() {
    // Lazy printing shows which attributes are evaluated: in Nix the first
    // output's attribute is (`head` forced it), `all`, the other outputs
    // and the paths are not; forcing an element of `all` evaluates the
    // output's attribute too (they are one thunk).
    let d =
        r#"(derivation { name = "x"; system = "s"; builder = "/b"; outputs = [ "out" "dev" ]; })"#;
    let lazy = |expr: &str| eval_lazy(expr).unwrap_or_else(|e| panic!("{expr}\nfailed: {e}"));
    assert_eq!(
        lazy(d),
        r#"{ all = <CODE>; builder = "/b"; dev = <CODE>; drvAttrs = { builder = "/b"; name = "x"; outputs = [ "out" "dev" ]; system = "s"; }; drvPath = <CODE>; name = "x"; out = «repeated»; outPath = <CODE>; outputName = "out"; outputs = «repeated»; system = "s"; type = "derivation"; }"#
    );
    assert_eq!(
        lazy(&format!(
            "let d = {d}; in builtins.seq (builtins.elemAt d.all 1).type d"
        )),
        r#"{ all = [ <CODE> { all = «repeated»; builder = "/b"; dev = «repeated»; drvAttrs = { builder = "/b"; name = "x"; outputs = [ "out" "dev" ]; system = "s"; }; drvPath = <CODE>; name = "x"; out = «repeated»; outPath = <CODE>; outputName = "dev"; outputs = «repeated»; system = "s"; type = "derivation"; } ]; builder = "/b"; dev = «repeated»; drvAttrs = «repeated»; drvPath = <CODE>; name = "x"; out = «repeated»; outPath = <CODE>; outputName = "out"; outputs = «repeated»; system = "s"; type = "derivation"; }"#
    );
}

#[test]
fn the_users_attributes_keep_their_positions() {
    // Nix: lines and columns of the literal (the wrapper's own attributes
    // point into derivation.nix there; kiln has no source for them).
    let expr = "let d = derivation { name = \"a\";\n outputs = [ \"out\" \"dev\" ]; }; in \
                map (p: [ p.line p.column ]) [ (builtins.unsafeGetAttrPos \"name\" d) \
                (builtins.unsafeGetAttrPos \"outputs\" d.dev) (builtins.unsafeGetAttrPos \"name\" d.drvAttrs) ]";
    assert_eq!(ok(expr), "[ [ 1 22 ] [ 2 2 ] [ 1 22 ] ]");
}
