//! The page behind each error code (`kiln explain E007`): what the error
//! means, an expression that causes it, and what usually fixes it.
//!
//! Every code [`ErrorKind::code`](crate::ErrorKind::code) returns has a
//! page, and each page's example really fails with its code: both are
//! tested below.

/// One code's explanation.
#[derive(Debug)]
pub struct Page {
    pub code: &'static str,
    /// One line: what went wrong.
    pub title: &'static str,
    /// An expression that fails with this code.
    pub example: &'static str,
    /// What it means and what to do, a few short paragraphs.
    pub text: &'static str,
}

/// The pages, in code order.
pub const PAGES: &[Page] = &[
    Page {
        code: "E001",
        title: "`throw` was evaluated",
        example: r#"throw "unsupported platform""#,
        text: "The expression called `throw MESSAGE` (or `builtins.throw`). Package sets use it to \
say that a configuration is not supported, so the message is the author's: read it first.\n\n\
A throw is catchable: `builtins.tryEval` turns it into `{ success = false; value = false; }`. \
The trace shows which attribute was being evaluated when it was reached; often the fix is to \
not ask for that attribute, or to pass the argument the message asks for.",
    },
    Page {
        code: "E002",
        title: "`abort` was evaluated",
        example: r#"abort "stop here""#,
        text: "The expression called `abort MESSAGE`. Unlike `throw`, an abort cannot be caught by \
`builtins.tryEval`: the whole evaluation stops. The message is the author's; the trace shows \
where it was reached.",
    },
    Page {
        code: "E003",
        title: "an `assert` condition was false",
        example: "let x = 2; in assert x == 1; x",
        text: "`assert COND; BODY` evaluated COND to false. The message quotes the condition as \
written. Assertions guard the arguments of a function: check the values the caller passed \
(the trace names the call). Like `throw`, a failed assertion is catchable by \
`builtins.tryEval`.",
    },
    Page {
        code: "E004",
        title: "a value has the wrong type",
        example: "if 1 then 2 else 3",
        text: "An operation needed one type and got another: `value is an integer while a Boolean \
was expected`. Common causes: a function applied to the wrong argument (a set where a list \
is expected, `map f { … }`), a string where a path or a number is expected, or a missing \
pair of parentheses so that a function is passed where its result was meant.\n\n\
The caret points at the expression whose value had the wrong type; `builtins.typeOf` in \
`kiln eval` or `:t` in `kiln repl` shows what a value is.",
    },
    Page {
        code: "E005",
        title: "an attribute is missing from a set",
        example: "{ name = \"x\"; }.nmae",
        text: "`SET.NAME` (or `-A PATH` on the command line) asked for an attribute the set does \
not have. When a name in the set is close, the message suggests it (`did you mean 'name'?`).\n\n\
Use `SET.NAME or DEFAULT` for an attribute that may be missing, `SET ? NAME` to test for it, \
and `builtins.attrNames SET` (or Tab in `kiln repl`) to see what is there.",
    },
    Page {
        code: "E006",
        title: "a variable is not defined",
        example: "let pkgs = 1; in pkg",
        text: "A name is used that no `let`, function argument, `with` or `rec` set binds, and that \
is not a builtin. It is found before anything is evaluated, as Nix does. Check the spelling, \
the argument list of the enclosing function (`{ pkgs, ... }:`), and whether a `with` that \
would bring it into scope is missing.\n\n\
Nix's fetchers (`fetchurl`, `fetchTarball`, `fetchGit`) are left out of kiln on purpose: \
evaluation never downloads. Write a fixed-output derivation instead.",
    },
    Page {
        code: "E007",
        title: "infinite recursion",
        example: "let x = x + 1; in x",
        text: "A value needed itself to be computed: `let x = x + 1;`, an attribute of a `rec` set \
defined through itself, or an overlay or fixed point (`self: …`) that reads an attribute \
while defining it. The error points at the place where the value was forced again.\n\n\
Look for the attribute that refers to itself, directly or through others, in the trace. In \
a fixed point, use the previous stage (`super`/`prev`) for the value being replaced.",
    },
    Page {
        code: "E008",
        title: "the evaluation went too deep",
        example: "let f = n: 1 + f (n + 1); in f 0",
        text: "Evaluation recursed so deeply that it would run out of stack: usually a recursive \
function without a base case (`f = n: 1 + f (n + 1)`), or one whose base case is never \
reached. kiln stops it with this error before the stack is really exhausted.\n\n\
Genuinely deep but finite work is better written with `builtins.foldl'`, `builtins.genList` \
or a recursion that is not nested in an operator.",
    },
    Page {
        code: "E009",
        title: "division by zero",
        example: "10 / (2 - 2)",
        text: "An integer or float division (`/` or `builtins.div`) had zero as its divisor. Check \
the expression that computes the divisor.",
    },
    Page {
        code: "E010",
        title: "integer overflow",
        example: "9223372036854775807 + 1",
        text: "An integer operation left the range of 64-bit signed integers (−2⁶³ … 2⁶³−1). Nix \
wraps around silently in some versions; kiln stops instead of computing a wrong number. \
Use floats for values that may be that large.",
    },
    Page {
        code: "E011",
        title: "a function was called without a required argument",
        example: "({ name, version }: name) { name = \"x\"; }",
        text: "A function taking a set (`{ name, version }: …`) was called with a set that lacks \
one of its arguments, and the argument has no default (`version ? \"1.0\"`). On the command \
line, `--arg NAME EXPR` and `--argstr NAME STRING` pass arguments to a file's top-level \
function.",
    },
    Page {
        code: "E012",
        title: "a function was called with an unexpected argument",
        example: "({ name }: name) { name = \"x\"; nmae = \"y\"; }",
        text: "A function taking a set without `...` was called with an attribute it does not \
name. Either the caller misspelled it, or the function should accept more (`{ name, ... }:`).",
    },
    Page {
        code: "E013",
        title: "a value cannot become a string",
        example: "\"version ${{ major = 1; }}\"",
        text: "String interpolation (`\"${x}\"`), `toString` or a derivation attribute needed a \
string, and the value was one that has none: a set without `outPath` or `__toString`, a \
function, or (for interpolation) a list or a number. Use `toString` for numbers and lists, \
`builtins.toJSON` to write a structure as text, or select the attribute that holds the \
string.",
    },
    Page {
        code: "E014",
        title: "a `<name>` is not on the search path",
        example: "<no-such-entry>",
        text: "`<name>` looks `name` up in the search path: the `-I` options, then `KILN_PATH`, \
then `NIX_PATH`, each `DIR` or `name=DIR`. None of them has it. Add it with \
`-I name=/path/to/dir` (or set `KILN_PATH`). The lookup is catchable by \
`builtins.tryEval`, so `(builtins.tryEval <name>).success` tests for it.",
    },
    Page {
        code: "E015",
        title: "a file could not be read, or the store failed",
        example: "builtins.readFile /no/such/file",
        text: "`import`, `builtins.readFile`, `builtins.readDir`, `builtins.path` or a path \
copied into the store named a file that does not exist or cannot be read. Relative paths \
are resolved against the directory of the file they are written in (against the current \
directory for `-E`); check that directory and the permissions.\n\n\
The same code covers the store failing while evaluation writes to it (`builtins.path`, \
`toFile`, sources copied by interpolation): a store root that cannot be opened or \
written, or a path that could not be added. The message names the path.",
    },
    Page {
        code: "E016",
        title: "a syntax error",
        example: "{ a = 1 }",
        text: "The text is not a valid expression. The message says what was found and what was \
expected there; the caret points at the unexpected token. A missing `;` is reported at the \
end of the line where it belongs. Other usual suspects: an unclosed `{`, `[`, `(` or string \
(the error is then at the end of the file), `=` where `:` was meant, and a path with a \
trailing slash.",
    },
    Page {
        code: "E017",
        title: "a value is not acceptable here",
        example: "builtins.fromJSON \"{ not json\"",
        text: "A builtin got a value of the right type that it still cannot use: text that is not \
JSON or TOML, a derivation attribute with a forbidden value, a list index out of range, a \
string with a store path context where none may be, or an expression that is not a \
derivation where one is needed. The message says which; the trace names the builtin.",
    },
];

/// The page for `code`, given as `E007`, `e007` or `7`.
pub fn explain(code: &str) -> Option<&'static Page> {
    let digits = code.trim().trim_start_matches(['E', 'e']);
    let number: u32 = digits.parse().ok()?;
    let code = format!("E{number:03}");
    PAGES.iter().find(|page| page.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, EvalOptions, Evaluation};

    /// One value of every kind: a new kind is a compile error here until
    /// it is added, and then needs a page.
    fn sample(kind: &ErrorKind) -> ErrorKind {
        match kind {
            ErrorKind::Throw(_)
            | ErrorKind::Abort(_)
            | ErrorKind::AssertionFailed(_)
            | ErrorKind::TypeError { .. }
            | ErrorKind::MissingAttribute { .. }
            | ErrorKind::MissingInSelectionPath { .. }
            | ErrorKind::UndefinedVariable(_)
            | ErrorKind::InfiniteRecursion
            | ErrorKind::StackOverflow
            | ErrorKind::DivisionByZero
            | ErrorKind::IntegerOverflow(_)
            | ErrorKind::MissingArgument { .. }
            | ErrorKind::UnexpectedArgument { .. }
            | ErrorKind::NotCoercibleToString(_)
            | ErrorKind::SearchPathNotFound(_)
            | ErrorKind::Io(_)
            | ErrorKind::Store(_)
            | ErrorKind::Parse(_)
            | ErrorKind::InvalidValue(_) => kind.clone(),
        }
    }

    fn every_kind() -> Vec<ErrorKind> {
        let s = String::new;
        vec![
            ErrorKind::Throw(s()),
            ErrorKind::Abort(s()),
            ErrorKind::AssertionFailed(s()),
            ErrorKind::TypeError {
                expected: "",
                got: "",
            },
            ErrorKind::MissingAttribute {
                name: s(),
                suggestions: vec![],
            },
            ErrorKind::MissingInSelectionPath {
                name: s(),
                path: s(),
                suggestions: vec![],
            },
            ErrorKind::UndefinedVariable(s()),
            ErrorKind::InfiniteRecursion,
            ErrorKind::StackOverflow,
            ErrorKind::DivisionByZero,
            ErrorKind::IntegerOverflow(""),
            ErrorKind::MissingArgument {
                function: s(),
                name: s(),
            },
            ErrorKind::UnexpectedArgument {
                function: s(),
                name: s(),
            },
            ErrorKind::NotCoercibleToString(""),
            ErrorKind::SearchPathNotFound(s()),
            ErrorKind::Io(s()),
            ErrorKind::Store(crate::error::StoreFailure(std::sync::Arc::new(
                crate::store::StoreError::Io {
                    what: "reading",
                    path: "/x".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                },
            ))),
            ErrorKind::Parse(s()),
            ErrorKind::InvalidValue(s()),
        ]
        .iter()
        .map(sample)
        .collect()
    }

    #[test]
    fn every_code_has_a_page_and_every_page_a_code() {
        let codes: std::collections::BTreeSet<&str> =
            every_kind().iter().map(|k| k.code()).collect();
        let pages: Vec<&str> = PAGES.iter().map(|p| p.code).collect();
        assert_eq!(pages, codes.iter().copied().collect::<Vec<_>>());
        for page in PAGES {
            assert!(
                !page.title.is_empty() && page.text.len() > 80,
                "{}",
                page.code
            );
        }
    }

    #[test]
    fn each_example_fails_with_its_code() {
        // On the evaluator's own thread: E008's example must meet the
        // stack guard, not the test thread's small stack.
        let failures = crate::run_with_big_stack(|| {
            let mut failures = Vec::new();
            for page in PAGES {
                let mut session = Evaluation::new(EvalOptions::default());
                let result = session
                    .eval_expr(page.example)
                    .and_then(|v| session.render(&v, crate::OutputFormat::Nix, true));
                match result {
                    Err(err) if err.kind().code() == page.code => {}
                    Err(err) => {
                        failures.push(format!("{}: {} ({err})", page.code, err.kind().code()))
                    }
                    Ok(v) => failures.push(format!("{}: no error, {v}", page.code)),
                }
            }
            failures
        });
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn codes_are_found_in_any_spelling() {
        assert_eq!(explain("E007").unwrap().code, "E007");
        assert_eq!(explain("e7").unwrap().code, "E007");
        assert_eq!(explain("17").unwrap().code, "E017");
        assert!(explain("E999").is_none());
        assert!(explain("x").is_none());
    }
}
