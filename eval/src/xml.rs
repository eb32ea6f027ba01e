//! XML output (`--xml`, `builtins.toXML`), in the shape Nix writes it:
//!
//! ```xml
//! <?xml version='1.0' encoding='utf-8'?>
//! <expr>
//!   <attrs>
//!     <attr name="a">
//!       <string value="s" />
//!     </attr>
//!   </attrs>
//! </expr>
//! ```
//!
//! Two-space indentation, attributes sorted by name, functions as
//! `<function>` with `<varpat>` or `<attrspat>`, builtins as
//! `<unevaluated />`, derivations as `<derivation drvPath outPath>` whose
//! contents are printed once (later as `<repeated />`). Values are forced
//! deeply. Source locations are never written (Nix's `--no-location`).

use std::collections::BTreeSet;

use crate::compile::ir::Param;
use crate::error::EvalResult;
use crate::machine::Machine;
use crate::print::format_float;
use crate::value::Value;

/// The XML, byte for byte: strings that are not UTF-8 are written as
/// they are, as Nix 2.8 does.
pub fn to_xml_bytes(m: &mut Machine, v: &Value) -> EvalResult<Vec<u8>> {
    let mut w = Writer {
        out: b"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n".to_vec(),
        drvs_seen: BTreeSet::new(),
    };
    w.value(m, v, 1)?;
    w.out.extend_from_slice(b"</expr>\n");
    Ok(w.out)
}

/// [`to_xml_bytes`] as text (lossy where a string is not UTF-8).
pub fn to_xml(m: &mut Machine, v: &Value) -> EvalResult<String> {
    to_xml_bytes(m, v).map(|bytes| match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

struct Writer {
    out: Vec<u8>,
    drvs_seen: BTreeSet<String>,
}

fn escape(s: &[u8], out: &mut Vec<u8>) {
    for &c in s {
        match c {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            other => out.push(other),
        }
    }
}

impl Writer {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.extend_from_slice(b"  ");
        }
    }

    fn tag(&mut self, depth: usize, tag: &str, attrs: &[(&str, &[u8])], end: &[u8]) {
        self.indent(depth);
        self.out.push(b'<');
        self.out.extend_from_slice(tag.as_bytes());
        for (k, v) in attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(k.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape(v, &mut self.out);
            self.out.push(b'"');
        }
        self.out.extend_from_slice(end);
    }

    fn empty(&mut self, depth: usize, tag: &str, attrs: &[(&str, String)]) {
        let attrs: Vec<(&str, &[u8])> = attrs.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.tag(depth, tag, &attrs, b" />\n");
    }

    fn open(&mut self, depth: usize, tag: &str, attrs: &[(&str, String)]) {
        let attrs: Vec<(&str, &[u8])> = attrs.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.tag(depth, tag, &attrs, b">\n");
    }

    fn close(&mut self, depth: usize, tag: &str) {
        self.indent(depth);
        self.out.extend_from_slice(format!("</{tag}>\n").as_bytes());
    }

    fn value(&mut self, m: &mut Machine, v: &Value, depth: usize) -> EvalResult<()> {
        m.check_stack()?;
        let v = m.force(v)?;
        match &v {
            Value::Null => self.empty(depth, "null", &[]),
            Value::Bool(b) => self.empty(depth, "bool", &[("value", b.to_string())]),
            Value::Int(i) => self.empty(depth, "int", &[("value", i.to_string())]),
            Value::Float(f) => self.empty(depth, "float", &[("value", format_float(*f))]),
            Value::String(s) => self.tag(depth, "string", &[("value", s.as_bytes())], b" />\n"),
            Value::Path(p) => self.empty(depth, "path", &[("value", p.display().to_string())]),
            Value::List(items) => {
                self.open(depth, "list", &[]);
                for item in items.iter() {
                    self.value(m, item, depth + 1)?;
                }
                self.close(depth, "list");
            }
            Value::Attrs(attrs) => {
                if crate::ops::is_derivation(m, attrs)? {
                    let mut tag_attrs = Vec::new();
                    let mut drv_path = None;
                    for key in ["drvPath", "outPath"] {
                        if let Some(p) = attrs.get_str(key) {
                            let p = m.force_string(&p.clone())?;
                            if key == "drvPath" {
                                drv_path = Some(p.as_str().to_owned());
                            }
                            tag_attrs.push((key, p.as_str().to_owned()));
                        }
                    }
                    self.open(depth, "derivation", &tag_attrs);
                    let first = drv_path.is_none_or(|p| self.drvs_seen.insert(p));
                    if first {
                        self.attrs(m, attrs, depth + 1)?;
                    } else {
                        self.empty(depth + 1, "repeated", &[]);
                    }
                    self.close(depth, "derivation");
                } else {
                    self.open(depth, "attrs", &[]);
                    self.attrs(m, attrs, depth + 1)?;
                    self.close(depth, "attrs");
                }
            }
            Value::Lambda(closure) => {
                self.open(depth, "function", &[]);
                match &closure.code.param {
                    Param::Ident(name) => {
                        self.empty(depth + 1, "varpat", &[("name", name.as_str().to_owned())]);
                    }
                    Param::Formals {
                        formals,
                        ellipsis,
                        at,
                    } => {
                        let names = formals.iter().map(|f| f.name.as_str()).collect();
                        let at = at.map(|at| at.as_str());
                        self.attrs_pattern(depth + 1, *ellipsis, at, names);
                    }
                }
                self.close(depth, "function");
            }
            // Nix's `derivation` is the lambda `drvAttrs@{ outputs ? …, ... }`.
            Value::PrimOp(app) if crate::builtins::derivation_wrapper::is_derivation(app) => {
                use crate::builtins::derivation_wrapper::{PATTERN_FORMALS, PATTERN_NAME};
                self.open(depth, "function", &[]);
                let names = PATTERN_FORMALS.iter().map(|(name, _)| *name).collect();
                self.attrs_pattern(depth + 1, true, Some(PATTERN_NAME), names);
                self.close(depth, "function");
            }
            Value::PrimOp(_) | Value::Thunk(_) => self.empty(depth, "unevaluated", &[]),
        }
        Ok(())
    }

    /// `<attrspat>` of a function with a set pattern.
    fn attrs_pattern(
        &mut self,
        depth: usize,
        ellipsis: bool,
        at: Option<&str>,
        mut names: Vec<&str>,
    ) {
        let mut attrs = Vec::new();
        if ellipsis {
            attrs.push(("ellipsis", "1".to_owned()));
        }
        if let Some(at) = at {
            attrs.push(("name", at.to_owned()));
        }
        self.open(depth, "attrspat", &attrs);
        names.sort_unstable();
        for name in names {
            self.empty(depth + 1, "attr", &[("name", name.to_owned())]);
        }
        self.close(depth, "attrspat");
    }

    fn attrs(
        &mut self,
        m: &mut Machine,
        attrs: &crate::value::Attrs,
        depth: usize,
    ) -> EvalResult<()> {
        for (name, value) in attrs.sorted() {
            self.tag(depth, "attr", &[("name", name.as_bytes())], b">\n");
            let value = value.clone();
            self.value(m, &value, depth + 1)?;
            self.close(depth, "attr");
        }
        Ok(())
    }
}
