//! Runtime environments.
//!
//! The compiler gives every variable a `(depth, index)` address: `depth`
//! counts scopes outward from the current one, `index` is the slot in that
//! scope. At run time each scope is one `Env` frame with its slots and a
//! pointer to the frame of the enclosing scope, so a variable read is a
//! short pointer walk and an index, never a name lookup. A `with` scope is a
//! frame with one slot holding the (lazy) attribute set.

use std::rc::Rc;

use smallvec::SmallVec;

use crate::value::Value;

#[derive(Debug)]
pub struct Env {
    pub slots: SmallVec<[Value; 2]>,
    pub parent: Option<Rc<Env>>,
}

impl Env {
    pub fn new(slots: SmallVec<[Value; 2]>, parent: Option<Rc<Env>>) -> Rc<Env> {
        Rc::new(Env { slots, parent })
    }

    /// The frame `depth` scopes out from this one.
    #[inline]
    pub fn ancestor(self: &Rc<Env>, depth: u32) -> &Rc<Env> {
        let mut env = self;
        for _ in 0..depth {
            // The compiler only emits depths that exist.
            env = env.parent.as_ref().expect("compiler emitted a valid depth");
        }
        env
    }

    #[inline]
    pub fn lookup(self: &Rc<Env>, depth: u32, index: u32) -> &Value {
        &self.ancestor(depth).slots[index as usize]
    }
}
