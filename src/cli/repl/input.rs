//! What a line of REPL input is: a command (`:l FILE`), a binding
//! (`x = EXPR`), or an expression; and whether it is complete yet (an
//! unclosed `{`, `let` without `in`, an open string: the next line
//! continues it).

/// One complete piece of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Nothing (blank).
    Empty,
    /// `:NAME ARG`: the name without the colon, the argument trimmed.
    Command(&'a str, &'a str),
    /// `NAME = EXPR`.
    Bind(&'a str, &'a str),
    Expr(&'a str),
}

/// Classify `text` as `nix repl` does: a leading `:` is a command; `NAME =`
/// (not `==`) with NAME a plain identifier is a binding.
pub fn classify(text: &str) -> Input<'_> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Input::Empty;
    }
    if let Some(rest) = trimmed.strip_prefix(':') {
        let (name, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Input::Command(name, arg.trim());
    }
    if let Some((name, rest)) = trimmed.split_once('=') {
        let name = name.trim();
        if !rest.starts_with('=') && is_identifier(name) {
            return Input::Bind(name, rest.trim());
        }
    }
    Input::Expr(trimmed)
}

fn is_identifier(name: &str) -> bool {
    const KEYWORDS: [&str; 9] = [
        "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&name)
}

/// Whether `text` is an expression cut short: its parse fails at the end
/// of the input (or in a string or comment never closed), so more lines
/// may complete it. Undefined names do not matter here.
pub fn is_incomplete_expr(text: &str) -> bool {
    if text.trim().is_empty() {
        return false;
    }
    let mut sources = kiln_lang::SourceMap::new();
    let file = sources.add("«repl»", None, text.to_owned());
    let mut names = kiln_lang::Interner::new();
    match kiln_lang::parse_with_globals(file, sources.text(file), &mut names, &|_| true) {
        Ok(_) => false,
        Err(err) => {
            err.message.contains("unexpected end of file")
                || err.message.starts_with("unterminated")
        }
    }
}

/// Whether a whole piece of input needs another line.
pub fn is_incomplete(text: &str) -> bool {
    match classify(text) {
        Input::Empty => false,
        Input::Bind(_, expr) | Input::Expr(expr) => is_incomplete_expr(expr),
        Input::Command(name, arg) => takes_expr(name) && !arg.is_empty() && is_incomplete_expr(arg),
    }
}

/// The commands whose argument is an expression.
pub fn takes_expr(name: &str) -> bool {
    matches!(
        name,
        "a" | "add" | "b" | "build" | "p" | "print" | "t" | "type" | "log"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_commands_bindings_or_expressions() {
        assert_eq!(classify("  "), Input::Empty);
        assert_eq!(classify(":l ./a.nix "), Input::Command("l", "./a.nix"));
        assert_eq!(classify(":q"), Input::Command("q", ""));
        assert_eq!(classify("x = 1 + 1"), Input::Bind("x", "1 + 1"));
        assert_eq!(classify("a-b' = 2"), Input::Bind("a-b'", "2"));
        assert_eq!(classify("x == 1"), Input::Expr("x == 1"));
        assert_eq!(classify("{ a = 1; }"), Input::Expr("{ a = 1; }"));
        assert_eq!(classify("let = 1"), Input::Expr("let = 1"));
    }

    #[test]
    fn unfinished_expressions_wait_for_more() {
        for text in [
            "let x = 1;",
            "{ a = 1;",
            "[ 1 2",
            "\"abc",
            "''abc",
            "(1 +",
            "x:",
            "if true then",
            "\"a ${b",
            "/* c",
            "x = {",
            ":p [ 1",
        ] {
            assert!(is_incomplete(text), "{text:?} is incomplete");
        }
        for text in [
            "1 + 2",
            "1 +)",
            "}",
            "undefined_name",
            ":l x",
            ":q",
            "",
            "x = 1",
            "let x = 1;\nin x",
        ] {
            assert!(!is_incomplete(text), "{text:?} is complete (or wrong)");
        }
    }
}
