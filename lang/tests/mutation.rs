//! A bounded random-mutation test that runs on stable Rust in CI (the
//! cargo-fuzz target in `fuzz/` goes much further, on nightly): mutate
//! snippets and the conformance files, and require that the parser always
//! returns, with an error that renders, or a tree that prints.
//!
//! Deterministic (fixed seed), a few thousand inputs.

use std::path::Path;

use kiln_lang::{Interner, SourceMap};

/// xorshift64*: enough randomness for mutations, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SNIPPETS: &[&str] = &[
    "{ a ? 1, ... }@args: a + args.b or 2",
    "let x = [ 1 2.5 ./a/${y} ]; y = \"s${x}\"; in x ++ [ y ]",
    "rec { a.b.c = 1; ${\"d\"} = ''\n  x ''${y}\n  ''; inherit (a) b; }",
    "with builtins; assert true; if a -> b then -1 - -2 else !c // { }",
    "x: y: x:x <nixpkgs/lib> ~/a https://e.org/?q=1 /* c */ # d\n",
    "let { body = a.b or c; a = { }; c = f or; f = or: or; }",
];

/// Pieces of syntax that are likely to produce interesting states.
const TOKENS: &[&str] = &[
    "${", "}", "''", "'''", "''$", "''\\", "\"", "\\", "$", "(", ")", "[", "]", "{", ":", ";", "@",
    "...", ".", "?", "or", "let", "in", "rec", "inherit", "/", "//", "./", "~/", "<", ">", "#",
    "/*", "*/", "\n", " ", "-", "!", "->", "1.", ".5", "x", "é", "\r\n",
];

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if pos < bytes.len() => {
                let len = 1 + rng.below(8).min(bytes.len() - pos - 1);
                bytes.drain(pos..pos + len);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(pos..pos, t.bytes());
            }
            2 if !bytes.is_empty() => {
                let from = rng.below(bytes.len());
                let len = 1 + rng.below(16).min(bytes.len() - from - 1);
                let piece: Vec<u8> = bytes[from..from + len].to_vec();
                bytes.splice(pos..pos, piece);
            }
            3 if pos < bytes.len() => bytes[pos] = rng.next() as u8,
            _ => bytes.truncate(pos),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn parse_once(text: String) {
    let mut map = SourceMap::new();
    let file = map.add("m.nix", None, text);
    let mut names = Interner::new();
    match kiln_lang::parse(file, map.text(file), &mut names) {
        Ok(e) => assert!(!kiln_lang::sexpr::to_sexpr(&e, &names).is_empty()),
        Err(err) => assert!(err.to_diagnostic().render(&map).starts_with("error: ")),
    }
}

#[test]
fn mutated_inputs_never_panic() {
    let mut seeds: Vec<String> = SNIPPETS.iter().map(|s| s.to_string()).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nix-lang");
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for path in files {
                if path.extension().is_some_and(|x| x == "nix")
                    && let Ok(text) = std::fs::read_to_string(&path)
                    && text.len() < 20_000
                {
                    seeds.push(text);
                }
            }
        }
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but the Nix language suite is missing at {}",
                dir.display()
            );
            println!(
                "skipped: {} not found (mutating snippets only)",
                dir.display()
            )
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut count = 0;
    for round in 0..40 {
        for seed in &seeds {
            let mut text = mutate(&mut rng, seed);
            // Sometimes mutate again, to wander further from valid input.
            if round % 3 == 2 {
                text = mutate(&mut rng, &text);
            }
            parse_once(text);
            count += 1;
        }
    }
    println!("{count} mutated inputs parsed or rejected cleanly");
    assert!(count >= 40 * SNIPPETS.len());
}
