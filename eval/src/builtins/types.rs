//! Type predicates: `isAttrs`, `isInt`, …, `typeOf`.

use super::Builtin;
use crate::error::EvalResult;
use crate::machine::Machine;
use crate::value::Value;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "typeOf",
        arity: 1,
        func: type_of,
    },
    Builtin {
        name: "isAttrs",
        arity: 1,
        func: is_attrs,
    },
    Builtin {
        name: "isBool",
        arity: 1,
        func: is_bool,
    },
    Builtin {
        name: "isFloat",
        arity: 1,
        func: is_float,
    },
    Builtin {
        name: "isFunction",
        arity: 1,
        func: is_function,
    },
    Builtin {
        name: "isInt",
        arity: 1,
        func: is_int,
    },
    Builtin {
        name: "isList",
        arity: 1,
        func: is_list,
    },
    Builtin {
        name: "isNull",
        arity: 1,
        func: is_null,
    },
    Builtin {
        name: "isPath",
        arity: 1,
        func: is_path,
    },
    Builtin {
        name: "isString",
        arity: 1,
        func: is_string,
    },
];

fn type_of(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    Ok(Value::string(m.force(&args[0])?.type_of()))
}

fn check(m: &mut Machine, v: &Value, pred: fn(&Value) -> bool) -> EvalResult<Value> {
    Ok(Value::Bool(pred(&m.force(v)?)))
}

fn is_attrs(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::Attrs(_)))
}

fn is_bool(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::Bool(_)))
}

fn is_float(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::Float(_)))
}

fn is_function(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], Value::is_function)
}

fn is_int(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::Int(_)))
}

fn is_list(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::List(_)))
}

fn is_null(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::Null))
}

fn is_path(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::Path(_)))
}

fn is_string(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    check(m, &args[0], |v| matches!(v, Value::String(_)))
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn predicates_and_type_of() {
        assert_eq!(
            eval_str("[ (builtins.isInt 1) (builtins.isInt 1.0) (builtins.typeOf builtins.add) (builtins.typeOf (builtins.add 1)) (isNull null) ]").unwrap(),
            "[ true false \"lambda\" \"lambda\" true ]"
        );
    }
}
