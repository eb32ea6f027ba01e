//! Serialising a [`Derivation`] to ATerm bytes exactly as Nix 2.8's
//! `Derivation::unparse` does (see the module doc of [`super`] for which
//! fields are escaped).
//!
//! Two variations serve `hashDerivationModulo`: *masked* output paths and
//! output env values (written as `""`), and input derivations replaced by
//! other strings (the base16 hash modulo of each input).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::Derivation;
use crate::store_path::StoreDir;

impl Derivation {
    /// The `.drv` file contents.
    pub fn to_aterm(&self, dir: &StoreDir) -> Vec<u8> {
        let inputs = self.input_drvs_by_path(dir);
        self.write_aterm(dir, false, &inputs)
    }

    /// The ATerm with every output path and every env var named after an
    /// output written as `""`.
    pub fn to_aterm_masked(&self, dir: &StoreDir) -> Vec<u8> {
        let inputs = self.input_drvs_by_path(dir);
        self.write_aterm(dir, true, &inputs)
    }

    fn input_drvs_by_path(&self, dir: &StoreDir) -> BTreeMap<String, BTreeSet<String>> {
        self.input_drvs
            .iter()
            .map(|(path, outputs)| (dir.display(path), outputs.clone()))
            .collect()
    }

    /// The general form: `input_drvs` stands in for the input derivations
    /// (keys are written unescaped, as Nix does for paths and hashes).
    pub(crate) fn write_aterm(
        &self,
        dir: &StoreDir,
        mask_outputs: bool,
        input_drvs: &BTreeMap<String, BTreeSet<String>>,
    ) -> Vec<u8> {
        self.write_aterm_spanning_inputs(dir, mask_outputs, input_drvs)
            .0
    }

    /// [`Derivation::write_aterm`], also returning where the input
    /// derivations list is in the bytes: everything else is the same
    /// whatever stands in for the inputs, so one serialisation serves both
    /// the `.drv` file and its unmasked hash modulo.
    pub(crate) fn write_aterm_spanning_inputs(
        &self,
        dir: &StoreDir,
        mask_outputs: bool,
        input_drvs: &BTreeMap<String, BTreeSet<String>>,
    ) -> (Vec<u8>, Range<usize>) {
        let mut out = Vec::with_capacity(self.size_hint());
        out.extend_from_slice(b"Derive([");
        for (i, (name, output)) in self.outputs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'(');
            unquoted(&mut out, name);
            out.push(b',');
            match output.path() {
                Some(path) if !mask_outputs => unquoted(&mut out, &dir.display(path)),
                _ => unquoted(&mut out, ""),
            }
            out.push(b',');
            unquoted(&mut out, &output.hash_algo_field());
            out.push(b',');
            unquoted(&mut out, &output.hash_field());
            out.push(b')');
        }

        out.extend_from_slice(b"],");
        let inputs_start = out.len();
        write_input_drvs(&mut out, input_drvs);
        let inputs = inputs_start..out.len();

        out.push(b',');
        let srcs: Vec<String> = self.input_srcs.iter().map(|p| dir.display(p)).collect();
        list(&mut out, &srcs, unquoted);
        out.push(b',');
        unquoted(&mut out, &self.system);
        out.push(b',');
        escaped(&mut out, &self.builder);
        out.push(b',');
        list(&mut out, &self.args, escaped);

        out.extend_from_slice(b",[");
        for (i, (key, value)) in self.env.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'(');
            escaped(&mut out, key);
            out.push(b',');
            let masked = mask_outputs && self.outputs.contains_key(key);
            escaped(&mut out, if masked { "" } else { value });
            out.push(b')');
        }
        out.extend_from_slice(b"])");
        (out, inputs)
    }

    /// Roughly the output size, to allocate once.
    fn size_hint(&self) -> usize {
        let env: usize = self.env.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
        let args: usize = self.args.iter().map(|a| a.len() + 3).sum();
        let paths = (self.outputs.len() + self.input_drvs.len() + self.input_srcs.len()) * 100;
        env + args + paths + self.builder.len() + self.system.len() + 64
    }
}

/// `"…"` with `"`, `\`, newline, carriage return and tab escaped (Nix's
/// `printString`); every other byte is written as is.
pub(crate) fn escaped(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The input derivations list: `[("key",["output",…]),…]`.
pub(crate) fn write_input_drvs(out: &mut Vec<u8>, input_drvs: &BTreeMap<String, BTreeSet<String>>) {
    out.push(b'[');
    for (i, (path, outputs)) in input_drvs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'(');
        unquoted(out, path);
        out.push(b',');
        list(out, outputs, unquoted);
        out.push(b')');
    }
    out.push(b']');
}

/// `"…"` with the bytes as they are (Nix's `printUnquotedString`).
pub(crate) fn unquoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn list<S: AsRef<str>>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = S>,
    write_item: fn(&mut Vec<u8>, &str),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(out, item.as_ref());
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_exactly_the_five_nix_escapes() {
        let mut out = Vec::new();
        escaped(&mut out, "a\"b\\c\nd\re\tf\u{1}\u{7f}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\re\\tf\u{1}\u{7f}é\"".as_bytes());
        let mut out = Vec::new();
        unquoted(&mut out, "a\\b");
        assert_eq!(out, b"\"a\\b\"");
    }
}
