//! Lists: an immutable, shared vector of values (elements are usually
//! thunks until something forces them).

use std::rc::Rc;

use super::Value;

#[derive(Clone, Debug, Default)]
pub struct List(Rc<Vec<Value>>);

impl List {
    pub fn new(items: Vec<Value>) -> List {
        List(Rc::new(items))
    }

    pub fn empty() -> List {
        thread_local! {
            static EMPTY: List = List(Rc::new(Vec::new()));
        }
        EMPTY.with(List::clone)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Value> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Value] {
        &self.0
    }

    /// `self ++ other`.
    pub fn concat(&self, other: &List) -> List {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let mut out = Vec::with_capacity(self.len() + other.len());
        out.extend_from_slice(&self.0);
        out.extend_from_slice(&other.0);
        List::new(out)
    }

    pub fn ptr_eq(&self, other: &List) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    pub fn addr(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }
}

impl From<Vec<Value>> for List {
    fn from(items: Vec<Value>) -> List {
        List::new(items)
    }
}
