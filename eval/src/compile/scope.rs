//! Compile-time scopes: how a name becomes an address.
//!
//! The compiler keeps a stack of scopes mirroring the runtime frames (see
//! [`crate::env`]): each `let`, `rec` set, lambda and `with` pushes one.
//! A name is looked up innermost first among the *lexical* scopes; the
//! distance in frames is its `depth`, its position in the scope its
//! `index`. `with` scopes are skipped by that search but remembered:
//! if no lexical scope and no global binds the name, it becomes a dynamic
//! lookup through those `with` frames, innermost first — so a `let` binding
//! or a global always beats a `with`, as in Nix.

use crate::symbol::Symbol;

#[derive(Debug)]
pub enum Scope {
    Lexical(Vec<Symbol>),
    With,
}

/// The outcome of resolving a name.
#[derive(Debug, PartialEq)]
pub enum Resolution {
    Local {
        depth: u32,
        index: u32,
    },
    /// Not bound lexically; the depths of the enclosing `with` frames.
    Dynamic(Vec<u32>),
    /// Bound nowhere.
    Unbound,
}

#[derive(Debug, Default)]
pub struct Scopes {
    stack: Vec<Scope>,
}

impl Scopes {
    pub fn push(&mut self, scope: Scope) {
        self.stack.push(scope);
    }

    pub fn pop(&mut self) {
        self.stack.pop();
    }

    /// Resolve `name`, ignoring the `skip` innermost scopes (used for
    /// `inherit x;` inside a `let` or `rec` set, which refers to the scope
    /// around it) but still counting them in the depth.
    pub fn resolve(&self, name: Symbol, skip: usize) -> Resolution {
        let mut withs = Vec::new();
        for (depth, scope) in self.stack.iter().rev().enumerate() {
            if depth < skip {
                continue;
            }
            match scope {
                Scope::Lexical(names) => {
                    // Later duplicates cannot occur (the parser rejects them),
                    // so the first match is the binding.
                    if let Some(index) = names.iter().position(|n| *n == name) {
                        return Resolution::Local {
                            depth: depth as u32,
                            index: index as u32,
                        };
                    }
                }
                Scope::With => withs.push(depth as u32),
            }
        }
        if withs.is_empty() {
            Resolution::Unbound
        } else {
            Resolution::Dynamic(withs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_beats_with_and_depth_counts_frames() {
        let x = Symbol::intern("scope_test_x");
        let y = Symbol::intern("scope_test_y");
        let mut scopes = Scopes::default();
        scopes.push(Scope::Lexical(vec![x]));
        scopes.push(Scope::With);
        scopes.push(Scope::Lexical(vec![y]));
        assert_eq!(
            scopes.resolve(y, 0),
            Resolution::Local { depth: 0, index: 0 }
        );
        assert_eq!(
            scopes.resolve(x, 0),
            Resolution::Local { depth: 2, index: 0 }
        );
        assert_eq!(scopes.resolve(y, 1), Resolution::Dynamic(vec![1]));
        assert_eq!(
            scopes.resolve(Symbol::intern("scope_test_z"), 0),
            Resolution::Dynamic(vec![1])
        );
    }
}
