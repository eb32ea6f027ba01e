//! Printing values the way `nix repl` does: forced to a depth (1 for an
//! expression, unlimited for `:p`), deeper sets and lists shown as
//! `{ ... }` and `[ ... ]`, a derivation as `«derivation DRV»`, functions
//! as `«lambda @ FILE:LINE:COL»` / `«primop»` / `«primop-app»`, a set or
//! list already printed as `«repeated»`. Colours only on a terminal.

use std::collections::HashSet;

use kiln_eval::machine::Machine;
use kiln_eval::print::{escape_string, format_float, is_plain_identifier};
use kiln_eval::{EvalResult, Value};

const RESET: &str = "\x1b[0m";
const RED: &str = "\x1b[31;1m";
const GREEN: &str = "\x1b[32;1m";
const MAGENTA: &str = "\x1b[35;1m";
const CYAN: &str = "\x1b[36;1m";
const BLUE: &str = "\x1b[34;1m";

/// Print `v`, forcing what is printed down to `depth` levels.
pub fn print(m: &mut Machine, v: &Value, depth: usize, colour: bool) -> EvalResult<String> {
    let mut printer = Printer {
        m,
        colour,
        seen: HashSet::new(),
        out: String::new(),
    };
    printer.value(v, depth)?;
    Ok(printer.out)
}

struct Printer<'m> {
    m: &'m mut Machine,
    colour: bool,
    seen: HashSet<usize>,
    out: String,
}

impl Printer<'_> {
    fn coloured(&mut self, colour: &str, text: &str) {
        if self.colour {
            self.out.push_str(colour);
            self.out.push_str(text);
            self.out.push_str(RESET);
        } else {
            self.out.push_str(text);
        }
    }

    fn value(&mut self, v: &Value, depth: usize) -> EvalResult<()> {
        self.m.check_stack()?;
        let v = self.m.force(v)?;
        match &v {
            Value::Null => self.coloured(CYAN, "null"),
            Value::Bool(b) => self.coloured(CYAN, if *b { "true" } else { "false" }),
            Value::Int(i) => self.coloured(CYAN, &i.to_string()),
            Value::Float(f) => self.coloured(CYAN, &format_float(*f)),
            Value::String(s) => {
                let mut quoted = String::new();
                escape_string(s.as_str(), &mut quoted);
                self.coloured(MAGENTA, &quoted);
            }
            Value::Path(p) => self.coloured(GREEN, &p.display().to_string()),
            Value::Attrs(attrs) => {
                if kiln_eval::ops::is_derivation(self.m, attrs)? {
                    let drv = match attrs.get_str("drvPath").cloned() {
                        Some(path) => match self.m.force(&path)? {
                            Value::String(s) => s.as_str().to_owned(),
                            _ => "???".to_owned(),
                        },
                        None => "???".to_owned(),
                    };
                    self.coloured(GREEN, &format!("«derivation {drv}»"));
                    return Ok(());
                }
                if depth == 0 {
                    self.out.push_str("{ ... }");
                    return Ok(());
                }
                if !attrs.is_empty() && !self.seen.insert(attrs.addr()) {
                    self.out.push_str("«repeated»");
                    return Ok(());
                }
                self.out.push_str("{ ");
                for (name, item) in attrs.sorted() {
                    let name = name.as_str();
                    if is_plain_identifier(name) {
                        self.out.push_str(name);
                    } else {
                        escape_string(name, &mut self.out);
                    }
                    self.out.push_str(" = ");
                    let item = item.clone();
                    self.value(&item, depth - 1)?;
                    self.out.push_str("; ");
                }
                self.out.push('}');
            }
            Value::List(list) => {
                if depth == 0 {
                    self.out.push_str("[ ... ]");
                    return Ok(());
                }
                if !list.is_empty() && !self.seen.insert(list.addr()) {
                    self.out.push_str("«repeated»");
                    return Ok(());
                }
                self.out.push_str("[ ");
                for item in list.iter() {
                    self.value(item, depth - 1)?;
                    self.out.push(' ');
                }
                self.out.push(']');
            }
            Value::Lambda(closure) => {
                let (file, line, column) = self.m.sources().line_column(closure.code.span);
                self.coloured(BLUE, &format!("«lambda @ {file}:{line}:{column}»"));
            }
            Value::PrimOp(app) if kiln_eval::builtins::derivation_wrapper::is_derivation(app) => {
                self.coloured(BLUE, "«lambda»")
            }
            Value::PrimOp(app) if app.args.is_empty() => self.coloured(MAGENTA, "«primop»"),
            Value::PrimOp(_) => self.coloured(BLUE, "«primop-app»"),
            Value::Thunk(_) => self.coloured(RED, "«thunk»"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kiln_eval::{EvalOptions, Evaluation};

    fn shown(text: &str, depth: usize) -> String {
        let mut session = Evaluation::new(EvalOptions::default());
        let v = session.eval_expr(text).unwrap();
        super::print(session.machine(), &v, depth, false).unwrap()
    }

    #[test]
    fn one_level_is_forced_and_deeper_ones_elided() {
        assert_eq!(
            shown(
                "{ a = 1 + 1; b = { c = 3; }; l = [ 1 [ 2 ] ]; \"x y\" = null; }",
                1
            ),
            "{ a = 2; b = { ... }; l = [ ... ]; \"x y\" = null; }"
        );
        assert_eq!(
            shown("{ b = { c = 3; }; l = [ 1 [ 2 ] ]; }", usize::MAX),
            "{ b = { c = 3; }; l = [ 1 [ 2 ] ]; }"
        );
        assert_eq!(shown("[ \"a\\n\" 1.5 true ]", 1), "[ \"a\\n\" 1.5 true ]");
    }

    #[test]
    fn functions_and_derivations_say_what_they_are() {
        assert_eq!(shown("x: x", 1), "«lambda @ «string»:1:1»");
        assert_eq!(shown("builtins.add", 1), "«primop»");
        assert_eq!(shown("builtins.add 1", 1), "«primop-app»");
        let drv = shown(
            "derivation { name = \"d\"; system = \"x\"; builder = \"/b\"; }",
            1,
        );
        assert!(
            drv.starts_with("«derivation /kiln/store/") && drv.ends_with("-d.drv»"),
            "{drv}"
        );
        // A set seen twice at full depth.
        assert_eq!(
            shown("let s = { a = 1; }; in [ s s ]", usize::MAX),
            "[ { a = 1; } «repeated» ]"
        );
    }
}
