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
        self.write_aterm(dir, false, InputDrvs::Paths)
    }

    /// The ATerm with every output path and every env var named after an
    /// output written as `""`.
    pub fn to_aterm_masked(&self, dir: &StoreDir) -> Vec<u8> {
        self.write_aterm(dir, true, InputDrvs::Paths)
    }

    /// The general form: `input_drvs` says what stands for the input
    /// derivations.
    pub(crate) fn write_aterm(
        &self,
        dir: &StoreDir,
        mask_outputs: bool,
        input_drvs: InputDrvs<'_>,
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
        input_drvs: InputDrvs<'_>,
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
                Some(path) if !mask_outputs => quoted_path(&mut out, dir, path),
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
        match input_drvs {
            InputDrvs::Paths => {
                // Ordered by base name, which is the order of the full
                // paths too (they share the store directory).
                write_input_list(&mut out, self.input_drvs.iter(), |out, path| {
                    quoted_path(out, dir, path)
                });
            }
            InputDrvs::Replaced(map) => write_input_drvs(&mut out, map),
        }
        let inputs = inputs_start..out.len();

        out.push(b',');
        out.push(b'[');
        for (i, src) in self.input_srcs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            quoted_path(&mut out, dir, src);
        }
        out.push(b']');
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
    // Most strings need no escape. A fold without early exit lets the
    // compiler test many bytes at once; the copy is then one move.
    let needs_escape = |b: u8| matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'\t');
    if !bytes.iter().fold(false, |any, &b| any | needs_escape(b)) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
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

/// What the input derivations list of an ATerm holds.
#[derive(Clone, Copy)]
pub(crate) enum InputDrvs<'a> {
    /// Their store paths (the `.drv` file).
    Paths,
    /// Other keys in their place (hashes modulo), already sorted.
    Replaced(&'a BTreeMap<String, BTreeSet<String>>),
}

/// The input derivations list: `[("key",["output",…]),…]`.
pub(crate) fn write_input_drvs(out: &mut Vec<u8>, input_drvs: &BTreeMap<String, BTreeSet<String>>) {
    write_input_list(out, input_drvs.iter(), |out, key| unquoted(out, key));
}

/// The input list with each key written by `write_key` (no string is
/// built for a store path).
fn write_input_list<'a, K>(
    out: &mut Vec<u8>,
    inputs: impl Iterator<Item = (K, &'a BTreeSet<String>)>,
    write_key: impl Fn(&mut Vec<u8>, K),
) {
    out.push(b'[');
    for (i, (key, outputs)) in inputs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'(');
        write_key(out, key);
        out.push(b',');
        list(out, outputs, unquoted);
        out.push(b')');
    }
    out.push(b']');
}

/// A store path as `unquoted` writes it, without building the string.
fn quoted_path(out: &mut Vec<u8>, dir: &StoreDir, path: &crate::store_path::StorePath) {
    out.push(b'"');
    out.extend_from_slice(dir.as_str().as_bytes());
    out.push(b'/');
    out.extend_from_slice(path.base_name().as_bytes());
    out.push(b'"');
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
        // Strings without any escape take the one-copy path.
        for plain in ["", "plain text é /nix/store/x", "\u{1}\u{7f}"] {
            let mut out = Vec::new();
            escaped(&mut out, plain);
            assert_eq!(out, format!("\"{plain}\"").as_bytes());
        }
        let mut out = Vec::new();
        unquoted(&mut out, "a\\b");
        assert_eq!(out, b"\"a\\b\"");
    }
}
