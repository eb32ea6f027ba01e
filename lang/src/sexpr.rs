//! A readable S-expression rendering of the AST (what `kiln parse` prints).
//!
//! ```text
//! 1  1.5  "text"  x              literals and variables
//! ./a  <nixpkgs>  (path "./a/" x) paths (interpolated ones as a list)
//! (str "a" x "b")                interpolated string
//! (list a b)  (call f a)         lists, application
//! (attrs (a 1) ("a b" 2) (c inherit) (d (inherit-from e)) (${k} v))
//! (rec-attrs …)  (let (…) body)  (legacy-let …)
//! (lambda x body)  (lambda (formals a (b 1) ... @args) body)
//! (with e body)  (if c a b)  (assert c body)
//! (neg x)  (not x)  (+ a b)      operators, named as written
//! (. e a ${k} (or d))  (? e a b) select (with default), has-attr
//! ```
//!
//! Printing recurses over the tree; callers printing untrusted very deep
//! trees should run it on a thread with a large stack.

use std::fmt::Write;

use crate::ast::*;
use crate::symbol::{Interner, Symbol};

/// Renders `expr` on one line.
pub fn to_sexpr(expr: &Expr, names: &Interner) -> String {
    let mut out = String::new();
    Printer {
        names,
        out: &mut out,
    }
    .expr(expr);
    out
}

struct Printer<'a> {
    names: &'a Interner,
    out: &'a mut String,
}

fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
}

impl Printer<'_> {
    fn quoted(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '$' => self.out.push_str("\\$"),
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn name(&mut self, sym: Symbol) {
        let s = self.names.resolve(sym);
        if is_plain_name(s) {
            self.out.push_str(s);
        } else {
            self.quoted(s);
        }
    }

    fn parts(&mut self, parts: &[StrPart]) {
        for p in parts {
            self.out.push(' ');
            match p {
                StrPart::Literal(s) => self.quoted(s),
                StrPart::Interp(e) => self.expr(e),
            }
        }
    }

    fn attr_path(&mut self, path: &[AttrName]) {
        for n in path {
            self.out.push(' ');
            match &n.kind {
                AttrNameKind::Static(s) => self.name(*s),
                AttrNameKind::Dynamic(e) => {
                    self.out.push_str("${");
                    self.expr(e);
                    self.out.push('}');
                }
            }
        }
    }

    fn bindings(&mut self, b: &Bindings) {
        for a in &b.attrs {
            self.out.push_str(" (");
            self.name(a.name.name);
            self.out.push(' ');
            match &a.value {
                AttrValue::Expr(e) => self.expr(e),
                AttrValue::Inherit => self.out.push_str("inherit"),
                AttrValue::InheritFrom(i) => {
                    self.out.push_str("(inherit-from ");
                    match b.inherit_from.get(*i as usize) {
                        Some(e) => self.expr(e),
                        None => self.out.push('?'),
                    }
                    self.out.push(')');
                }
            }
            self.out.push(')');
        }
        for d in &b.dynamic {
            self.out.push_str(" (${");
            self.expr(&d.key);
            self.out.push_str("} ");
            self.expr(&d.value);
            self.out.push(')');
        }
    }

    fn open(&mut self, head: &str) {
        self.out.push('(');
        self.out.push_str(head);
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(n) => {
                let _ = write!(self.out, "{n}");
            }
            ExprKind::Float(f) => {
                let _ = write!(self.out, "{f:?}");
            }
            ExprKind::Str(parts) => match parts.as_slice() {
                [] => self.quoted(""),
                [StrPart::Literal(s)] => self.quoted(s),
                _ => {
                    self.open("str");
                    self.parts(parts);
                    self.out.push(')');
                }
            },
            ExprKind::Path(p) => match (p.kind, p.parts.as_slice()) {
                (PathKind::Search, [StrPart::Literal(s)]) => {
                    let _ = write!(self.out, "<{s}>");
                }
                (_, [StrPart::Literal(s)]) => self.out.push_str(s),
                _ => {
                    self.open("path");
                    self.parts(&p.parts);
                    self.out.push(')');
                }
            },
            ExprKind::Uri(u) => self.out.push_str(u),
            ExprKind::Var(s) => self.name(*s),
            ExprKind::List(items) => {
                self.open("list");
                for i in items {
                    self.out.push(' ');
                    self.expr(i);
                }
                self.out.push(')');
            }
            ExprKind::Attrs(set) => {
                self.open(if set.rec { "rec-attrs" } else { "attrs" });
                self.bindings(&set.bindings);
                self.out.push(')');
            }
            ExprKind::Let(l) => {
                self.open("let (");
                let mut inner = String::new();
                Printer {
                    names: self.names,
                    out: &mut inner,
                }
                .bindings(&l.bindings);
                self.out.push_str(inner.trim_start());
                self.out.push_str(") ");
                self.expr(&l.body);
                self.out.push(')');
            }
            ExprKind::LegacyLet(b) => {
                self.open("legacy-let");
                self.bindings(b);
                self.out.push(')');
            }
            ExprKind::With(w) => self.node("with", &[&w.env, &w.body]),
            ExprKind::If(i) => self.node("if", &[&i.cond, &i.then_branch, &i.else_branch]),
            ExprKind::Assert(a) => self.node("assert", &[&a.cond, &a.body]),
            ExprKind::Lambda(l) => {
                self.open("lambda ");
                match &l.param {
                    Param::Ident(id) => self.name(id.name),
                    Param::Formals(f) => {
                        self.out.push_str("(formals");
                        for formal in &f.entries {
                            self.out.push(' ');
                            match &formal.default {
                                None => self.name(formal.name.name),
                                Some(d) => {
                                    self.out.push('(');
                                    self.name(formal.name.name);
                                    self.out.push(' ');
                                    self.expr(d);
                                    self.out.push(')');
                                }
                            }
                        }
                        if f.ellipsis {
                            self.out.push_str(" ...");
                        }
                        if let Some(at) = &f.at {
                            self.out.push_str(" @");
                            self.name(at.name.name);
                        }
                        self.out.push(')');
                    }
                }
                self.out.push(' ');
                self.expr(&l.body);
                self.out.push(')');
            }
            ExprKind::Apply(a) => self.node("call", &[&a.func, &a.arg]),
            ExprKind::Unary(u) => {
                let head = match u.op {
                    UnOp::Neg => "neg",
                    UnOp::Not => "not",
                };
                self.node(head, &[&u.operand]);
            }
            ExprKind::Binary(b) => self.node(b.op.as_str(), &[&b.lhs, &b.rhs]),
            ExprKind::Select(s) => {
                self.open(". ");
                self.expr(&s.expr);
                self.attr_path(&s.path);
                if let Some(d) = &s.default {
                    self.out.push_str(" (or ");
                    self.expr(d);
                    self.out.push(')');
                }
                self.out.push(')');
            }
            ExprKind::HasAttr(h) => {
                self.open("? ");
                self.expr(&h.expr);
                self.attr_path(&h.path);
                self.out.push(')');
            }
        }
    }

    fn node(&mut self, head: &str, children: &[&Expr]) {
        self.open(head);
        for c in children {
            self.out.push(' ');
            self.expr(c);
        }
        self.out.push(')');
    }
}
