//! Fuzzes the Nix-language parser: on any input it must return (never
//! panic, overflow the stack or hang), its errors must render with a source
//! snippet, and accepted input must print as an S-expression.
//!
//! Seed it with the language suite:
//! `cargo +nightly fuzz run parser fuzz/corpus/parser ../shared/conformance/nix-lang`

#![no_main]

use kiln_lang::{Interner, SourceMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let mut map = SourceMap::new();
    let file = map.add("fuzz.nix", None, text);
    let mut names = Interner::new();
    match kiln_lang::parse(file, map.text(file), &mut names) {
        Ok(expr) => {
            let printed = kiln_lang::sexpr::to_sexpr(&expr, &names);
            assert!(!printed.is_empty());
        }
        Err(err) => {
            let rendered = err.to_diagnostic().render(&map);
            assert!(rendered.starts_with("error: "));
        }
    }
});
