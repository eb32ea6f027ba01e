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
