//! Bindings of sets and `let`: attribute paths merged into nested sets as
//! Nix merges them, duplicates, `inherit`, and a missing `;`.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Tok, Token};
use crate::span::Span;
use crate::symbol::Symbol;

use super::{PResult, Parser};

impl<'s> Parser<'s, '_> {
    /// Bindings up to (not including) `end` (`}` or `in`), merged as Nix
    /// merges them. (The caller rejects dynamic attributes in `let`.)
    pub(super) fn parse_binds(&mut self, end: Tok) -> PResult<Bindings> {
        let mut b = BindingsBuilder::default();
        loop {
            let t = self.peek()?;
            if t.kind == end {
                return Ok(b.bindings);
            }
            match t.kind {
                Tok::Inherit => {
                    self.bump()?;
                    let from = if self.peek()?.kind == Tok::LParen {
                        self.bump()?;
                        let e = self.parse_expr()?;
                        self.expect(Tok::RParen, "')'")?;
                        b.bindings.inherit_from.push(e);
                        Some(b.bindings.inherit_from.len() as u32 - 1)
                    } else {
                        None
                    };
                    // Where the inherit so far ends, and the last name.
                    let mut before = self.pos as u32;
                    let nix_pos = self.span(before, before);
                    let mut last: Option<(u32, Span)> = None;
                    loop {
                        let n = self.peek()?;
                        if n.kind == Tok::Semi {
                            self.bump()?;
                            break;
                        }
                        if !matches!(n.kind, Tok::Id | Tok::OrKw | Tok::Quote | Tok::DollarCurly) {
                            if let Some((end, name)) = last
                                && matches!(n.kind, Tok::Assign | Tok::Dot)
                                && self.src[end as usize..name.start as usize].contains('\n')
                            {
                                return Err(self.missing_inherit_semi(end, name, n));
                            }
                            return Err(self.unexpected(n, "an attribute name or ';'"));
                        }
                        let name = self.parse_attr_name()?;
                        last = Some((before, name.span));
                        before = name.span.end;
                        let AttrNameKind::Static(sym) = name.kind else {
                            return Err(ParseError::new(
                                name.span,
                                "dynamic attributes not allowed in inherit",
                            ));
                        };
                        let value = match from {
                            Some(i) => AttrValue::InheritFrom(i),
                            None => AttrValue::Inherit,
                        };
                        let ident = Ident {
                            name: sym,
                            span: name.span,
                        };
                        if let Some(prev) = b.insert_top(ident, value) {
                            return Err(self.dup_attr(&[Some(ident.name)], ident.span, prev));
                        }
                        b.bindings.inherit_positions.push((sym, nix_pos));
                    }
                }
                Tok::Id | Tok::OrKw | Tok::Quote | Tok::DollarCurly => {
                    let path = self.parse_attrpath()?;
                    self.expect(Tok::Assign, "'=' after the attribute name")?;
                    let value = self.parse_expr()?;
                    let next = self.peek()?;
                    if next.kind != Tok::Semi {
                        return Err(self.missing_semi(&value, next));
                    }
                    self.bump()?;
                    self.add_attr(&mut b, path, value)?;
                }
                _ => {
                    let expected = if end == Tok::In {
                        "an attribute name, 'inherit' or 'in'"
                    } else {
                        "an attribute name, 'inherit' or '}'"
                    };
                    return Err(self.unexpected(t, expected));
                }
            }
        }
    }

    /// The error for a binding's value not followed by `;`. When the `;`
    /// was forgotten at the end of a line, the next line either starts a
    /// new binding (`b = 2;`, which the value swallowed as a function
    /// argument before the `=` stopped it) or closes the set: the error
    /// then points at the end of the line where the `;` belongs.
    fn missing_semi(&self, value: &Expr, next: Token) -> ParseError {
        let breaks_before_next =
            |end: u32| self.src[end as usize..next.start as usize].contains('\n');
        let mut end = None;
        if next.kind == Tok::Assign {
            // `a = 1 ⏎ b = 2;` parsed as `a = (1 b)`: the `;` is missing
            // after the last part of the application before the line break.
            // The application may sit at the end of a function's body, an
            // operator's right side, an `else` branch, … (`a = x: x ⏎ b = 2;`).
            end = self.semi_before_swallowed(value, next);
        } else if breaks_before_next(value.span.end) {
            end = Some(value.span.end);
        }
        let Some(end) = end else {
            return self.unexpected(next, "';' after the attribute's value");
        };
        let found = self.unexpected(next, "';'").message;
        let found = found
            .strip_prefix("syntax error: unexpected ")
            .and_then(|f| f.strip_suffix(", expected ';'"))
            .unwrap_or("this")
            .to_owned();
        ParseError::new(
            self.span(end, end),
            "syntax error: missing ';' at the end of this line (after the attribute's value)",
        )
        .with_label(
            self.span(next.start, next.end),
            format!("unexpected {found}"),
        )
    }

    /// Where a `;` was forgotten when `value` swallowed, as a function
    /// argument, what came after a line break (the next binding's name, a
    /// `with`'s body): the end of the last part of an application at the
    /// right end of `value` that a line break separates from `next`.
    pub(super) fn semi_before_swallowed(&self, value: &Expr, next: Token) -> Option<u32> {
        let breaks_before_next =
            |end: u32| self.src[end as usize..next.start as usize].contains('\n');
        let mut ends = Vec::new();
        let mut expr = value;
        loop {
            expr = match &expr.kind {
                ExprKind::Apply(apply) => {
                    let mut func = &apply.func;
                    while let ExprKind::Apply(inner) = &func.kind {
                        ends.push(inner.arg.span.end);
                        func = &inner.func;
                    }
                    ends.push(func.span.end);
                    &apply.arg
                }
                ExprKind::Lambda(l) => &l.body,
                ExprKind::Binary(b) => &b.rhs,
                ExprKind::Unary(u) => &u.operand,
                ExprKind::If(i) => &i.else_branch,
                ExprKind::With(w) => &w.body,
                ExprKind::Assert(a) => &a.body,
                ExprKind::Let(l) => &l.body,
                _ => break,
            };
        }
        ends.into_iter().filter(|e| breaks_before_next(*e)).max()
    }

    /// The error for an `inherit` whose `;` was forgotten at the end of its
    /// line: the next binding's first name was taken as one more inherited
    /// name (`last`, started on a new line), and `next` (its `=` or `.`)
    /// stopped it. `before` is where the `inherit` before `last` ended.
    pub(super) fn missing_inherit_semi(&self, before: u32, last: Span, next: Token) -> ParseError {
        let found = match next.kind {
            Tok::Assign => "'='",
            _ => "'.'",
        };
        ParseError::new(
            self.span(before, before),
            "syntax error: missing ';' at the end of this line (after 'inherit')",
        )
        .with_label(
            last.to(self.span(next.start, next.end)),
            format!("unexpected {found}: this looks like the next attribute"),
        )
    }

    fn dup_attr(&self, path: &[Option<Symbol>], at: Span, first: Span) -> ParseError {
        let name: Vec<&str> = path
            .iter()
            .map(|s| s.map_or("${…}", |s| self.interner.resolve(s)))
            .collect();
        ParseError::new(
            at,
            format!("attribute '{}' already defined", name.join(".")),
        )
        .with_label(first, "first defined here")
    }

    /// Adds `path = value` to the bindings, merging with earlier
    /// definitions the way Nix 2.8's `addAttr` does.
    fn add_attr(&mut self, b: &mut BindingsBuilder, path: AttrPath, value: Expr) -> PResult<()> {
        // The path's names, for error messages (`None`: a dynamic name).
        let full: SmallVec<[Option<Symbol>; 4]> = path
            .iter()
            .map(|n| match n.kind {
                AttrNameKind::Static(s) => Some(s),
                AttrNameKind::Dynamic(_) => None,
            })
            .collect();
        let last = path.len() - 1;
        let def_span = path[0].span.to(path[last].span);
        let mut value = Some(value);
        let mut take_value = || value.take().expect("placed once, at the last path element");
        let mut iter = path.into_iter();
        // The set being added to: `None` is the top level (indexed by the
        // builder's map), `Some` a nested set reached through the path.
        let mut target: Option<&mut Bindings> = None;
        for (idx, name) in iter.by_ref().enumerate() {
            let is_last = idx == last;
            match name.kind {
                AttrNameKind::Static(sym) => {
                    let ident = Ident {
                        name: sym,
                        span: name.span,
                    };
                    let cur: &mut Bindings = match target {
                        None => {
                            // Top level: use the index.
                            match b.index.get(&sym).copied() {
                                None => {
                                    let v = if is_last {
                                        AttrValue::Expr(take_value())
                                    } else {
                                        AttrValue::Expr(empty_set(name.span))
                                    };
                                    b.insert_top(ident, v);
                                    if is_last {
                                        return Ok(());
                                    }
                                    let i = b.bindings.attrs.len() - 1;
                                    target = Some(nested_bindings(&mut b.bindings.attrs[i]));
                                    continue;
                                }
                                Some(i) => {
                                    let attr = &mut b.bindings.attrs[i as usize];
                                    if is_last {
                                        return self.merge_final(
                                            attr,
                                            take_value(),
                                            &full,
                                            def_span,
                                        );
                                    }
                                    if !is_attrs_value(&attr.value) {
                                        return Err(self.dup_attr(&full, def_span, attr.name.span));
                                    }
                                    target = Some(nested_bindings(attr));
                                    continue;
                                }
                            }
                        }
                        Some(cur) => cur,
                    };
                    match cur.attrs.iter().position(|a| a.name.name == sym) {
                        None => {
                            let v = if is_last {
                                cur.attrs.push(Attr {
                                    name: ident,
                                    value: AttrValue::Expr(take_value()),
                                });
                                return Ok(());
                            } else {
                                AttrValue::Expr(empty_set(name.span))
                            };
                            cur.attrs.push(Attr {
                                name: ident,
                                value: v,
                            });
                            let i = cur.attrs.len() - 1;
                            target = Some(nested_bindings(&mut cur.attrs[i]));
                        }
                        Some(i) => {
                            let attr = &mut cur.attrs[i];
                            if is_last {
                                return self.merge_final(attr, take_value(), &full, def_span);
                            }
                            if !is_attrs_value(&attr.value) {
                                return Err(self.dup_attr(&full, def_span, attr.name.span));
                            }
                            target = Some(nested_bindings(attr));
                        }
                    }
                }
                AttrNameKind::Dynamic(key) => {
                    let cur: &mut Bindings = match target {
                        None => &mut b.bindings,
                        Some(cur) => cur,
                    };
                    let span = key.span;
                    if is_last {
                        cur.dynamic.push(DynamicAttr {
                            key: *key,
                            value: take_value(),
                            span,
                        });
                        return Ok(());
                    }
                    cur.dynamic.push(DynamicAttr {
                        key: *key,
                        value: empty_set(name.span),
                        span,
                    });
                    let d = cur.dynamic.last_mut().expect("just pushed");
                    target = Some(match &mut d.value.kind {
                        ExprKind::Attrs(set) => &mut set.bindings,
                        _ => unreachable!("a nested set was just created"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The last step of a path names an existing attribute: allowed only
    /// when both are set literals, whose attributes are then merged.
    fn merge_final(
        &self,
        existing: &mut Attr,
        value: Expr,
        path: &[Option<Symbol>],
        def_span: Span,
    ) -> PResult<()> {
        let first_span = existing.name.span;
        let AttrValue::Expr(Expr {
            kind: ExprKind::Attrs(target),
            ..
        }) = &mut existing.value
        else {
            return Err(self.dup_attr(path, def_span, first_span));
        };
        let mut value = value;
        let ExprKind::Attrs(new) = &mut value.kind else {
            return Err(self.dup_attr(path, def_span, first_span));
        };
        let target = &mut target.bindings;
        let offset = target.inherit_from.len() as u32;
        target.inherit_from.append(&mut new.bindings.inherit_from);
        for attr in std::mem::take(&mut new.bindings.attrs) {
            if let Some(prev) = target.attrs.iter().find(|a| a.name.name == attr.name.name) {
                let mut full = path.to_vec();
                full.push(Some(attr.name.name));
                return Err(self.dup_attr(&full, attr.name.span, prev.name.span));
            }
            let value = match attr.value {
                AttrValue::InheritFrom(i) => AttrValue::InheritFrom(i + offset),
                v => v,
            };
            target.attrs.push(Attr {
                name: attr.name,
                value,
            });
        }
        target.dynamic.append(&mut new.bindings.dynamic);
        target
            .inherit_positions
            .append(&mut new.bindings.inherit_positions);
        Ok(())
    }
}

/// Bindings under construction, with an index of the top-level names.
#[derive(Default)]
struct BindingsBuilder {
    bindings: Bindings,
    index: FxHashMap<Symbol, u32>,
}

impl BindingsBuilder {
    /// Adds a top-level attribute; returns the first definition's span if
    /// the name is taken.
    fn insert_top(&mut self, name: Ident, value: AttrValue) -> Option<Span> {
        if let Some(&i) = self.index.get(&name.name) {
            return Some(self.bindings.attrs[i as usize].name.span);
        }
        self.index
            .insert(name.name, self.bindings.attrs.len() as u32);
        self.bindings.attrs.push(Attr { name, value });
        None
    }
}

fn empty_set(span: Span) -> Expr {
    Expr::new(
        span,
        ExprKind::Attrs(Box::new(AttrSet {
            rec: false,
            bindings: Bindings::default(),
        })),
    )
}

fn is_attrs_value(v: &AttrValue) -> bool {
    matches!(
        v,
        AttrValue::Expr(Expr {
            kind: ExprKind::Attrs(_),
            ..
        })
    )
}

/// The bindings of an attribute whose value is a set literal (checked by
/// the caller with `is_attrs_value`, or just created).
fn nested_bindings(attr: &mut Attr) -> &mut Bindings {
    match &mut attr.value {
        AttrValue::Expr(Expr {
            kind: ExprKind::Attrs(set),
            ..
        }) => &mut set.bindings,
        _ => unreachable!("caller checked that the value is a set literal"),
    }
}
