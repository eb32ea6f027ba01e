//! Threads with a big stack, as big as the address space allows.
//!
//! Deep (non-tail) recursion in parsing and evaluation needs more stack than
//! a thread has by default. A big stack costs only address space (only the
//! pages a recursion touches become resident), but address space can be
//! short (`ulimit -v`): then a smaller stack is taken instead of failing,
//! and the caller bounds its recursion by the size it got.

use std::sync::Mutex;

/// Run `f` on a new thread named `name` with a stack of `wanted` bytes or,
/// when the address space cannot hold that, the largest of `wanted / 2`,
/// `wanted / 4`, … that is at least `least`. `f` is told the stack size it
/// got. Returns `Err(f)` when not even `least` could be had, so the caller
/// can run `f` where it is. A panic in `f` is resumed on the caller.
pub fn run_on_big_stack<F, R>(name: &str, wanted: usize, least: usize, f: F) -> Result<R, F>
where
    F: FnOnce(usize) -> R + Send,
    R: Send,
{
    // The closure survives a failed spawn in this slot.
    let slot = Mutex::new(Some(f));
    let mut size = wanted;
    while size >= least.max(1) {
        let outcome = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .stack_size(size)
                .spawn_scoped(scope, || {
                    let f = slot.lock().ok().and_then(|mut f| f.take());
                    f.map(|f| f(size))
                })
                .map(|handle| handle.join())
        });
        match outcome {
            Ok(Ok(Some(r))) => return Ok(r),
            Ok(Ok(None)) => unreachable!("the closure runs once"),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => size /= 2,
        }
    }
    match slot.into_inner() {
        Ok(Some(f)) => Err(f),
        _ => unreachable!("the closure did not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_the_wanted_stack_when_it_fits() {
        let got = run_on_big_stack("t", 16 << 20, 1 << 20, |size| size).ok();
        assert_eq!(got, Some(16 << 20));
    }

    #[test]
    fn gives_the_closure_back_when_nothing_fits() {
        // No address space holds a stack of half the address range.
        let huge = usize::MAX / 2;
        let back = run_on_big_stack("t", huge, huge, |_| 1);
        match back {
            Ok(_) => panic!("no thread can start"),
            Err(f) => assert_eq!(f(0), 1),
        }
    }

    #[test]
    fn takes_a_smaller_stack_when_the_wanted_one_does_not_fit() {
        let huge = 1usize << (usize::BITS - 2);
        let got = run_on_big_stack("t", huge, 1 << 20, |size| size).ok();
        let size = got.expect("a smaller stack starts");
        assert!(size < huge && size >= 1 << 20, "{size}");
    }
}
