//! Operators: arithmetic (checked), `+` on strings and paths, `//`, `++`,
//! equality and ordering, with Nix 2.8's rules.
//!
//! - Integers and floats mix; an integer result that overflows is an error,
//!   as is division by zero.
//! - `==` is deep on lists and sets, compares derivations (sets with
//!   `type = "derivation"`) by `outPath`, and is `false` for functions —
//!   except that Nix treats the very same value inside two containers as
//!   equal, which we mirror by pointer identity.
//! - `<` orders numbers, strings, paths and lists (lexicographically).

use std::cmp::Ordering;

use crate::coerce::Coercion;
use crate::compile::ir::BinOp;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::{Machine, type_error};
use crate::value::{StringBuilder, Value};

pub fn binary(m: &mut Machine, op: BinOp, l: Value, r: Value) -> EvalResult<Value> {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => arith(m, op, l, r),
        BinOp::Eq => Ok(Value::Bool(equal(m, &l, &r)?)),
        BinOp::NotEq => Ok(Value::Bool(!equal(m, &l, &r)?)),
        BinOp::Less => Ok(Value::Bool(compare(m, &l, &r)? == Ordering::Less)),
        BinOp::LessEq => Ok(Value::Bool(compare(m, &r, &l)? != Ordering::Less)),
        BinOp::Greater => Ok(Value::Bool(compare(m, &r, &l)? == Ordering::Less)),
        BinOp::GreaterEq => Ok(Value::Bool(compare(m, &l, &r)? != Ordering::Less)),
        BinOp::Update => {
            let a = m.expect_attrs(&l)?;
            let b = m.expect_attrs(&r)?;
            Ok(Value::Attrs(a.update(&b)))
        }
        BinOp::Concat => {
            let a = m.expect_list(&l)?;
            let b = m.expect_list(&r)?;
            Ok(Value::List(a.concat(&b)))
        }
    }
}

/// `+ - * /` on forced operands.
pub fn arith(m: &mut Machine, op: BinOp, l: Value, r: Value) -> EvalResult<Value> {
    match (&l, &r) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            let result = match op {
                BinOp::Add => a.checked_add(b).ok_or(overflow("addition"))?,
                BinOp::Sub => a.checked_sub(b).ok_or(overflow("subtraction"))?,
                BinOp::Mul => a.checked_mul(b).ok_or(overflow("multiplication"))?,
                _ => {
                    if b == 0 {
                        return Err(EvalError::new(ErrorKind::DivisionByZero, None));
                    }
                    a.checked_div(b).ok_or(overflow("division"))?
                }
            };
            Ok(Value::Int(result))
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let a = as_float(&l);
            let b = as_float(&r);
            let result = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                _ => {
                    if b == 0.0 {
                        return Err(EvalError::new(ErrorKind::DivisionByZero, None));
                    }
                    a / b
                }
            };
            Ok(Value::Float(result))
        }
        _ if op == BinOp::Add => add_strings_or_paths(m, l, r),
        (Value::Int(_) | Value::Float(_), other) | (other, _) => {
            let what = match op {
                BinOp::Sub => "subtraction",
                BinOp::Mul => "multiplication",
                _ => "division",
            };
            let _ = what;
            Err(type_error("an integer", other))
        }
    }
}

fn overflow(what: &'static str) -> EvalError {
    EvalError::new(ErrorKind::IntegerOverflow(what), None)
}

fn as_float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

/// `+` where neither side is a number: string or path concatenation.
/// The left operand decides the result type, as in Nix.
fn add_strings_or_paths(m: &mut Machine, l: Value, r: Value) -> EvalResult<Value> {
    match &l {
        Value::Path(p) => {
            let rhs = m.coerce_to_string(&r, Coercion::PathPart)?;
            if rhs.has_context() {
                return Err(EvalError::new(
                    ErrorKind::InvalidValue(format!(
                        "a string that refers to a store path cannot be appended to a path: '{}'",
                        rhs.as_str()
                    )),
                    None,
                ));
            }
            let joined = format!("{}{}", p.display(), rhs.as_str());
            Ok(Value::path(crate::path::normalise(&joined)))
        }
        Value::String(_) | Value::Attrs(_) => {
            let a = m.coerce_to_string(&l, Coercion::Interpolate)?;
            let b = m.coerce_to_string(&r, Coercion::Interpolate)?;
            let mut out = StringBuilder::new();
            out.push(&a);
            out.push(&b);
            Ok(Value::String(out.finish()))
        }
        other => Err(EvalError::new(
            ErrorKind::InvalidValue(format!(
                "cannot add {} to {}",
                r.type_description(),
                other.type_description()
            )),
            None,
        )),
    }
}

/// Nix's `==`.
pub fn equal(m: &mut Machine, l: &Value, r: &Value) -> EvalResult<bool> {
    m.check_stack()?;
    let l = m.force(l)?;
    let r = m.force(r)?;
    Ok(match (&l, &r) {
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            as_float(&l) == as_float(&r)
        }
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::String(a), Value::String(b)) => a.as_bytes() == b.as_bytes(),
        (Value::Path(a), Value::Path(b)) => a == b,
        // No shortcut for the very same list or set (Nix 2.8 compares the
        // two operands' elements, forcing each, also in `x == x`).
        (Value::List(a), Value::List(b)) => {
            if a.len() != b.len() {
                return Ok(false);
            }
            for (x, y) in a.iter().zip(b.iter()) {
                if !elements_equal(m, x, y)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Attrs(a), Value::Attrs(b)) => {
            if is_derivation(m, a)?
                && is_derivation(m, b)?
                && let (Some(x), Some(y)) = (a.get(m.sym.out_path), b.get(m.sym.out_path))
            {
                let (x, y) = (x.clone(), y.clone());
                return equal(m, &x, &y);
            }
            if a.len() != b.len() {
                return Ok(false);
            }
            let pairs: Vec<(Value, Value)> = a
                .iter()
                .zip(b.iter())
                .map(|((n1, v1), (n2, v2))| {
                    if n1 == n2 {
                        Ok((v1.clone(), v2.clone()))
                    } else {
                        Err(())
                    }
                })
                .collect::<Result<_, ()>>()
                .unwrap_or_default();
            if pairs.len() != a.len() {
                return Ok(false);
            }
            for (x, y) in &pairs {
                if !elements_equal(m, x, y)? {
                    return Ok(false);
                }
            }
            true
        }
        _ => false,
    })
}

/// Two elements of lists or sets being compared, as Nix 2.8's `eqValues`:
/// both are forced, then the very same value is equal (a function too),
/// else they are compared.
fn elements_equal(m: &mut Machine, x: &Value, y: &Value) -> EvalResult<bool> {
    let fx = m.force(x)?;
    let fy = m.force(y)?;
    if same_value(x, y) || same_value(&fx, &fy) {
        return Ok(true);
    }
    equal(m, &fx, &fy)
}

/// The very same value object (Nix compares container elements by
/// pointer before comparing contents).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Thunk(x), Value::Thunk(y)) => x.ptr_eq(y),
        (Value::Lambda(x), Value::Lambda(y)) => std::rc::Rc::ptr_eq(x, y),
        (Value::PrimOp(x), Value::PrimOp(y)) => std::rc::Rc::ptr_eq(x, y),
        (Value::Attrs(x), Value::Attrs(y)) => x.ptr_eq(y),
        (Value::List(x), Value::List(y)) => x.ptr_eq(y),
        _ => false,
    }
}

/// A set with `type = "derivation"`.
pub fn is_derivation(m: &mut Machine, attrs: &crate::value::Attrs) -> EvalResult<bool> {
    match attrs.get(m.sym.type_) {
        Some(t) => {
            let t = t.clone();
            Ok(matches!(m.force(&t)?, Value::String(s) if s.as_str() == "derivation"))
        }
        None => Ok(false),
    }
}

/// Nix's ordering for `<` and `builtins.lessThan`/`sort`.
pub fn compare(m: &mut Machine, l: &Value, r: &Value) -> EvalResult<Ordering> {
    m.check_stack()?;
    let l = m.force(l)?;
    let r = m.force(r)?;
    match (&l, &r) {
        (Value::Int(a), Value::Int(b)) => Ok(a.cmp(b)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => Ok(as_float(&l)
            .partial_cmp(&as_float(&r))
            .unwrap_or(Ordering::Equal)),
        // Bytewise, as Nix's `strcmp`.
        (Value::String(a), Value::String(b)) => Ok(a.as_bytes().cmp(b.as_bytes())),
        (Value::Path(a), Value::Path(b)) => Ok(a.as_os_str().cmp(b.as_os_str())),
        (Value::List(a), Value::List(b)) => {
            for (x, y) in a.iter().zip(b.iter()) {
                // Nix tests equality first, then orders.
                if !equal(m, x, y)? {
                    return compare(m, x, y);
                }
            }
            Ok(a.len().cmp(&b.len()))
        }
        _ => Err(EvalError::new(
            ErrorKind::InvalidValue(format!(
                "cannot compare {} with {}",
                l.type_description(),
                r.type_description()
            )),
            None,
        )),
    }
}
