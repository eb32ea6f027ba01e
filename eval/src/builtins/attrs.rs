//! Attribute sets: `attrNames`, `attrValues`, `getAttr`, `hasAttr`,
//! `removeAttrs`, `listToAttrs`, `mapAttrs`, `intersectAttrs`, `catAttrs`,
//! `functionArgs`, `zipAttrsWith`, `unsafeGetAttrPos`.

use super::Builtin;
use crate::compile::ir::Param;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::{Machine, type_error};
use crate::symbol::Symbol;
use crate::value::{Attrs, List, NixString, Thunk, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "attrNames",
        arity: 1,
        func: attr_names,
    },
    Builtin {
        name: "attrValues",
        arity: 1,
        func: attr_values,
    },
    Builtin {
        name: "getAttr",
        arity: 2,
        func: get_attr,
    },
    Builtin {
        name: "hasAttr",
        arity: 2,
        func: has_attr,
    },
    Builtin {
        name: "removeAttrs",
        arity: 2,
        func: remove_attrs,
    },
    Builtin {
        name: "listToAttrs",
        arity: 1,
        func: list_to_attrs,
    },
    Builtin {
        name: "mapAttrs",
        arity: 2,
        func: map_attrs,
    },
    Builtin {
        name: "intersectAttrs",
        arity: 2,
        func: intersect_attrs,
    },
    Builtin {
        name: "catAttrs",
        arity: 2,
        func: cat_attrs,
    },
    Builtin {
        name: "functionArgs",
        arity: 1,
        func: function_args,
    },
    Builtin {
        name: "zipAttrsWith",
        arity: 2,
        func: zip_attrs_with,
    },
    Builtin {
        name: "unsafeGetAttrPos",
        arity: 2,
        func: unsafe_get_attr_pos,
    },
];

fn attr_names(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let attrs = m.force_attrs(&args[0])?;
    let names = attrs
        .sorted_names()
        .into_iter()
        .map(|n| Value::String(NixString::from_symbol(n)))
        .collect();
    Ok(Value::List(List::new(names)))
}

fn attr_values(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let attrs = m.force_attrs(&args[0])?;
    let values = attrs.sorted().into_iter().map(|(_, v)| v.clone()).collect();
    Ok(Value::List(List::new(values)))
}

fn name_arg(m: &mut Machine, v: &Value) -> EvalResult<Symbol> {
    let s = m.force_string(v)?;
    Ok(s.to_symbol())
}

fn get_attr(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let name = name_arg(m, &args[0])?;
    let attrs = m.force_attrs(&args[1])?;
    match attrs.get(name) {
        Some(v) => {
            let v = v.clone();
            m.force(&v)
        }
        None => Err(EvalError::new(
            ErrorKind::MissingAttribute {
                name: name.as_str().to_owned(),
                suggestions: crate::error::closest_names(
                    name.as_str(),
                    attrs.iter().map(|(n, _)| n.as_str()),
                ),
            },
            None,
        )),
    }
}

fn has_attr(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let name = name_arg(m, &args[0])?;
    let attrs = m.force_attrs(&args[1])?;
    Ok(Value::Bool(attrs.contains(name)))
}

fn remove_attrs(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let attrs = m.force_attrs(&args[0])?;
    let names = m.force_list(&args[1])?;
    let mut remove = Vec::with_capacity(names.len());
    for n in names.iter() {
        remove.push(name_arg(m, n)?);
    }
    Ok(Value::Attrs(attrs.remove(&remove)))
}

fn list_to_attrs(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[0])?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list.iter() {
        let attrs = m.force_attrs(item)?;
        let Some(name) = attrs.get(m.sym.name) else {
            return Err(missing("name"));
        };
        let name = name_arg(m, &name.clone())?;
        let Some(value) = attrs.get(m.sym.value) else {
            return Err(missing("value"));
        };
        // Nix gives the attribute the position of the `value`.
        entries.push((name, value.clone(), attrs.position(m.sym.value)));
    }
    Ok(Value::Attrs(Attrs::from_entries_with_positions(entries)))
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

fn map_attrs(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = args[0].clone();
    let attrs = m.force_attrs(&args[1])?;
    let mapped = attrs.map_values(|name, v| {
        let partial = Value::Thunk(Thunk::apply(
            f.clone(),
            Value::String(NixString::from_symbol(name)),
        ));
        Value::Thunk(Thunk::apply(partial, v.clone()))
    });
    Ok(Value::Attrs(mapped))
}

fn intersect_attrs(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let a = m.force_attrs(&args[0])?;
    let b = m.force_attrs(&args[1])?;
    Ok(Value::Attrs(b.retain(|n| a.contains(n))))
}

fn cat_attrs(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let name = name_arg(m, &args[0])?;
    let list = m.force_list(&args[1])?;
    let mut out = Vec::new();
    for item in list.iter() {
        let attrs = m.force_attrs(item)?;
        if let Some(v) = attrs.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::List(List::new(out)))
}

fn function_args(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    match m.force(&args[0])? {
        Value::Lambda(closure) => match &closure.code.param {
            Param::Ident(_) => Ok(Value::Attrs(Attrs::empty())),
            Param::Formals { formals, .. } => {
                let entries = formals
                    .iter()
                    .map(|f| (f.name, Value::Bool(f.default.is_some()), Some(f.span)))
                    .collect();
                Ok(Value::Attrs(Attrs::from_entries_with_positions(entries)))
            }
        },
        // Nix's `derivation` is a lambda with a set pattern.
        Value::PrimOp(app) if super::derivation_wrapper::is_derivation(&app) => {
            Ok(Value::Attrs(Attrs::from_entries(
                super::derivation_wrapper::PATTERN_FORMALS
                    .iter()
                    .map(|(name, has_default)| (Symbol::intern(name), Value::Bool(*has_default)))
                    .collect(),
            )))
        }
        Value::PrimOp(_) => Ok(Value::Attrs(Attrs::empty())),
        other => Err(type_error("a function", &other)),
    }
}

fn zip_attrs_with(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = args[0].clone();
    let sets = m.force_list(&args[1])?;
    let mut collected: Vec<(Symbol, Vec<Value>)> = Vec::new();
    let mut index: rustc_hash::FxHashMap<Symbol, usize> = Default::default();
    for set in sets.iter() {
        let attrs = m.force_attrs(set)?;
        for (name, v) in attrs.iter() {
            let slot = *index.entry(name).or_insert_with(|| {
                collected.push((name, Vec::new()));
                collected.len() - 1
            });
            collected[slot].1.push(v.clone());
        }
    }
    let entries = collected
        .into_iter()
        .map(|(name, values)| {
            let partial = Value::Thunk(Thunk::apply(
                f.clone(),
                Value::String(NixString::from_symbol(name)),
            ));
            (
                name,
                Value::Thunk(Thunk::apply(partial, Value::List(List::new(values)))),
            )
        })
        .collect();
    Ok(Value::Attrs(Attrs::from_entries(entries)))
}

fn unsafe_get_attr_pos(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let name = name_arg(m, &args[0])?;
    let attrs = m.force_attrs(&args[1])?;
    Ok(match attrs.position(name) {
        Some(span) => m.position_value(span),
        None => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn names_are_sorted_and_first_duplicate_wins() {
        assert_eq!(
            eval_str("builtins.attrNames { b = 1; a = 2; c = 3; }").unwrap(),
            "[ \"a\" \"b\" \"c\" ]"
        );
        assert_eq!(
            eval_str(
                "builtins.listToAttrs [ { name = \"x\"; value = 1; } { name = \"x\"; value = 2; } ]"
            )
            .unwrap(),
            "{ x = 1; }"
        );
    }

    #[test]
    fn map_attrs_and_zip_are_lazy() {
        assert_eq!(
            eval_str("(builtins.mapAttrs (n: v: v * 2) { a = 1; b = throw \"lazy\"; }).a").unwrap(),
            "2"
        );
        assert_eq!(
            eval_str("builtins.zipAttrsWith (n: vs: vs) [ { a = 1; } { a = 2; b = 3; } ]").unwrap(),
            "{ a = [ 1 2 ]; b = [ 3 ]; }"
        );
    }

    #[test]
    fn missing_attribute_suggests() {
        let err = eval_str("builtins.getAttr \"nmae\" { name = 1; }").unwrap_err();
        assert!(err.contains("did you mean 'name'"), "{err}");
    }
}
