//! Functions: closures of user lambdas and (partially applied) builtins.

use std::rc::Rc;

use super::Value;
use crate::builtins::Builtin;
use crate::compile::ir::LambdaCode;
use crate::env::Env;

/// A user lambda together with the environment it closes over.
#[derive(Debug)]
pub struct Closure {
    pub code: Rc<LambdaCode>,
    pub env: Rc<Env>,
}

/// A builtin with the arguments given so far (fewer than its arity).
#[derive(Debug)]
pub struct PrimOpApp {
    pub builtin: &'static Builtin,
    pub args: Vec<Value>,
}
