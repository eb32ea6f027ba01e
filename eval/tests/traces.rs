//! Error traces say what the user wrote: the short trace (the default)
//! folds the frames of kiln's builtins and never shows a place twice;
//! `show_trace` shows every frame.

use kiln_eval::{EvalOptions, Evaluation};

fn rendered(text: &str, show_trace: bool) -> String {
    let options = EvalOptions {
        show_trace,
        ..EvalOptions::default()
    };
    let mut session = Evaluation::new(options);
    let err = session
        .eval_expr(text)
        .and_then(|v| session.render(&v, kiln_eval::OutputFormat::Nix, true))
        .expect_err("the expression fails");
    session.render_error(&err)
}

const NESTED: &str = "let f = x: x.foo; in builtins.getAttr \"a\" { a = f {}; }";

#[test]
fn the_short_trace_folds_builtin_frames() {
    let short = rendered(NESTED, false);
    assert!(short.contains("attribute 'foo' missing"), "{short}");
    assert!(short.contains("while calling 'f'"), "{short}");
    assert!(!short.contains("while calling the builtin"), "{short}");
    assert!(
        short.contains("folded (--show-trace shows them)"),
        "{short}"
    );
}

#[test]
fn show_trace_shows_the_builtin_frames() {
    let full = rendered(NESTED, true);
    assert!(full.contains("while calling 'f'"), "{full}");
    assert!(
        full.contains("while calling the builtin 'getAttr'"),
        "{full}"
    );
    assert!(!full.contains("folded"), "{full}");
}

#[test]
fn a_place_is_shown_once() {
    // The error and the builtin's frame are at the same call.
    for show_trace in [false, true] {
        let text = rendered("builtins.getAttr \"x\" {}", show_trace);
        let snippets = text.matches("1 | builtins.getAttr").count();
        assert_eq!(snippets, 1, "show_trace {show_trace}:\n{text}");
    }
}

#[test]
fn a_deep_trace_is_short_by_default() {
    // Twelve distinct calls, each at its own place.
    let calls: String = (0..12)
        .map(|i| format!("f{i} = x: f{} x;\n", i + 1))
        .collect();
    let deep = format!("let\n{calls}f12 = x: throw \"bottom\";\nin f0 1");
    let deep = deep.as_str();
    let short = rendered(deep, false);
    let full = rendered(deep, true);
    assert!(short.contains("bottom"), "{short}");
    assert!(
        short.lines().count() < full.lines().count(),
        "{short}\n---\n{full}"
    );
    assert!(short.contains("folded"), "{short}");
    assert!(full.contains("while calling 'f1'"), "{full}");
    assert!(!short.contains("while calling 'f1'"), "{short}");
}

#[test]
fn a_call_from_another_place_is_not_merged_into_a_repeat() {
    // 20 recursive calls at `f (n - 1)`, and the first call at `f 20`:
    // both places are shown.
    let text = rendered(
        "let f = n: if n == 0 then throw \"x\" else f (n - 1); in f 20",
        false,
    );
    assert!(text.contains("while calling 'f' (20 times)"), "{text}");
    assert!(text.contains("«string»:1:56"), "{text}");
}

#[test]
fn mutual_recursion_is_shown_once_with_a_count() {
    let src = "let f = n: if n == 0 then throw \"x\" else g (n - 1); g = n: f n; in f 20";
    for show_trace in [false, true] {
        let text = rendered(src, show_trace);
        assert!(
            text.contains("the 2 frames above repeat 19 more times"),
            "show_trace {show_trace}:\n{text}"
        );
        assert_eq!(
            text.matches("while calling 'g'").count(),
            1,
            "show_trace {show_trace}:\n{text}"
        );
    }
}
