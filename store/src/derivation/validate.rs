//! From the raw ATerm strings to a [`Derivation`], checking everything that
//! the byte-identical round trip and the rest of kiln rely on:
//!
//! - strings are UTF-8; fields Nix writes unescaped (output names, paths,
//!   hash fields, system) contain no escape, and the other fields no raw
//!   newline, carriage return or tab (Nix escapes those);
//! - paths are store paths under the given store dir;
//! - outputs, input derivations, their output names, input sources and env
//!   keys are strictly ascending (sorted, no duplicates);
//! - each output is one of the four kinds of [`super::output`], a fixed
//!   output's hash is lower-case base16 and its path matches the hash, and
//!   the outputs together form one of Nix's derivation kinds.

use std::collections::{BTreeMap, BTreeSet};

use super::Derivation;
use super::error::{DerivationError, Location};
use super::output::{DerivationOutput, FixedOutputHash, parse_method_algo};
use super::parse::{RawDerivation, RawOutput, RawString};
use crate::hash::Hash;
use crate::store_path::{StoreDir, StorePath, check_name, make_fixed_output_path};

/// Offset of the outputs list in every derivation (`Derive(` is 7 bytes).
const OUTPUTS_POS: usize = 7;

pub(crate) fn validate(
    dir: &StoreDir,
    raw: &RawDerivation<'_>,
) -> Result<Derivation, DerivationError> {
    let mut outputs = BTreeMap::new();
    let mut previous: Option<String> = None;
    for raw_output in &raw.outputs {
        let name = unquoted(&raw_output.name, "output name")?;
        check_output_name(Location::Byte(raw_output.name.pos), &name)?;
        ascending(&mut previous, name.clone(), "output", raw_output.name.pos)?;
        let output = validate_output(dir, raw_output, &name)?;
        outputs.insert(name, output);
    }

    let mut input_drvs = BTreeMap::new();
    let mut previous = None;
    for input in &raw.input_drvs {
        let path_text = unquoted(&input.path, "input derivation path")?;
        ascending(
            &mut previous,
            path_text.clone(),
            "input derivation",
            input.path.pos,
        )?;
        if input.outputs.is_empty() {
            return Err(DerivationError::NoInputOutputs {
                at: Location::Byte(input.path.pos),
                drv: path_text,
            });
        }
        let path = store_path(dir, Location::Byte(input.path.pos), path_text)?;
        let mut names = BTreeSet::new();
        let mut previous_name = None;
        for raw_name in &input.outputs {
            let name = unquoted(raw_name, "input derivation output name")?;
            check_output_name(Location::Byte(raw_name.pos), &name)?;
            ascending(
                &mut previous_name,
                name.clone(),
                "output name",
                raw_name.pos,
            )?;
            names.insert(name);
        }
        input_drvs.insert(path, names);
    }

    let mut input_srcs = BTreeSet::new();
    let mut previous = None;
    for raw_src in &raw.input_srcs {
        let text = unquoted(raw_src, "input source path")?;
        ascending(&mut previous, text.clone(), "input source", raw_src.pos)?;
        input_srcs.insert(store_path(dir, Location::Byte(raw_src.pos), text)?);
    }

    let system = unquoted(&raw.system, "system")?;
    let builder = escaped(&raw.builder)?;
    let args = raw
        .args
        .iter()
        .map(escaped)
        .collect::<Result<Vec<_>, _>>()?;

    let mut env = BTreeMap::new();
    let mut previous = None;
    for (raw_key, raw_value) in &raw.env {
        let key = escaped(raw_key)?;
        ascending(
            &mut previous,
            key.clone(),
            "environment variable",
            raw_key.pos,
        )?;
        env.insert(key, escaped(raw_value)?);
    }

    let drv = Derivation {
        outputs,
        input_drvs,
        input_srcs,
        system,
        builder,
        args,
        env,
    };
    drv.kind().map_err(|problem| DerivationError::BadOutputs {
        at: Location::Byte(OUTPUTS_POS),
        problem,
    })?;
    Ok(drv)
}

fn validate_output(
    dir: &StoreDir,
    raw: &RawOutput<'_>,
    name: &str,
) -> Result<DerivationOutput, DerivationError> {
    let fields = OutputFields {
        path: unquoted(&raw.path, "output path")?,
        path_at: Location::Byte(raw.path.pos),
        hash_algo: unquoted(&raw.hash_algo, "output hash algorithm")?,
        hash_algo_at: Location::Byte(raw.hash_algo.pos),
        hash: unquoted(&raw.hash, "output hash")?,
        hash_at: Location::Byte(raw.hash.pos),
    };
    output_from_fields(dir, name, fields)
}

/// The three strings that describe an output after its name, as in the
/// ATerm (absent JSON fields are empty), with where each was found.
pub(crate) struct OutputFields {
    pub path: String,
    pub path_at: Location,
    pub hash_algo: String,
    pub hash_algo_at: Location,
    pub hash: String,
    pub hash_at: Location,
}

/// Decides the output kind from its fields (see [`super::output`]).
pub(crate) fn output_from_fields(
    dir: &StoreDir,
    name: &str,
    fields: OutputFields,
) -> Result<DerivationOutput, DerivationError> {
    let OutputFields {
        path,
        path_at,
        hash_algo,
        hash_algo_at,
        hash: hash_text,
        hash_at,
    } = fields;
    let bad = |at: Location, reason| DerivationError::BadOutput {
        at,
        name: name.to_owned(),
        reason,
    };

    if hash_algo.is_empty() {
        if !hash_text.is_empty() {
            return Err(bad(hash_at, "a hash needs a hash algorithm"));
        }
        if path.is_empty() {
            return Ok(DerivationOutput::Deferred);
        }
        let path = store_path(dir, path_at, path)?;
        return Ok(DerivationOutput::InputAddressed { path });
    }

    let (method, algo) =
        parse_method_algo(&hash_algo).ok_or_else(|| DerivationError::BadHashAlgo {
            at: hash_algo_at,
            value: hash_algo.clone(),
        })?;
    if hash_text.is_empty() {
        if !path.is_empty() {
            return Err(bad(
                path_at,
                "a floating content-addressed output has no path",
            ));
        }
        return Ok(DerivationOutput::Floating { method, algo });
    }

    let hash = match Hash::parse(&hash_text, Some(algo)) {
        Ok(hash) => hash,
        Err(source) => {
            return Err(DerivationError::BadHash {
                at: hash_at,
                value: hash_text,
                source,
            });
        }
    };
    if hash.to_base16() != hash_text {
        return Err(DerivationError::HashNotBase16 {
            at: hash_at,
            value: hash_text,
        });
    }
    if path.is_empty() {
        return Err(bad(path_at, "a fixed output needs a path"));
    }
    let path = store_path(dir, path_at.clone(), path)?;
    // The path's name is the output path name, so the expected path can be
    // computed without knowing the derivation's name.
    let expected = match make_fixed_output_path(dir, method, &hash, path.name(), &BTreeSet::new()) {
        Ok(expected) => expected,
        Err(source) => {
            return Err(DerivationError::BadPath {
                at: path_at,
                path: dir.display(&path),
                source,
            });
        }
    };
    if expected != path {
        return Err(DerivationError::FixedOutputPathMismatch {
            at: path_at,
            name: name.to_owned(),
            found: dir.display(&path),
            expected: dir.display(&expected),
        });
    }
    let hash = FixedOutputHash { method, hash };
    Ok(DerivationOutput::Fixed { path, hash })
}

/// A field Nix writes with `printString`: escapes resolved, then UTF-8.
fn escaped(raw: &RawString<'_>) -> Result<String, DerivationError> {
    // Nix always escapes these three here, so a raw one would not survive
    // a round trip.
    if let Some(i) = raw
        .raw
        .iter()
        .position(|b| matches!(b, b'\n' | b'\r' | b'\t'))
    {
        return Err(DerivationError::UnescapedControl {
            at: Location::Byte(raw.pos + 1 + i),
            byte: raw.raw[i],
        });
    }
    String::from_utf8(raw.unescape()).map_err(|_| DerivationError::NotUtf8 {
        at: Location::Byte(raw.pos),
    })
}

/// A field Nix writes with `printUnquotedString`: no escape may occur,
/// since writing would not reproduce it.
fn unquoted(raw: &RawString<'_>, what: &'static str) -> Result<String, DerivationError> {
    if raw.has_escape() {
        return Err(DerivationError::UnquotedFieldEscape {
            at: Location::Byte(raw.pos),
            what,
        });
    }
    String::from_utf8(raw.raw.to_vec()).map_err(|_| DerivationError::NotUtf8 {
        at: Location::Byte(raw.pos),
    })
}

pub(crate) fn store_path(
    dir: &StoreDir,
    at: Location,
    text: String,
) -> Result<StorePath, DerivationError> {
    match dir.parse_path(&text) {
        Ok(path) => Ok(path),
        Err(source) => Err(DerivationError::BadPath {
            at,
            path: text,
            source,
        }),
    }
}

/// Output names become parts of store path names, so they must be valid
/// name characters.
pub(crate) fn check_output_name(at: Location, name: &str) -> Result<(), DerivationError> {
    check_name(name).map_err(|source| DerivationError::BadOutputName {
        at,
        name: name.to_owned(),
        source,
    })
}

/// Checks that `value` comes strictly after the previous one, then records it.
fn ascending(
    previous: &mut Option<String>,
    value: String,
    what: &'static str,
    pos: usize,
) -> Result<(), DerivationError> {
    if let Some(prev) = previous.as_deref() {
        if value.as_str() == prev {
            return Err(DerivationError::Duplicate {
                at: Location::Byte(pos),
                what,
                value,
            });
        }
        if value.as_str() < prev {
            return Err(DerivationError::Unsorted {
                at: Location::Byte(pos),
                what,
                value,
                previous: prev.to_owned(),
            });
        }
    }
    *previous = Some(value);
    Ok(())
}
