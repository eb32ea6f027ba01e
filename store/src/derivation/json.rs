//! The JSON form of `nix show-derivation` (Nix 2.8):
//!
//! ```json
//! { "/nix/store/…-hello.drv": {
//!     "outputs": { "out": { "path": "/nix/store/…-hello" } },
//!     "inputSrcs": [ "/nix/store/…-builder.sh" ],
//!     "inputDrvs": { "/nix/store/…-dep.drv": [ "out" ] },
//!     "system": "x86_64-linux", "builder": "/bin/sh", "args": [ … ],
//!     "env": { "name": "hello", … } } }
//! ```
//!
//! An output object has `path` when the path is known, and `hashAlgo`
//! (`r:sha256`, `sha1`, …) and `hash` (base16) for fixed outputs; a floating
//! content-addressed output has only `hashAlgo`, a deferred one nothing.
//! Keys are written in the order above, maps sorted.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::error::{DerivationError, Location};
use super::validate::{OutputFields, check_output_name, output_from_fields, store_path};
use super::{Derivation, DerivationOutput};
use crate::store_path::{StoreDir, StorePath};

impl Derivation {
    /// The object `nix show-derivation` prints for one derivation.
    pub fn to_json(&self, dir: &StoreDir) -> Value {
        let outputs: Map<String, Value> = self
            .outputs
            .iter()
            .map(|(name, output)| (name.clone(), output_json(dir, output)))
            .collect();
        let input_srcs: Vec<Value> = self
            .input_srcs
            .iter()
            .map(|path| Value::String(dir.display(path)))
            .collect();
        let input_drvs: Map<String, Value> = self
            .input_drvs
            .iter()
            .map(|(path, outputs)| (dir.display(path), string_array(outputs)))
            .collect();
        let env: Map<String, Value> = self
            .env
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();

        let mut object = Map::new();
        object.insert("outputs".into(), Value::Object(outputs));
        object.insert("inputSrcs".into(), Value::Array(input_srcs));
        object.insert("inputDrvs".into(), Value::Object(input_drvs));
        object.insert("system".into(), Value::String(self.system.clone()));
        object.insert("builder".into(), Value::String(self.builder.clone()));
        object.insert("args".into(), string_array(&self.args));
        object.insert("env".into(), Value::Object(env));
        Value::Object(object)
    }

    /// Reads the object [`Derivation::to_json`] writes, with the same checks
    /// as the ATerm reader.
    pub fn from_json(dir: &StoreDir, value: &Value) -> Result<Derivation, DerivationError> {
        let object = as_object(value, "the derivation")?;

        let mut outputs = BTreeMap::new();
        for (name, output) in as_object(field(object, "outputs")?, "outputs")? {
            let at = format!("outputs.{name}");
            check_output_name(Location::Field(at.clone()), name)?;
            let output_object = as_object(output, &at)?;
            let text = |key: &str| -> Result<(String, Location), DerivationError> {
                let at = format!("{at}.{key}");
                let text = match output_object.get(key) {
                    None => String::new(),
                    Some(value) => as_str(value, &at)?.to_owned(),
                };
                Ok((text, Location::Field(at)))
            };
            let (path, path_at) = text("path")?;
            let (hash_algo, hash_algo_at) = text("hashAlgo")?;
            let (hash, hash_at) = text("hash")?;
            let fields = OutputFields {
                path,
                path_at,
                hash_algo,
                hash_algo_at,
                hash,
                hash_at,
            };
            outputs.insert(name.clone(), output_from_fields(dir, name, fields)?);
        }

        let mut input_srcs = BTreeSet::new();
        for (i, src) in as_array(field(object, "inputSrcs")?, "inputSrcs")?
            .iter()
            .enumerate()
        {
            let at = format!("inputSrcs[{i}]");
            let text = as_str(src, &at)?.to_owned();
            input_srcs.insert(store_path(dir, Location::Field(at), text)?);
        }

        let mut input_drvs = BTreeMap::new();
        for (path, wanted) in as_object(field(object, "inputDrvs")?, "inputDrvs")? {
            let at = format!("inputDrvs.{path}");
            let drv_path: StorePath = store_path(dir, Location::Field(at.clone()), path.clone())?;
            let mut names = BTreeSet::new();
            for (i, name) in as_array(wanted, &at)?.iter().enumerate() {
                let at = format!("{at}[{i}]");
                let name = as_str(name, &at)?;
                check_output_name(Location::Field(at), name)?;
                names.insert(name.to_owned());
            }
            if names.is_empty() {
                return Err(DerivationError::NoInputOutputs {
                    at: Location::Field(at),
                    drv: path.clone(),
                });
            }
            input_drvs.insert(drv_path, names);
        }

        let system = as_str(field(object, "system")?, "system")?.to_owned();
        if system.contains(['"', '\\']) {
            return Err(DerivationError::UnquotedFieldEscape {
                at: Location::Field("system".into()),
                what: "system",
            });
        }
        let builder = as_str(field(object, "builder")?, "builder")?.to_owned();
        let args = as_array(field(object, "args")?, "args")?
            .iter()
            .enumerate()
            .map(|(i, arg)| as_str(arg, &format!("args[{i}]")).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = BTreeMap::new();
        for (key, value) in as_object(field(object, "env")?, "env")? {
            let value = as_str(value, &format!("env.{key}"))?;
            env.insert(key.clone(), value.to_owned());
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
            at: Location::Field("outputs".into()),
            problem,
        })?;
        Ok(drv)
    }
}

/// `nix show-derivation`'s whole output: each `.drv` path and its object.
pub fn show_derivations<'a>(
    dir: &StoreDir,
    drvs: impl IntoIterator<Item = (&'a StorePath, &'a Derivation)>,
) -> Value {
    let object: Map<String, Value> = drvs
        .into_iter()
        .map(|(path, drv)| (dir.display(path), drv.to_json(dir)))
        .collect();
    Value::Object(object)
}

/// Reads `nix show-derivation` output back.
pub fn parse_show_derivations(
    dir: &StoreDir,
    text: &str,
) -> Result<BTreeMap<StorePath, Derivation>, DerivationError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| DerivationError::JsonSyntax(e.to_string()))?;
    let mut drvs = BTreeMap::new();
    for (path, object) in as_object(&value, "the top level")? {
        let drv_path = store_path(dir, Location::Field(path.clone()), path.clone())?;
        drvs.insert(drv_path, Derivation::from_json(dir, object)?);
    }
    Ok(drvs)
}

fn output_json(dir: &StoreDir, output: &DerivationOutput) -> Value {
    let mut object = Map::new();
    if let Some(path) = output.path() {
        object.insert("path".into(), Value::String(dir.display(path)));
    }
    let hash_algo = output.hash_algo_field();
    if !hash_algo.is_empty() {
        object.insert("hashAlgo".into(), Value::String(hash_algo));
    }
    let hash = output.hash_field();
    if !hash.is_empty() {
        object.insert("hash".into(), Value::String(hash));
    }
    Value::Object(object)
}

fn string_array<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(
        items
            .into_iter()
            .map(|s| Value::String(s.as_ref().to_owned()))
            .collect(),
    )
}

fn field<'v>(
    object: &'v Map<String, Value>,
    key: &'static str,
) -> Result<&'v Value, DerivationError> {
    object.get(key).ok_or_else(|| DerivationError::JsonShape {
        at: Location::Field(key.to_owned()),
        expected: "this field to be present",
    })
}

fn as_object<'v>(value: &'v Value, at: &str) -> Result<&'v Map<String, Value>, DerivationError> {
    value.as_object().ok_or_else(|| shape(at, "an object"))
}

fn as_array<'v>(value: &'v Value, at: &str) -> Result<&'v Vec<Value>, DerivationError> {
    value.as_array().ok_or_else(|| shape(at, "an array"))
}

fn as_str<'v>(value: &'v Value, at: &str) -> Result<&'v str, DerivationError> {
    value.as_str().ok_or_else(|| shape(at, "a string"))
}

fn shape(at: &str, expected: &'static str) -> DerivationError {
    DerivationError::JsonShape {
        at: Location::Field(at.to_owned()),
        expected,
    }
}
