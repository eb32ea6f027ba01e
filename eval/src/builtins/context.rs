//! String context introspection: `unsafeDiscardStringContext`,
//! `hasContext`, `getContext`, `appendContext`,
//! `unsafeDiscardOutputDependency`.
//!
//! `getContext` describes a context as Nix does: a set keyed by store
//! path with `{ path = true; }` for plain paths, `{ allOutputs = true; }`
//! for a derivation with all outputs, and `{ outputs = [ … ]; }`.

use super::Builtin;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::symbol::Symbol;
use crate::value::{Attrs, Context, ContextElem, List, NixString, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "unsafeDiscardStringContext",
        arity: 1,
        func: discard,
    },
    Builtin {
        name: "unsafeDiscardOutputDependency",
        arity: 1,
        func: discard_output_dependency,
    },
    Builtin {
        name: "hasContext",
        arity: 1,
        func: has_context,
    },
    Builtin {
        name: "getContext",
        arity: 1,
        func: get_context,
    },
    Builtin {
        name: "appendContext",
        arity: 2,
        func: append_context,
    },
];

// Both discarding builtins coerce as `"${x}"` does (a set with `outPath`
// or `__toString`, a path copied to the store), as in Nix 2.8; the
// context-reading ones take only strings.
fn discard(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.coerce_to_string(&args[0], Coercion::Interpolate)?;
    Ok(Value::String(s.without_context()))
}

/// `=drv` (all outputs) becomes a plain path dependency on the `.drv`.
fn discard_output_dependency(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.coerce_to_string(&args[0], Coercion::Interpolate)?;
    let Some(ctx) = s.context() else {
        return Ok(Value::String(s));
    };
    let context: Context = ctx
        .iter()
        .map(|e| match e {
            ContextElem::AllOutputs(drv) => ContextElem::Path(drv.clone()),
            other => other.clone(),
        })
        .collect();
    Ok(Value::String(NixString::with_context(s.as_str(), context)))
}

fn has_context(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.force_string(&args[0])?;
    Ok(Value::Bool(s.has_context()))
}

fn get_context(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.force_string(&args[0])?;
    let mut by_path: std::collections::BTreeMap<String, (bool, bool, Vec<String>)> =
        Default::default();
    if let Some(ctx) = s.context() {
        for elem in ctx {
            match elem {
                ContextElem::Path(p) => by_path.entry(p.clone()).or_default().0 = true,
                ContextElem::AllOutputs(d) => by_path.entry(d.clone()).or_default().1 = true,
                ContextElem::DrvOutput { drv, output } => by_path
                    .entry(drv.clone())
                    .or_default()
                    .2
                    .push(output.clone()),
            }
        }
    }
    let entries = by_path
        .into_iter()
        .map(|(path, (is_path, all, outputs))| {
            let mut info = Vec::new();
            if is_path {
                info.push((Symbol::intern("path"), Value::Bool(true)));
            }
            if all {
                info.push((Symbol::intern("allOutputs"), Value::Bool(true)));
            }
            if !outputs.is_empty() {
                let outputs = outputs.into_iter().map(Value::string).collect();
                info.push((Symbol::intern("outputs"), Value::List(List::new(outputs))));
            }
            (
                Symbol::intern(&path),
                Value::Attrs(Attrs::from_entries(info)),
            )
        })
        .collect();
    Ok(Value::Attrs(Attrs::from_entries(entries)))
}

fn append_context(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.force_string(&args[0])?;
    let attrs = m.force_attrs(&args[1])?;
    let mut context = Context::new();
    s.merge_context_into(&mut context);
    for (path, info) in attrs.iter() {
        let path = path.as_str().to_owned();
        if !path.starts_with(m.store.store_dir()) {
            return Err(EvalError::new(
                ErrorKind::InvalidValue(format!("context key '{path}' is not a store path")),
                None,
            ));
        }
        let info = m.force_attrs(&info.clone())?;
        if let Some(v) = info.get_str("path")
            && m.force_bool(&v.clone())?
        {
            context.insert(ContextElem::Path(path.clone()));
        }
        if let Some(v) = info.get_str("allOutputs")
            && m.force_bool(&v.clone())?
        {
            context.insert(ContextElem::AllOutputs(path.clone()));
        }
        if let Some(v) = info.get_str("outputs") {
            let outputs = m.force_list(&v.clone())?;
            for o in outputs.iter() {
                let o = m.force_string(o)?;
                context.insert(ContextElem::DrvOutput {
                    drv: path.clone(),
                    output: o.as_str().to_owned(),
                });
            }
        }
    }
    Ok(Value::String(NixString::with_context(s.as_str(), context)))
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn interpolated_paths_carry_context() {
        assert_eq!(eval_str(r#"builtins.hasContext "${/.}x""#).unwrap(), "true");
        assert_eq!(
            eval_str(r#"builtins.hasContext (builtins.unsafeDiscardStringContext "${/.}")"#)
                .unwrap(),
            "false"
        );
        assert_eq!(eval_str(r#"builtins.hasContext "plain""#).unwrap(), "false");
    }

    #[test]
    fn discarding_context_coerces_like_interpolation_and_parse_drv_name_does_not() {
        // Expected values from Nix 2.8.
        assert_eq!(
            eval_str(
                r#"[ (builtins.unsafeDiscardStringContext { outPath = "a"; }) (builtins.unsafeDiscardStringContext { __toString = s: "b"; }) (builtins.unsafeDiscardOutputDependency { outPath = "c"; }) ]"#
            )
            .unwrap(),
            r#"[ "a" "b" "c" ]"#
        );
        let err = eval_str(r#"builtins.parseDrvName { outPath = "a-1"; }"#).unwrap_err();
        assert!(
            err.contains("value is a set while a string was expected"),
            "{err}"
        );
        let err = eval_str("builtins.unsafeDiscardStringContext 1").unwrap_err();
        assert!(
            err.contains("cannot coerce an integer to a string"),
            "{err}"
        );
    }
}
