//! Builtins that put things in the store or name store paths: `path`,
//! `filterSource`, `toFile`, `placeholder`, `storePath`.
//!
//! - `builtins.path { path; name ? baseNameOf path; filter ? …;
//!   recursive ? true; sha256 ? …; }` adds a file or tree. A recursive add
//!   is a `source` path of the NAR sha256 (a fixed-output path when
//!   filtered … the same fingerprint); `recursive = false` hashes a regular
//!   file's bytes (a flat fixed-output path). `filter` is called as
//!   `filter "/abs/path" "regular"|"directory"|"symlink"|"unknown"` for
//!   every entry below the root; a directory it rejects is not entered.
//! - `filterSource filter path` is `path { inherit filter path; }`.
//! - `toFile name text` writes a text file whose references are the store
//!   paths in `text`'s context; naming a derivation output there is an
//!   error, as in Nix (the output does not exist yet).
//! - `placeholder output` is `/` + nixbase32 sha256 of
//!   `nix-output:{output}`: the string `derivation` replaces with the
//!   output's path at build time.
//! - `storePath "/store/…/sub"` returns its argument with the store path
//!   as context (so derivations using it depend on it).
//!
//! Each result carries the context of the path it names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::Builtin;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval_io::FileKind;
use crate::machine::Machine;
use crate::store::PathRequest;
use crate::value::{Context, ContextElem, NixString, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "path",
        arity: 1,
        func: path,
    },
    Builtin {
        name: "filterSource",
        arity: 2,
        func: filter_source,
    },
    Builtin {
        name: "toFile",
        arity: 2,
        func: to_file,
    },
    Builtin {
        name: "placeholder",
        arity: 1,
        func: placeholder,
    },
    Builtin {
        name: "storePath",
        arity: 1,
        func: store_path,
    },
];

fn invalid(message: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::InvalidValue(message.into()), None)
}

fn io(message: String) -> EvalError {
    EvalError::new(ErrorKind::Io(message), None)
}

/// A path argument: a path value, or a string holding an absolute path.
fn source_path(m: &mut Machine, v: &Value) -> EvalResult<PathBuf> {
    match m.force(v)? {
        Value::Path(p) => Ok((*p).clone()),
        other => {
            let s = m.coerce_to_string(&other, Coercion::PathPart)?;
            if !s.as_str().starts_with('/') {
                return Err(invalid(format!(
                    "string '{}' doesn't represent an absolute path",
                    s.as_str()
                )));
            }
            Ok(crate::path::normalise(s.as_str()))
        }
    }
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "source".to_owned())
}

fn path(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let attrs = m.force_attrs(&args[0])?;
    let mut source = None;
    let mut name = None;
    let mut filter = None;
    let mut recursive = true;
    let mut sha256 = None;
    for (key, value) in attrs.iter() {
        let value = value.clone();
        match key.as_str() {
            "path" => source = Some(source_path(m, &value)?),
            "name" => name = Some(m.force_string(&value)?.as_str().to_owned()),
            "filter" => filter = Some(m.force_function(&value)?),
            "recursive" => recursive = m.force_bool(&value)?,
            "sha256" => {
                let text = m.force_string(&value)?;
                let hash =
                    kiln_store::Hash::parse(text.as_str(), Some(kiln_store::HashAlgo::Sha256))
                        .map_err(|e| invalid(format!("invalid sha256 '{}': {e}", text.as_str())))?;
                sha256 = Some(hash);
            }
            other => {
                return Err(invalid(format!(
                    "unsupported argument '{other}' to 'addPath'"
                )));
            }
        }
    }
    let source = source.ok_or_else(|| invalid("'path' required"))?;
    let name = name.unwrap_or_else(|| base_name(&source));
    add(m, &source, &name, filter, recursive, sha256.as_ref())
}

fn filter_source(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let filter = m.force_function(&args[0])?;
    let source = source_path(m, &args[1])?;
    let name = base_name(&source);
    add(m, &source, &name, Some(filter), true, None)
}

fn add(
    m: &mut Machine,
    source: &Path,
    name: &str,
    filter: Option<Value>,
    recursive: bool,
    sha256: Option<&kiln_store::Hash>,
) -> EvalResult<Value> {
    if m.io.symlink_kind(source).is_err() {
        return Err(io(format!("path '{}' does not exist", source.display())));
    }
    let excluded = match filter {
        Some(f) => {
            let mut excluded = BTreeSet::new();
            walk_filter(m, &f, source, Path::new(""), &mut excluded)?;
            Some(excluded)
        }
        None => None,
    };
    m.io.adding(source);
    let store = m.store.clone();
    let store_path = store.add_path(&PathRequest {
        name,
        path: source,
        recursive,
        excluded: excluded.as_ref(),
        expected_sha256: sha256,
    })?;
    Ok(Value::String(NixString::with_context(
        store_path.as_str(),
        Context::from([ContextElem::Path(store_path.clone())]),
    )))
}

/// Ask `filter` about every entry below `dir`; collect those it rejects.
fn walk_filter(
    m: &mut Machine,
    filter: &Value,
    root: &Path,
    rel: &Path,
    excluded: &mut BTreeSet<PathBuf>,
) -> EvalResult<()> {
    let dir = root.join(rel);
    let kind =
        m.io.symlink_kind(&dir)
            .map_err(|e| io(format!("getting status of '{}': {e}", dir.display())))?;
    if kind != FileKind::Directory {
        return Ok(());
    }
    let mut entries =
        m.io.read_dir(&dir)
            .map_err(|e| io(format!("reading directory '{}': {e}", dir.display())))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (entry, kind) in entries {
        let child_rel = rel.join(&entry);
        let child = root.join(&child_rel);
        let kind = kind.as_str();
        let args = [
            Value::string(child.display().to_string()),
            Value::string(kind),
        ];
        let keep = m.call_with(filter, &args)?;
        if !m.force_bool(&keep)? {
            excluded.insert(child_rel);
        } else if kind == "directory" {
            walk_filter(m, filter, root, &child_rel, excluded)?;
        }
    }
    Ok(())
}

fn to_file(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let name = m.force_string(&args[0])?;
    let contents = m.force_string(&args[1])?;
    let mut references = BTreeSet::new();
    if let Some(ctx) = contents.context() {
        for elem in ctx {
            match elem {
                ContextElem::Path(p) => {
                    references.insert(p.clone());
                }
                ContextElem::DrvOutput { drv, .. } | ContextElem::AllOutputs(drv) => {
                    return Err(invalid(format!(
                        "in 'toFile': the file named '{}' must not contain a reference to a derivation but contains ({drv})",
                        name.as_str()
                    )));
                }
            }
        }
    }
    let store = m.store.clone();
    let path = store.add_text(name.as_str(), contents.as_bytes(), &references)?;
    Ok(Value::String(NixString::with_context(
        path.as_str(),
        Context::from([ContextElem::Path(path.clone())]),
    )))
}

fn placeholder(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let output = m.force_string(&args[0])?;
    Ok(Value::string(
        kiln_store::derivation::instantiate::placeholder(output.as_str()),
    ))
}

fn store_path(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let path = source_path(m, &args[0])?;
    let text = path.display().to_string();
    let store_dir = m.store.store_dir().to_owned();
    let rest = text
        .strip_prefix(&store_dir)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| invalid(format!("path '{text}' is not in the Nix store")))?;
    let base = rest.split('/').next().unwrap_or_default();
    let store_path = format!("{store_dir}/{base}");
    if !m.store.is_valid(&store_path) {
        return Err(invalid(format!("path '{store_path}' is not valid")));
    }
    Ok(Value::String(NixString::with_context(
        text,
        Context::from([ContextElem::Path(store_path)]),
    )))
}
