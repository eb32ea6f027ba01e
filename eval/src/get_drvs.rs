//! Finding the derivations in a value, as `nix-instantiate` does (Nix's
//! `getDerivations`), and instantiating them.
//!
//! - a derivation (a set with `type = "derivation"`) is taken;
//! - a set: each attribute in name order that is a derivation, and sets
//!   with `recurseForDerivations = true` searched in turn (only attributes
//!   whose names look like identifiers);
//! - a list: every element, searched in turn;
//! - anything else at the top is an error.
//!
//! Functions met on the way are called with the `--arg`s they accept. A
//! derivation value seen twice is taken once. Instantiating one forces its
//! `drvPath` (which writes the `.drv` to the store) and records its `meta`.

use std::collections::HashSet;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::evaluation::{AutoArg, Evaluation};
use crate::value::{Attrs, Value};

/// One derivation found: its `.drv` path and the output the value named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instantiated {
    pub drv_path: String,
    pub output: String,
}

impl Instantiated {
    /// As `nix-instantiate` prints it: `DRV`, or `DRV!OUTPUT` when the
    /// output is not `out`.
    pub fn display(&self) -> String {
        if self.output == "out" {
            self.drv_path.clone()
        } else {
            format!("{}!{}", self.drv_path, self.output)
        }
    }
}

/// Collects derivation values as `nix-instantiate` does.
#[derive(Default)]
pub struct DrvFinder {
    found: Vec<Attrs>,
    seen: HashSet<usize>,
}

impl DrvFinder {
    /// Search `value` (the result of an `-A` path, or the whole value).
    pub fn search(
        &mut self,
        session: &mut Evaluation,
        value: &Value,
        auto_args: &[(String, AutoArg)],
    ) -> EvalResult<()> {
        self.search_in(session, value, auto_args, true)
    }

    /// Instantiate every derivation found, in the order found.
    pub fn instantiate(self, session: &mut Evaluation) -> EvalResult<Vec<Instantiated>> {
        let mut out = Vec::new();
        for drv in self.found {
            out.push(instantiate_one(session, &drv)?);
        }
        Ok(out)
    }
    fn search_in(
        &mut self,
        session: &mut Evaluation,
        value: &Value,
        auto_args: &[(String, AutoArg)],
        top: bool,
    ) -> EvalResult<()> {
        let value = session.auto_call(value.clone(), auto_args)?;
        let m = session.machine();
        let value = m.force(&value)?;
        match &value {
            Value::Attrs(attrs) => {
                if self.take_if_derivation(session, attrs)? {
                    return Ok(());
                }
                for (name, item) in attrs.sorted() {
                    if !is_plain_attr_name(name.as_str()) {
                        continue;
                    }
                    let item = session.machine().force(item)?;
                    let Value::Attrs(inner) = &item else {
                        continue;
                    };
                    if self.take_if_derivation(session, inner)? {
                        continue;
                    }
                    if let Some(flag) = inner.get_str("recurseForDerivations").cloned()
                        && session.machine().force_bool(&flag)?
                    {
                        self.search_in(session, &item, auto_args, false)?;
                    }
                }
                Ok(())
            }
            Value::List(items) => {
                for item in items.iter() {
                    self.search_in(session, item, auto_args, false)?;
                }
                Ok(())
            }
            other => Err(EvalError::new(
                ErrorKind::InvalidValue(format!(
                    "expression does not evaluate to a derivation (or a set or list of those){}: it is {}",
                    if top { "" } else { " (inside)" },
                    other.type_description()
                )),
                None,
            )),
        }
    }

    /// Take `attrs` if it is a derivation; true if it was one.
    fn take_if_derivation(&mut self, session: &mut Evaluation, attrs: &Attrs) -> EvalResult<bool> {
        let Some(kind) = attrs.get_str("type").cloned() else {
            return Ok(false);
        };
        let kind = session.machine().force(&kind)?;
        if !matches!(&kind, Value::String(s) if s.as_str() == "derivation") {
            return Ok(false);
        }
        if self.seen.insert(attrs.addr()) {
            self.found.push(attrs.clone());
        }
        Ok(true)
    }
}

/// Nix only looks at attributes whose names look like identifiers.
fn is_plain_attr_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '\''))
}

/// Force a derivation's `drvPath` (which writes it) and record its `meta`.
fn instantiate_one(session: &mut Evaluation, drv: &Attrs) -> EvalResult<Instantiated> {
    let m = session.machine();
    let drv_value = drv
        .get_str("drvPath")
        .cloned()
        .ok_or_else(|| missing("drvPath"))?;
    let drv_path = m.force_string(&drv_value)?.as_str().to_owned();
    let output = match drv.get_str("outputName").cloned() {
        Some(v) => m.force_string(&v)?.as_str().to_owned(),
        None => "out".to_owned(),
    };
    if let Some(meta) = drv.get_str("meta").cloned()
        && let Ok(Value::Attrs(meta)) = m.force(&meta)
    {
        let name = match drv.get_str("name").cloned().map(|n| m.force(&n)) {
            Some(Ok(Value::String(s))) => s.as_str().to_owned(),
            _ => String::new(),
        };
        let json = crate::builtins::derivation::meta_json(m, &meta, &name);
        let store = m.store().clone();
        store.set_derivation_meta(&drv_path, &json)?;
    }
    Ok(Instantiated { drv_path, output })
}

fn missing(name: &str) -> EvalError {
    EvalError::new(
        ErrorKind::MissingAttribute {
            name: name.to_owned(),
            suggestions: Vec::new(),
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EvalOptions;

    fn found(expr: &str) -> Result<Vec<String>, String> {
        let mut session = Evaluation::new(EvalOptions::default());
        let value = session.eval_expr(expr).map_err(|e| e.to_string())?;
        let mut finder = DrvFinder::default();
        finder
            .search(&mut session, &value, &[])
            .and_then(|()| finder.instantiate(&mut session))
            .map(|drvs| drvs.iter().map(Instantiated::display).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn finds_derivations_as_nix_instantiate_does() {
        let drvs = found(
            r#"let d = name: derivation { inherit name; system = "x"; builder = "x"; }; in {
                 a = d "a";
                 b = { recurseForDerivations = true; c = d "c"; };
                 e = { f = d "f"; };
                 "1x" = d "1x";
                 g = (d "g") // { outputName = "dev"; };
                 again = [ (d "a") ];
               }"#,
        )
        .expect("found");
        let names: Vec<&str> = drvs
            .iter()
            .map(|p| p.split_once('-').expect("a store path").1)
            .collect();
        // Name order; not under a plain set, not a non-identifier name.
        assert_eq!(names, ["a.drv", "c.drv", "g.drv!dev"]);
    }

    #[test]
    fn a_derivation_seen_twice_is_taken_once_and_a_number_is_an_error() {
        let drvs =
            found(r#"let d = derivation { name = "a"; system = "x"; builder = "x"; }; in [ d d ]"#)
                .expect("found");
        assert_eq!(drvs.len(), 1);
        let err = found("[ 1 ]").expect_err("not a derivation");
        assert!(err.contains("(inside): it is an integer"), "{err}");
    }
}
