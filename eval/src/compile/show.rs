//! An expression as Nix 2.8 prints it in an assertion failure
//! (`assertion '((f 1) == 2)' failed`): its `Expr::show`, which writes the
//! parsed expression back with parentheses around every compound one,
//! and the operators Nix desugars at parse time as the calls they become
//! (`a < b` is `(__lessThan a b)`, `-x` is `(__sub 0 x)`). Each form below
//! was checked against `nix-instantiate` of Nix 2.8.

use std::path::Path;

use kiln_lang::ast::{
    self, AttrName, AttrNameKind, AttrValue, BinOp, Bindings, ExprKind, Param, StrPart, UnOp,
};
use kiln_lang::symbol::Interner;

/// `e` as Nix 2.8 shows it; relative path literals are resolved against
/// `base` (Nix resolves them when parsing).
pub fn show(e: &ast::Expr, interner: &Interner, base: &Path) -> String {
    let mut out = String::new();
    Shower { interner, base }.expr(e, &mut out);
    out
}

struct Shower<'a> {
    interner: &'a Interner,
    base: &'a Path,
}

impl Shower<'_> {
    fn name(&self, s: kiln_lang::Symbol) -> &str {
        self.interner.resolve(s)
    }

    fn attr_name(&self, name: &str, out: &mut String) {
        if crate::print::is_plain_identifier(name) {
            out.push_str(name);
        } else {
            crate::print::escape_string(name, out);
        }
    }

    fn attr_path(&self, path: &[AttrName], out: &mut String) {
        for (i, part) in path.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match &part.kind {
                AttrNameKind::Static(s) => self.attr_name(self.name(*s), out),
                AttrNameKind::Dynamic(e) => {
                    out.push_str("\"${");
                    self.expr(e, out);
                    out.push_str("}\"");
                }
            }
        }
    }

    fn call(&self, func: &str, args: &[&ast::Expr], out: &mut String) {
        out.push('(');
        out.push_str(func);
        for arg in args {
            out.push(' ');
            self.expr(arg, out);
        }
        out.push(')');
    }

    /// Attributes sorted by name (as Nix's map of them), inherited ones as
    /// `inherit a ;`, then the dynamic ones.
    fn bindings(&self, b: &Bindings, out: &mut String) {
        let mut attrs: Vec<&ast::Attr> = b.attrs.iter().collect();
        attrs.sort_by(|x, y| self.name(x.name.name).cmp(self.name(y.name.name)));
        for attr in attrs {
            let name = self.name(attr.name.name);
            match &attr.value {
                AttrValue::Inherit => {
                    out.push_str("inherit ");
                    out.push_str(name);
                    out.push_str(" ; ");
                }
                AttrValue::Expr(e) => {
                    self.attr_name(name, out);
                    out.push_str(" = ");
                    self.expr(e, out);
                    out.push_str("; ");
                }
                AttrValue::InheritFrom(i) => {
                    self.attr_name(name, out);
                    out.push_str(" = (");
                    self.expr(&b.inherit_from[*i as usize], out);
                    out.push_str(").");
                    self.attr_name(name, out);
                    out.push_str("; ");
                }
            }
        }
        for d in &b.dynamic {
            out.push_str("\"${");
            self.expr(&d.key, out);
            out.push_str("}\" = ");
            self.expr(&d.value, out);
            out.push_str("; ");
        }
    }

    fn string(&self, parts: &[StrPart], out: &mut String) {
        match parts {
            [] => out.push_str("\"\""),
            [StrPart::Literal(text)] => crate::print::escape_string(text, out),
            parts => {
                out.push('(');
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" + ");
                    }
                    match part {
                        StrPart::Literal(text) => crate::print::escape_string(text, out),
                        StrPart::Interp(e) => self.expr(e, out),
                    }
                }
                out.push(')');
            }
        }
    }

    fn expr(&self, e: &ast::Expr, out: &mut String) {
        match &e.kind {
            ExprKind::Int(i) => out.push_str(&i.to_string()),
            ExprKind::Float(f) => out.push_str(&crate::print::format_float(*f)),
            ExprKind::Str(parts) => self.string(parts, out),
            ExprKind::Uri(uri) => crate::print::escape_string(uri, out),
            ExprKind::Path(p) => match (&p.kind, p.parts.as_slice()) {
                (ast::PathKind::Search, [StrPart::Literal(text)]) => {
                    out.push_str("(__findFile __nixPath ");
                    crate::print::escape_string(text, out);
                    out.push(')');
                }
                (ast::PathKind::Relative, [StrPart::Literal(text)]) => {
                    out.push_str(&crate::path::resolve(self.base, text).display().to_string())
                }
                (_, [StrPart::Literal(text)]) => out.push_str(text),
                (_, parts) => self.string(parts, out),
            },
            ExprKind::Var(s) => out.push_str(self.name(*s)),
            ExprKind::List(items) => {
                out.push_str("[ ");
                for item in items {
                    out.push('(');
                    self.expr(item, out);
                    out.push_str(") ");
                }
                out.push(']');
            }
            ExprKind::Attrs(set) => {
                if set.rec {
                    out.push_str("rec ");
                }
                out.push_str("{ ");
                self.bindings(&set.bindings, out);
                out.push('}');
            }
            ExprKind::Let(l) => {
                out.push_str("(let ");
                self.bindings(&l.bindings, out);
                out.push_str("in ");
                self.expr(&l.body, out);
                out.push(')');
            }
            ExprKind::LegacyLet(b) => {
                out.push_str("(rec { ");
                self.bindings(b, out);
                out.push_str("}).body");
            }
            ExprKind::With(w) => {
                out.push_str("(with ");
                self.expr(&w.env, out);
                out.push_str("; ");
                self.expr(&w.body, out);
                out.push(')');
            }
            ExprKind::If(i) => {
                out.push_str("(if ");
                self.expr(&i.cond, out);
                out.push_str(" then ");
                self.expr(&i.then_branch, out);
                out.push_str(" else ");
                self.expr(&i.else_branch, out);
                out.push(')');
            }
            ExprKind::Assert(a) => {
                out.push_str("assert ");
                self.expr(&a.cond, out);
                out.push_str("; ");
                self.expr(&a.body, out);
            }
            ExprKind::Lambda(l) => {
                out.push('(');
                match &l.param {
                    Param::Ident(x) => out.push_str(self.name(x.name)),
                    Param::Formals(f) => {
                        out.push_str("{ ");
                        for (i, formal) in f.entries.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            out.push_str(self.name(formal.name.name));
                            if let Some(d) = &formal.default {
                                out.push_str(" ? ");
                                self.expr(d, out);
                            }
                        }
                        if f.ellipsis {
                            if !f.entries.is_empty() {
                                out.push_str(", ");
                            }
                            out.push_str("...");
                        }
                        out.push_str(" }");
                        if let Some(at) = &f.at {
                            out.push_str(" @ ");
                            out.push_str(self.name(at.name.name));
                        }
                    }
                }
                out.push_str(": ");
                self.expr(&l.body, out);
                out.push(')');
            }
            ExprKind::Apply(_) => {
                // `f a b` is one call in Nix.
                let mut args = Vec::new();
                let mut func = e;
                while let ExprKind::Apply(app) = &func.kind {
                    args.push(&app.arg);
                    func = &app.func;
                }
                out.push('(');
                self.expr(func, out);
                for arg in args.iter().rev() {
                    out.push(' ');
                    self.expr(arg, out);
                }
                out.push(')');
            }
            ExprKind::Unary(u) => match u.op {
                UnOp::Not => {
                    out.push_str("(! ");
                    self.expr(&u.operand, out);
                    out.push(')');
                }
                UnOp::Neg => {
                    out.push_str("(__sub 0 ");
                    self.expr(&u.operand, out);
                    out.push(')');
                }
            },
            ExprKind::Binary(b) => {
                let (l, r) = (&b.lhs, &b.rhs);
                match b.op {
                    BinOp::Lt => self.call("__lessThan", &[l, r], out),
                    BinOp::Gt => self.call("__lessThan", &[r, l], out),
                    BinOp::Le => {
                        out.push_str("(! ");
                        self.call("__lessThan", &[r, l], out);
                        out.push(')');
                    }
                    BinOp::Ge => {
                        out.push_str("(! ");
                        self.call("__lessThan", &[l, r], out);
                        out.push(')');
                    }
                    BinOp::Sub => self.call("__sub", &[l, r], out),
                    BinOp::Mul => self.call("__mul", &[l, r], out),
                    BinOp::Div => self.call("__div", &[l, r], out),
                    op => {
                        let symbol = match op {
                            BinOp::Concat => "++",
                            BinOp::Add => "+",
                            BinOp::Update => "//",
                            BinOp::Eq => "==",
                            BinOp::Ne => "!=",
                            BinOp::And => "&&",
                            BinOp::Or => "||",
                            _ => "->",
                        };
                        out.push('(');
                        self.expr(l, out);
                        out.push(' ');
                        out.push_str(symbol);
                        out.push(' ');
                        self.expr(r, out);
                        out.push(')');
                    }
                }
            }
            ExprKind::Select(s) => {
                out.push('(');
                self.expr(&s.expr, out);
                out.push_str(").");
                self.attr_path(&s.path, out);
                if let Some(d) = &s.default {
                    out.push_str(" or (");
                    self.expr(d, out);
                    out.push(')');
                }
            }
            ExprKind::HasAttr(h) => {
                out.push_str("((");
                self.expr(&h.expr, out);
                out.push_str(") ? ");
                self.attr_path(&h.path, out);
                out.push(')');
            }
        }
    }
}
