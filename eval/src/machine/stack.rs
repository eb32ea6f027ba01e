//! The recursion guard: the stack limit of the evaluation thread, and
//! entering and leaving a level of evaluation.

use crate::error::{ErrorKind, EvalError, EvalResult};

use super::Machine;

/// How far recursion may go on a thread whose stack size is unknown (not
/// started by [`crate::run_with_big_stack`]); sized for an 8 MiB stack.
pub const DEFAULT_MAX_DEPTH: usize = 4_000;

/// What is kept free at the end of the stack for the frames between two
/// checks and for rendering the error.
const STACK_MARGIN: usize = 4 << 20;

thread_local! {
    /// Lowest stack address the evaluator may use on this thread (0 when
    /// unknown). Set by [`crate::run_with_big_stack`].
    pub(super) static STACK_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The current stack position (an address inside the current frame).
#[inline(always)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Record that this thread has `size` bytes of stack below the caller
/// (0: unknown, so recursion is bounded by [`DEFAULT_MAX_DEPTH`]).
pub(crate) fn set_stack_size_here(size: usize) {
    let limit = match size {
        0 => 0,
        _ => stack_pointer().saturating_sub(size.saturating_sub(STACK_MARGIN)),
    };
    STACK_LIMIT.with(|l| l.set(limit));
}

impl Machine {
    #[inline]
    pub(super) fn enter(&mut self) -> EvalResult<()> {
        self.depth += 1;
        let exhausted = if self.stack_limit != 0 {
            stack_pointer() < self.stack_limit
        } else {
            self.depth > self.max_depth
        };
        if exhausted {
            self.depth -= 1;
            return Err(EvalError::new(ErrorKind::StackOverflow, None));
        }
        Ok(())
    }

    /// Fail with a stack overflow error when the stack is nearly used up.
    /// For recursive walks outside `eval` (printing, equality, JSON, deep
    /// forcing) over values that can be nested arbitrarily deep.
    #[inline]
    pub fn check_stack(&self) -> EvalResult<()> {
        let exhausted = if self.stack_limit != 0 {
            stack_pointer() < self.stack_limit
        } else {
            self.depth > self.max_depth
        };
        if exhausted {
            return Err(EvalError::new(ErrorKind::StackOverflow, None));
        }
        Ok(())
    }

    #[inline]
    pub(super) fn leave(&mut self) {
        self.depth -= 1;
    }
}
