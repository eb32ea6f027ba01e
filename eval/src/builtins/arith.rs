//! Arithmetic and comparison: `add`, `sub`, `mul`, `div`, `lessThan`,
//! `bitAnd`, `bitOr`, `bitXor`, `floor`, `ceil`.

use super::Builtin;
use crate::compile::ir::BinOp;
use crate::error::{EvalResult, fail};
use crate::machine::{Machine, type_error};
use crate::ops;
use crate::value::Value;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "add",
        arity: 2,
        func: add,
    },
    Builtin {
        name: "sub",
        arity: 2,
        func: sub,
    },
    Builtin {
        name: "mul",
        arity: 2,
        func: mul,
    },
    Builtin {
        name: "div",
        arity: 2,
        func: div,
    },
    Builtin {
        name: "lessThan",
        arity: 2,
        func: less_than,
    },
    Builtin {
        name: "bitAnd",
        arity: 2,
        func: bit_and,
    },
    Builtin {
        name: "bitOr",
        arity: 2,
        func: bit_or,
    },
    Builtin {
        name: "bitXor",
        arity: 2,
        func: bit_xor,
    },
    Builtin {
        name: "floor",
        arity: 1,
        func: floor,
    },
    Builtin {
        name: "ceil",
        arity: 1,
        func: ceil,
    },
];

fn numeric(m: &mut Machine, op: BinOp, args: &[Value]) -> EvalResult<Value> {
    let a = m.force(&args[0])?;
    let b = m.force(&args[1])?;
    for v in [&a, &b] {
        if !matches!(v, Value::Int(_) | Value::Float(_)) {
            return Err(type_error("an integer", v));
        }
    }
    ops::arith(m, op, a, b)
}

fn add(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    numeric(m, BinOp::Add, args)
}

fn sub(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    numeric(m, BinOp::Sub, args)
}

fn mul(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    numeric(m, BinOp::Mul, args)
}

fn div(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    numeric(m, BinOp::Div, args)
}

fn less_than(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let ordering = ops::compare(m, &args[0], &args[1])?;
    Ok(Value::Bool(ordering == std::cmp::Ordering::Less))
}

fn bits(m: &mut Machine, args: &[Value], f: fn(i64, i64) -> i64) -> EvalResult<Value> {
    let a = m.force_int(&args[0])?;
    let b = m.force_int(&args[1])?;
    Ok(Value::Int(f(a, b)))
}

fn bit_and(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    bits(m, args, |a, b| a & b)
}

fn bit_or(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    bits(m, args, |a, b| a | b)
}

fn bit_xor(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    bits(m, args, |a, b| a ^ b)
}

fn round(m: &mut Machine, v: &Value, f: fn(f64) -> f64) -> EvalResult<Value> {
    match m.force(v)? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => {
            let r = f(x);
            if r.is_finite() && r >= i64::MIN as f64 && r < i64::MAX as f64 {
                Ok(Value::Int(r as i64))
            } else {
                fail(crate::error::ErrorKind::IntegerOverflow(
                    "float to integer conversion",
                ))
            }
        }
        other => Err(type_error("a float", &other)),
    }
}

fn floor(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    round(m, &args[0], f64::floor)
}

fn ceil(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    round(m, &args[0], f64::ceil)
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn arithmetic_checks_overflow_and_zero() {
        assert_eq!(eval_str("builtins.div 7 2").unwrap(), "3");
        assert_eq!(eval_str("builtins.add 1 2.5").unwrap(), "3.5");
        assert!(
            eval_str("builtins.div 1 0")
                .unwrap_err()
                .contains("division by zero")
        );
        assert!(
            eval_str("9223372036854775807 + 1")
                .unwrap_err()
                .contains("overflow")
        );
        assert_eq!(
            eval_str("[ (builtins.floor 2.5) (builtins.ceil 2.1) (builtins.bitXor 5 3) ]").unwrap(),
            "[ 2 3 6 ]"
        );
    }
}
