//! Lists: `map`, `filter`, `length`, `head`, `tail`, `elemAt`, `elem`,
//! `foldl'`, `genList`, `concatLists`, `concatMap`, `any`, `all`, `sort`,
//! `partition`, `groupBy`, `genericClosure`.
//!
//! Loops are Rust loops: `foldl'` over a million elements uses no stack.

use super::Builtin;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::ops;
use crate::symbol::Symbol;
use crate::value::{Attrs, List, Thunk, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "map",
        arity: 2,
        func: map,
    },
    Builtin {
        name: "filter",
        arity: 2,
        func: filter,
    },
    Builtin {
        name: "length",
        arity: 1,
        func: length,
    },
    Builtin {
        name: "head",
        arity: 1,
        func: head,
    },
    Builtin {
        name: "tail",
        arity: 1,
        func: tail,
    },
    Builtin {
        name: "elemAt",
        arity: 2,
        func: elem_at,
    },
    Builtin {
        name: "elem",
        arity: 2,
        func: elem,
    },
    Builtin {
        name: "foldl'",
        arity: 3,
        func: foldl_strict,
    },
    Builtin {
        name: "genList",
        arity: 2,
        func: gen_list,
    },
    Builtin {
        name: "concatLists",
        arity: 1,
        func: concat_lists,
    },
    Builtin {
        name: "concatMap",
        arity: 2,
        func: concat_map,
    },
    Builtin {
        name: "any",
        arity: 2,
        func: any,
    },
    Builtin {
        name: "all",
        arity: 2,
        func: all,
    },
    Builtin {
        name: "sort",
        arity: 2,
        func: sort,
    },
    Builtin {
        name: "partition",
        arity: 2,
        func: partition,
    },
    Builtin {
        name: "groupBy",
        arity: 2,
        func: group_by,
    },
    Builtin {
        name: "genericClosure",
        arity: 1,
        func: generic_closure,
    },
];

fn map(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[1])?;
    let f = &args[0];
    let items = list
        .iter()
        .map(|x| Value::Thunk(Thunk::apply(f.clone(), x.clone())))
        .collect();
    Ok(Value::List(List::new(items)))
}

fn filter(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[1])?;
    let mut out = Vec::new();
    for x in list.iter() {
        let keep = m.call(f.clone(), x.clone(), None)?;
        if m.expect_bool(&keep)? {
            out.push(x.clone());
        }
    }
    Ok(Value::List(List::new(out)))
}

fn length(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    Ok(Value::Int(m.force_list(&args[0])?.len() as i64))
}

fn invalid(msg: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::InvalidValue(msg.into()), None)
}

fn head(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[0])?;
    match list.get(0) {
        Some(v) => {
            let v = v.clone();
            m.force(&v)
        }
        None => Err(invalid("'builtins.head' called on an empty list")),
    }
}

fn tail(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[0])?;
    if list.is_empty() {
        return Err(invalid("'builtins.tail' called on an empty list"));
    }
    Ok(Value::List(List::new(list.as_slice()[1..].to_vec())))
}

fn elem_at(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[0])?;
    let i = m.force_int(&args[1])?;
    match usize::try_from(i).ok().and_then(|i| list.get(i)) {
        Some(v) => {
            let v = v.clone();
            m.force(&v)
        }
        None => Err(invalid(format!("list index {i} is out of bounds"))),
    }
}

fn elem(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let list = m.force_list(&args[1])?;
    for x in list.iter() {
        if ops::equal(m, &args[0], x)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn foldl_strict(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[2])?;
    // As Nix 2.8: the initial accumulator is forced only for an empty
    // list; otherwise it is passed to `f` as it is.
    if list.is_empty() {
        return m.force(&args[1]);
    }
    let mut acc = args[1].clone();
    for x in list.iter() {
        let partial = m.call(f.clone(), acc, None)?;
        acc = m.call(partial, x.clone(), None)?;
    }
    Ok(acc)
}

fn gen_list(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = args[0].clone();
    let n = m.force_int(&args[1])?;
    // A list that could not fit in memory is an error, not an abort.
    if !(0..=(u32::MAX as i64)).contains(&n) {
        return Err(invalid(format!("cannot create list of size {n}")));
    }
    let items = (0..n)
        .map(|i| Value::Thunk(Thunk::apply(f.clone(), Value::Int(i))))
        .collect();
    Ok(Value::List(List::new(items)))
}

fn concat_lists(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let lists = m.force_list(&args[0])?;
    let mut out = Vec::new();
    for l in lists.iter() {
        out.extend_from_slice(m.force_list(l)?.as_slice());
    }
    Ok(Value::List(List::new(out)))
}

fn concat_map(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[1])?;
    let mut out = Vec::new();
    for x in list.iter() {
        let r = m.call(f.clone(), x.clone(), None)?;
        out.extend_from_slice(m.expect_list(&r)?.as_slice());
    }
    Ok(Value::List(List::new(out)))
}

fn any_all(m: &mut Machine, args: &[Value], want: bool) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[1])?;
    for x in list.iter() {
        let r = m.call(f.clone(), x.clone(), None)?;
        if m.expect_bool(&r)? == want {
            return Ok(Value::Bool(want));
        }
    }
    Ok(Value::Bool(!want))
}

fn any(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    any_all(m, args, true)
}

fn all(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    any_all(m, args, false)
}

/// A stable merge sort that only asks `less(b, a)`, so a comparator that
/// is not a total order cannot make it misbehave, and errors stop it.
fn sort(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[1])?;
    let mut items: Vec<Value> = list.as_slice().to_vec();
    let less = |m: &mut Machine, a: &Value, b: &Value| -> EvalResult<bool> {
        let partial = m.call(f.clone(), a.clone(), None)?;
        let r = m.call(partial, b.clone(), None)?;
        m.expect_bool(&r)
    };
    let mut width = 1;
    let n = items.len();
    let mut buffer: Vec<Value> = Vec::with_capacity(n);
    while width < n {
        buffer.clear();
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j) = (start, mid);
            while i < mid && j < end {
                if less(m, &items[j], &items[i])? {
                    buffer.push(items[j].clone());
                    j += 1;
                } else {
                    buffer.push(items[i].clone());
                    i += 1;
                }
            }
            buffer.extend_from_slice(&items[i..mid]);
            buffer.extend_from_slice(&items[j..end]);
            start = end;
        }
        std::mem::swap(&mut items, &mut buffer);
        width *= 2;
    }
    Ok(Value::List(List::new(items)))
}

fn partition(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[1])?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for x in list.iter() {
        let r = m.call(f.clone(), x.clone(), None)?;
        if m.expect_bool(&r)? {
            right.push(x.clone());
        } else {
            wrong.push(x.clone());
        }
    }
    Ok(Value::Attrs(Attrs::from_entries(vec![
        (Symbol::intern("right"), Value::List(List::new(right))),
        (Symbol::intern("wrong"), Value::List(List::new(wrong))),
    ])))
}

fn group_by(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let f = m.force_function(&args[0])?;
    let list = m.force_list(&args[1])?;
    let mut groups: Vec<(Symbol, Vec<Value>)> = Vec::new();
    let mut index: rustc_hash::FxHashMap<Symbol, usize> = Default::default();
    for x in list.iter() {
        let key = m.call(f.clone(), x.clone(), None)?;
        let key = m.expect_string(&key)?.to_symbol();
        let slot = *index.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(x.clone());
    }
    let entries = groups
        .into_iter()
        .map(|(k, v)| (k, Value::List(List::new(v))))
        .collect();
    Ok(Value::Attrs(Attrs::from_entries(entries)))
}

fn generic_closure(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let params = m.force_attrs(&args[0])?;
    let start = params
        .get_str("startSet")
        .cloned()
        .ok_or_else(|| invalid("attribute 'startSet' required"))?;
    let operator = params
        .get_str("operator")
        .cloned()
        .ok_or_else(|| invalid("attribute 'operator' required"))?;
    let operator = m.force_function(&operator)?;
    let key_sym = Symbol::intern("key");
    let mut work: std::collections::VecDeque<Value> =
        m.force_list(&start)?.iter().cloned().collect();
    let mut seen_keys: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    while let Some(item) = work.pop_front() {
        let attrs = m.force_attrs(&item)?;
        let key = attrs
            .get(key_sym)
            .cloned()
            .ok_or_else(|| invalid("attribute 'key' required"))?;
        let key = m.force(&key)?;
        let mut known = false;
        for k in &seen_keys {
            if ops::compare(m, k, &key)? == std::cmp::Ordering::Equal && ops::equal(m, k, &key)? {
                known = true;
                break;
            }
        }
        if known {
            continue;
        }
        seen_keys.push(key);
        out.push(Value::Attrs(attrs));
        let next = m.call(operator.clone(), item, None)?;
        work.extend(m.expect_list(&next)?.iter().cloned());
    }
    Ok(Value::List(List::new(out)))
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn foldl_strict_handles_a_million_elements() {
        assert_eq!(
            eval_str("builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 1000000)").unwrap(),
            "499999500000"
        );
    }

    #[test]
    fn sort_is_stable() {
        assert_eq!(
            eval_str("map (x: x.v) (builtins.sort (a: b: a.k < b.k) [ { k = 2; v = 1; } { k = 1; v = 2; } { k = 2; v = 3; } { k = 1; v = 4; } ])").unwrap(),
            "[ 2 4 1 3 ]"
        );
    }

    #[test]
    fn head_of_empty_list_is_an_error() {
        assert!(
            eval_str("builtins.head []")
                .unwrap_err()
                .contains("empty list")
        );
    }
}
