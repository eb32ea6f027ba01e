//! Attribute sets: keys, selection, set literals (with `__overrides`)
//! and `let`.

use std::rc::Rc;

use smallvec::SmallVec;

use crate::compile::ir::{AttrKey, AttrsCode, Expr, LetCode, StaticLayout};
use crate::env::Env;
use crate::error::{ErrorKind, EvalError, EvalResult, closest_names};
use crate::span::Span;
use crate::symbol::Symbol;
use crate::value::{Attrs, Thunk, ThunkState, Value};

use super::Machine;

impl Machine {
    /// The name of an attribute key; `None` for a dynamic `null` key.
    pub(super) fn attr_key(&mut self, key: &AttrKey, env: &Rc<Env>) -> EvalResult<Option<Symbol>> {
        match key {
            AttrKey::Static(s) => Ok(Some(*s)),
            AttrKey::Dynamic(e, span) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::Null => Ok(None),
                    other => {
                        let s = self.expect_string(&other).map_err(|e| e.at(*span))?;
                        Ok(Some(s.to_symbol()))
                    }
                }
            }
        }
    }

    pub(super) fn eval_select(
        &mut self,
        target: &Expr,
        path: &[AttrKey],
        default: Option<&Expr>,
        span: Span,
        env: &Rc<Env>,
    ) -> EvalResult<Value> {
        let mut v = self.eval(target, env)?;
        for key in path {
            let name = self.attr_key(key, env)?;
            let attrs = match &v {
                Value::Attrs(a) => a.clone(),
                other => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let name = name.map(|n| n.as_str()).unwrap_or("null");
                    return Err(EvalError::new(
                        ErrorKind::TypeError {
                            expected: "a set",
                            got: other.type_description(),
                        },
                        Some(span),
                    )
                    .context(
                        format!("while selecting the attribute '{name}'"),
                        Some(span),
                    ));
                }
            };
            let found = name.and_then(|n| attrs.get(n));
            match found {
                Some(found) => {
                    let found = found.clone();
                    let name = name.unwrap_or(self.sym.name);
                    v = self.force(&found).map_err(|e| {
                        e.context(
                            format!("while evaluating the attribute '{name}'"),
                            Some(span),
                        )
                    })?;
                }
                None => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let wanted = name.map(|n| n.as_str()).unwrap_or("null");
                    return Err(self.missing_attribute(wanted, &attrs, span));
                }
            }
        }
        Ok(v)
    }

    pub(crate) fn missing_attribute(&self, wanted: &str, attrs: &Attrs, span: Span) -> EvalError {
        let suggestions = closest_names(wanted, attrs.iter().map(|(n, _)| n.as_str()));
        EvalError::new(
            ErrorKind::MissingAttribute {
                name: wanted.to_owned(),
                suggestions,
            },
            Some(span),
        )
    }

    pub(super) fn eval_attrs(&mut self, code: &AttrsCode, env: &Rc<Env>) -> EvalResult<Value> {
        if !code.has_overrides
            && let Some(layout) = code.layout()
        {
            return Ok(Value::Attrs(self.eval_static_attrs(code, layout, env)));
        }
        let (scope, mut entries) = if code.recursive {
            // Slots first, then the frame that refers to them, then fill.
            let slots: SmallVec<[Value; 2]> = code
                .statics
                .iter()
                .map(|a| match &*a.value {
                    // With `__overrides` every slot must be replaceable.
                    Expr::Const(v) if !code.has_overrides => v.clone(),
                    _ => Value::Thunk(Thunk::uninit()),
                })
                .collect();
            let frame = Env::new(slots, Some(env.clone()));
            for (slot, attr) in frame.slots.iter().zip(&code.statics) {
                if let Value::Thunk(t) = slot {
                    t.init(attr.value.clone(), frame.clone());
                }
            }
            let entries: Vec<(Symbol, Value, Option<Span>)> = frame
                .slots
                .iter()
                .zip(&code.statics)
                .map(|(v, a)| (a.name, v.clone(), Some(a.span)))
                .collect();
            (frame, entries)
        } else {
            let entries = code
                .statics
                .iter()
                .map(|a| (a.name, self.delay(&a.value, env), Some(a.span)))
                .collect();
            (env.clone(), entries)
        };
        for dynamic in &code.dynamics {
            let name = self.eval(&dynamic.name, &scope)?;
            let name = match name {
                Value::Null => continue,
                other => self.expect_string(&other).map_err(|e| e.at(dynamic.span))?,
            };
            let sym = name.to_symbol();
            if entries.iter().any(|(n, _, _)| *n == sym) {
                return Err(EvalError::new(
                    ErrorKind::InvalidValue(format!(
                        "dynamic attribute '{}' already defined",
                        name.as_str()
                    )),
                    Some(dynamic.span),
                ));
            }
            entries.push((sym, self.delay(&dynamic.value, &scope), Some(dynamic.span)));
        }
        let attrs = Attrs::from_entries_with_positions(entries);
        if code.has_overrides
            && let Some(overrides) = attrs.get(self.sym.overrides)
        {
            return self.apply_overrides(&attrs, overrides.clone(), &scope, code);
        }
        Ok(Value::Attrs(attrs))
    }

    /// A literal without dynamic attributes: one vector filled in the
    /// order worked out at compile time.
    fn eval_static_attrs(
        &mut self,
        code: &AttrsCode,
        layout: &StaticLayout,
        env: &Rc<Env>,
    ) -> Attrs {
        let mut entries = Vec::with_capacity(code.statics.len());
        if code.recursive {
            // Slots first, then the frame that refers to them, then fill.
            let slots: SmallVec<[Value; 2]> = code
                .statics
                .iter()
                .map(|a| match &*a.value {
                    Expr::Const(v) => v.clone(),
                    _ => Value::Thunk(Thunk::uninit()),
                })
                .collect();
            let frame = Env::new(slots, Some(env.clone()));
            for (slot, attr) in frame.slots.iter().zip(&code.statics) {
                if let Value::Thunk(t) = slot {
                    t.init(attr.value.clone(), frame.clone());
                }
            }
            for &i in &layout.order {
                let i = i as usize;
                entries.push((code.statics[i].name, frame.slots[i].clone()));
            }
        } else {
            for &i in &layout.order {
                let attr = &code.statics[i as usize];
                entries.push((attr.name, self.delay(&attr.value, env)));
            }
        }
        Attrs::from_sorted_with_positions(entries, layout.positions.clone())
    }

    /// `rec { __overrides = { … }; … }`: the attributes of `__overrides`
    /// replace those of the set, also where the set refers to itself.
    fn apply_overrides(
        &mut self,
        attrs: &Attrs,
        overrides: Value,
        scope: &Rc<Env>,
        code: &AttrsCode,
    ) -> EvalResult<Value> {
        let overrides = self.force(&overrides)?;
        let overrides = self.expect_attrs(&overrides)?;
        for (name, value) in overrides.iter() {
            if let Some(i) = code.statics.iter().position(|a| a.name == name)
                && let Value::Thunk(t) = &scope.slots[i]
            {
                *t.0.borrow_mut() = ThunkState::Alias(value.clone());
            }
        }
        Ok(Value::Attrs(attrs.update(&overrides)))
    }

    pub(super) fn eval_let(&mut self, code: &LetCode, env: &Rc<Env>) -> EvalResult<Value> {
        let slots: SmallVec<[Value; 2]> = code
            .bindings
            .iter()
            .map(|b| match &**b {
                Expr::Const(v) => v.clone(),
                _ => Value::Thunk(Thunk::uninit()),
            })
            .collect();
        let frame = Env::new(slots, Some(env.clone()));
        for (slot, binding) in frame.slots.iter().zip(&code.bindings) {
            if let Value::Thunk(t) = slot {
                t.init(binding.clone(), frame.clone());
            }
        }
        self.eval(&code.body, &frame)
    }
}
