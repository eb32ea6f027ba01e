//! `derivationStrict`, as in Nix 2.8.
//!
//! # The two layers
//!
//! `derivation` ([`super::derivation_wrapper`], native, with the semantics
//! of Nix's `derivation.nix`) wraps the builtin `derivationStrict` defined
//! here. The wrapper returns the attributes the user passed plus `drvPath`,
//! `outPath`, `type = "derivation"`, `outputName`, one attribute per output,
//! `all` and `drvAttrs`; `drvPath` and the output paths are thunks over one
//! shared `derivationStrict` call, so nothing is computed or written until
//! one of them is forced.
//!
//! # From attributes to a `.drv`
//!
//! `derivationStrict attrs` walks the attributes in name order:
//!
//! - `args`: a list, each element coerced to a string;
//! - `__ignoreNulls = true`: attributes whose value is `null` are skipped;
//! - `__contentAddressed = true`: floating content-addressed outputs
//!   (`outputHashMode` recursive and `outputHashAlgo` sha256 by default);
//! - `__structuredAttrs = true`: every other attribute goes into one JSON
//!   object, the env var `__json` (`builder`, `system`, `outputs`,
//!   `outputHash*` are also read from it);
//! - everything else becomes an env var: strings as they are, paths copied
//!   to the store, `true` → `"1"`, `false`/`null` → `""`, numbers printed,
//!   lists joined with spaces, sets through `__toString` or `outPath`.
//!
//! The context of every string used becomes the inputs: `!out!drv` an
//! input derivation output, a plain path an input source, `=drv` (from
//! `drvPath`) the derivation's whole closure. A given `outputHash` makes a
//! fixed output (hash in base16, nixbase32, base64 or SRI form; mode `flat`
//! by default); otherwise output paths come from the hash modulo of the
//! masked derivation ([`kiln_store::Derivation::fill_output_paths`]).
//!
//! # `meta`
//!
//! `meta` is an ordinary attribute for Nix: a string `meta` goes into the
//! env, and with `__structuredAttrs` a set goes into `__json`. In both
//! cases kiln does the same, so the `.drv` is Nix's. A *set* `meta`
//! without structured attributes is an error in Nix (a set cannot be
//! coerced to a string); kiln instead leaves it out of the env and
//! records it in the store database against the `.drv` (for SBOMs).
//! This changes no path that Nix can compute. `kiln instantiate` also
//! records the `meta` of the derivations it prints (package sets attach
//! `meta` to the result with `//`, out of the hash).

use std::collections::{BTreeMap, BTreeSet};

use kiln_store::derivation::FixedOutputHash;
use kiln_store::{
    Derivation, DerivationError, DerivationOutput, FileIngestionMethod, Hash, HashAlgo,
};
use kiln_store::{StoreDir, StorePath};

use super::Builtin;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::store::{EvalStore, StoreError};
use crate::symbol::Symbol;
use crate::value::{Attrs, Context, ContextElem, NixString, Value};

pub const BUILTINS: &[Builtin] = &[Builtin {
    name: "derivationStrict",
    arity: 1,
    func: derivation_strict,
}];

fn fail(message: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::InvalidValue(message.into()), None)
}

/// The text of a string that goes into a `.drv`. kiln's derivations hold
/// UTF-8 text, so bytes that are not UTF-8 (from a `readFile` of a Latin-1
/// file, say) are an error here, never replaced (Nix 2.8 writes them as
/// they are; a known difference, see docs/language.md).
fn drv_text(s: &NixString) -> EvalResult<String> {
    match s.to_str() {
        Some(text) => Ok(text.to_owned()),
        None => Err(not_utf8(s.as_bytes())),
    }
}

fn not_utf8(bytes: &[u8]) -> EvalError {
    fail(format!(
        "the string '{}' is not valid UTF-8, which kiln cannot write into a derivation yet",
        bytes.escape_ascii()
    ))
}

/// Errors of output-path computation: the derivation's or the store's.
#[derive(Debug)]
enum FillError {
    Derivation(DerivationError),
    Store(StoreError),
}

impl From<DerivationError> for FillError {
    fn from(e: DerivationError) -> FillError {
        FillError::Derivation(e)
    }
}

impl From<FillError> for EvalError {
    fn from(e: FillError) -> EvalError {
        match e {
            FillError::Derivation(e) => fail(e.to_string()),
            FillError::Store(e) => EvalError::from(e),
        }
    }
}

/// What the special attributes said.
#[derive(Default)]
struct Special {
    builder: Option<String>,
    system: Option<String>,
    output_hash: Option<String>,
    output_hash_algo: Option<String>,
    output_hash_mode: Option<FileIngestionMethod>,
    outputs: Option<Vec<String>>,
    content_addressed: bool,
    meta: Option<Attrs>,
}

/// What the walk over the attributes gathers.
struct Gathered {
    name: String,
    drv: Derivation,
    special: Special,
    context: Context,
}

fn derivation_strict(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let attrs = m.force_attrs(&args[0])?;
    let gathered = gather(m, &attrs)?;
    instantiate(m, gathered)
}

/// Walk the attributes in name order into a derivation still without
/// output paths. Forcing them may instantiate the inputs, recursively (a
/// chain of 2,000 derivations nests 2,000 walks), so what the walk builds
/// lives on the heap and this frame stays small.
#[inline(never)]
fn gather(m: &mut Machine, attrs: &Attrs) -> EvalResult<Box<Gathered>> {
    let name_value = attrs
        .get_str("name")
        .cloned()
        .ok_or_else(|| fail("required attribute 'name' missing"))?;
    let name = m
        .force_string(&name_value)
        .map_err(|e| e.context("while evaluating the derivation attribute 'name'", None))?
        .as_str()
        .to_owned();
    let trace =
        |key: &str| format!("while evaluating the attribute '{key}' of the derivation '{name}'");

    let structured = match attrs.get_str("__structuredAttrs") {
        Some(v) => m
            .force_bool(&v.clone())
            .map_err(|e| e.context(trace("__structuredAttrs"), None))?,
        None => false,
    };
    let ignore_nulls = match attrs.get_str("__ignoreNulls") {
        Some(v) => m
            .force_bool(&v.clone())
            .map_err(|e| e.context(trace("__ignoreNulls"), None))?,
        None => false,
    };

    let mut g = Box::new(Gathered {
        name: String::new(),
        drv: Derivation {
            system: String::new(),
            builder: String::new(),
            ..Derivation::default()
        },
        special: Special::default(),
        context: Context::new(),
    });
    let mut json = structured.then(|| String::from("{"));

    for (key_sym, value) in attrs.sorted() {
        let key =
            std::str::from_utf8(key_sym.as_bytes()).map_err(|_| not_utf8(key_sym.as_bytes()))?;
        if key == "__ignoreNulls" {
            continue;
        }
        let value = value.clone();
        let Gathered {
            drv,
            special,
            context,
            ..
        } = &mut *g;
        process_attribute(
            m,
            key,
            &value,
            ignore_nulls,
            drv,
            special,
            context,
            json.as_mut(),
        )
        .map_err(|e| e.context(trace(key), None))?;
    }
    if let Some(mut json) = json {
        json.push('}');
        g.drv.env.insert("__json".to_owned(), json);
    }
    g.name = name;
    Ok(g)
}

/// Check the gathered derivation, compute its output paths, write it and
/// return `{ drvPath, <output> = path; … }`.
#[inline(never)]
fn instantiate(m: &mut Machine, g: Box<Gathered>) -> EvalResult<Value> {
    let Gathered {
        name,
        mut drv,
        mut special,
        context,
    } = *g;
    let store = m.store.clone();
    let dir = store.dir();
    add_inputs(&*store, dir, &context, &mut drv)?;

    drv.builder = special.builder.take().unwrap_or_default();
    drv.system = special.system.take().unwrap_or_default();
    if drv.builder.is_empty() {
        return Err(fail("required attribute 'builder' missing"));
    }
    if drv.system.is_empty() {
        return Err(fail("required attribute 'system' missing"));
    }
    if name.ends_with(".drv") {
        return Err(fail("derivation names are not allowed to end in '.drv'"));
    }
    kiln_store::store_path::check_name(&name)
        .map_err(|e| fail(format!("invalid derivation name '{name}': {e}")))?;

    let outputs = special
        .outputs
        .take()
        .unwrap_or_else(|| vec!["out".to_owned()]);
    declare_outputs(dir, &name, &outputs, &special, &mut drv)?;
    let (aterm, hash) = drv
        .instantiate(dir, &name, &mut |input: &StorePath| {
            store.derivation_hash(input).map_err(FillError::Store)
        })
        .map_err(EvalError::from)?;
    let drv_path = store.add_derivation(&drv, &name, aterm, hash)?;
    if let Some(meta) = &special.meta {
        let json = meta_json(m, meta, &name);
        store.set_derivation_meta(&drv_path, &json)?;
    }

    let mut entries = Vec::with_capacity(drv.outputs.len() + 1);
    entries.push((
        Symbol::intern("drvPath"),
        Value::String(NixString::with_context(
            drv_path.as_str(),
            Context::from([ContextElem::AllOutputs(drv_path.clone())]),
        )),
    ));
    for (output, out) in &drv.outputs {
        let text = match out.path() {
            Some(path) => dir.display(path),
            None => downstream_placeholder(dir, &drv_path, output)?,
        };
        entries.push((
            Symbol::intern(output),
            Value::String(NixString::with_context(
                text,
                Context::from([ContextElem::DrvOutput {
                    drv: drv_path.clone(),
                    output: output.clone(),
                }]),
            )),
        ));
    }
    Ok(Value::Attrs(Attrs::from_entries(entries)))
}

#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn process_attribute(
    m: &mut Machine,
    key: &str,
    value: &Value,
    ignore_nulls: bool,
    drv: &mut Derivation,
    special: &mut Special,
    context: &mut Context,
    json: Option<&mut String>,
) -> EvalResult<()> {
    if ignore_nulls && matches!(m.force(value)?, Value::Null) {
        return Ok(());
    }
    match key {
        "__contentAddressed" => {
            special.content_addressed = m.force_bool(value)?;
            return Ok(());
        }
        "__impure" => {
            if m.force_bool(value)? {
                return Err(fail("impure derivations are not supported"));
            }
            return Ok(());
        }
        "args" => {
            let items = m.force_list(value)?;
            for item in items.iter() {
                drv.args.push(coerce_env(m, item, context)?);
            }
            return Ok(());
        }
        _ => {}
    }
    if let Some(json) = json {
        if key == "__structuredAttrs" {
            return Ok(());
        }
        if key == "meta"
            && let Value::Attrs(meta) = m.force(value)?
        {
            special.meta = Some(meta);
        }
        if json.len() > 1 {
            json.push(',');
        }
        let mut key_context = Context::new();
        let key_json = super::json::to_json(m, &Value::string(key), &mut key_context)?;
        json.push_str(&String::from_utf8(key_json).map_err(|e| not_utf8(e.as_bytes()))?);
        json.push(':');
        let value_json = super::json::to_json(m, value, context)?;
        json.push_str(&String::from_utf8(value_json).map_err(|e| not_utf8(e.as_bytes()))?);
        match key {
            "builder" => {
                let s = m.force_string(value)?;
                s.merge_context_into(context);
                special.builder = Some(drv_text(&s)?);
            }
            "system" => special.system = Some(string_no_context(m, value, key)?),
            "outputHash" => special.output_hash = Some(string_no_context(m, value, key)?),
            "outputHashAlgo" => special.output_hash_algo = Some(string_no_context(m, value, key)?),
            "outputHashMode" => {
                special.output_hash_mode = Some(hash_mode(&string_no_context(m, value, key)?)?)
            }
            "outputs" => {
                let items = m.force_list(value)?;
                let mut names = Vec::new();
                for item in items.iter() {
                    names.push(string_no_context(m, item, key)?);
                }
                special.outputs = Some(check_outputs(names)?);
            }
            _ => {}
        }
        return Ok(());
    }
    if key == "meta"
        && let Value::Attrs(meta) = m.force(value)?
        && !meta.contains(m.sym.out_path)
        && !meta.contains(m.sym.to_string)
    {
        // Not coercible in Nix (an error there): kiln records it instead.
        special.meta = Some(meta);
        return Ok(());
    }
    let s = coerce_env(m, value, context)?;
    match key {
        "builder" => special.builder = Some(s.clone()),
        "system" => special.system = Some(s.clone()),
        "outputHash" => special.output_hash = Some(s.clone()),
        "outputHashAlgo" => special.output_hash_algo = Some(s.clone()),
        "outputHashMode" => special.output_hash_mode = Some(hash_mode(&s)?),
        "outputs" => {
            let names = s.split_ascii_whitespace().map(str::to_owned).collect();
            special.outputs = Some(check_outputs(names)?);
        }
        _ => {}
    }
    drv.env.insert(key.to_owned(), s);
    Ok(())
}

fn string_no_context(m: &mut Machine, value: &Value, key: &str) -> EvalResult<String> {
    let s = m.force_string(value)?;
    if s.has_context() {
        return Err(fail(format!(
            "the string '{}' (attribute '{key}') is not allowed to refer to a store path",
            s.as_str()
        )));
    }
    drv_text(&s)
}

fn hash_mode(s: &str) -> EvalResult<FileIngestionMethod> {
    match s {
        "recursive" => Ok(FileIngestionMethod::Recursive),
        "flat" => Ok(FileIngestionMethod::Flat),
        other => Err(fail(format!(
            "invalid value '{other}' for 'outputHashMode' attribute"
        ))),
    }
}

fn check_outputs(names: Vec<String>) -> EvalResult<Vec<String>> {
    let mut seen = BTreeSet::new();
    for name in &names {
        if !seen.insert(name.clone()) {
            return Err(fail(format!("duplicate derivation output '{name}'")));
        }
        if name == "drv" {
            return Err(fail("invalid derivation output name 'drv'"));
        }
    }
    if names.is_empty() {
        return Err(fail("derivation cannot have an empty set of outputs"));
    }
    Ok(names)
}

/// Nix's `coerceToString(…, coerceMore = true, copyToStore = true)`: the
/// env-var form of a value.
pub fn coerce_env(m: &mut Machine, value: &Value, context: &mut Context) -> EvalResult<String> {
    let value = m.force(value)?;
    match &value {
        Value::Path(p) => {
            let store_path = m.copy_path_to_store(p)?;
            context.insert(ContextElem::Path(store_path.clone()));
            Ok(store_path)
        }
        Value::List(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                out.push_str(&coerce_env(m, item, context)?);
                let empty_list = matches!(m.force(item)?, Value::List(l) if l.is_empty());
                if i + 1 < items.len() && !empty_list {
                    out.push(' ');
                }
            }
            Ok(out)
        }
        Value::Attrs(attrs) if !attrs.contains(m.sym.to_string) => {
            if let Some(out_path) = attrs.get(m.sym.out_path) {
                let out_path = out_path.clone();
                return coerce_env(m, &out_path, context);
            }
            Err(EvalError::new(
                ErrorKind::NotCoercibleToString("a set"),
                None,
            ))
        }
        _ => {
            let s = m.coerce_to_string(&value, Coercion::ToString)?;
            s.merge_context_into(context);
            drv_text(&s)
        }
    }
}

/// Turn the collected context into input sources and input derivations.
fn add_inputs(
    store: &dyn EvalStore,
    dir: &StoreDir,
    context: &Context,
    drv: &mut Derivation,
) -> EvalResult<()> {
    let parse = |p: &str| {
        dir.parse_path(p)
            .map_err(|e| fail(format!("invalid store path '{p}' in a string context: {e}")))
    };
    for elem in context {
        match elem {
            ContextElem::Path(p) => {
                drv.input_srcs.insert(parse(p)?);
            }
            ContextElem::DrvOutput { drv: d, output } => {
                drv.input_drvs
                    .entry(parse(d)?)
                    .or_default()
                    .insert(output.clone());
            }
            ContextElem::AllOutputs(d) => {
                // The whole closure of the `.drv`: every path in it is an
                // input source, and every derivation in it an input with
                // all its outputs.
                for path in closure(store, d)? {
                    let parsed = parse(&path)?;
                    if parsed.name().ends_with(".drv") {
                        let hash = store.derivation_hash(&parsed)?;
                        let outputs = hash.outputs.iter().map(|(name, _)| name.clone());
                        drv.input_drvs.insert(parsed.clone(), outputs.collect());
                    }
                    drv.input_srcs.insert(parsed);
                }
            }
        }
    }
    Ok(())
}

fn closure(store: &dyn EvalStore, start: &str) -> EvalResult<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_owned()];
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        for r in store.references(&path)? {
            if !seen.contains(&r) {
                todo.push(r);
            }
        }
    }
    Ok(seen)
}

/// Give the derivation its outputs, still without paths.
fn declare_outputs(
    dir: &StoreDir,
    name: &str,
    outputs: &[String],
    special: &Special,
    drv: &mut Derivation,
) -> EvalResult<()> {
    let algo = match special.output_hash_algo.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<HashAlgo>()
                .map_err(|_| fail(format!("unknown hash algorithm '{text}'")))?,
        ),
    };
    if let Some(hash_text) = &special.output_hash {
        if outputs.len() != 1 || outputs[0] != "out" {
            return Err(fail(
                "multiple outputs are not supported in fixed-output derivations",
            ));
        }
        let hash = if hash_text.is_empty() {
            // Nix accepts an empty hash with an explicit algorithm (a fake
            // all-zero hash, to learn the real one from the mismatch).
            let algo = algo.ok_or_else(|| fail("empty hash requires explicit hash type"))?;
            Hash::from_bytes(algo, &vec![0; algo.digest_len()]).map_err(|e| fail(e.to_string()))?
        } else {
            Hash::parse(hash_text, algo)
                .map_err(|e| fail(format!("invalid outputHash '{hash_text}': {e}")))?
        };
        let method = special
            .output_hash_mode
            .unwrap_or(FileIngestionMethod::Flat);
        let output = DerivationOutput::fixed(dir, name, "out", FixedOutputHash { method, hash })
            .map_err(|e| fail(e.to_string()))?;
        drv.outputs.insert("out".to_owned(), output);
    } else if special.content_addressed {
        let algo = algo.unwrap_or(HashAlgo::Sha256);
        let method = special
            .output_hash_mode
            .unwrap_or(FileIngestionMethod::Recursive);
        for output in outputs {
            drv.outputs
                .insert(output.clone(), DerivationOutput::Floating { method, algo });
        }
    } else {
        for output in outputs {
            drv.outputs
                .insert(output.clone(), DerivationOutput::Deferred);
        }
    }
    Ok(())
}

/// The string standing for an output of `drv_path` whose path is known
/// only after it is built (Nix's `downstreamPlaceholder`): `/` and the
/// nixbase32 sha256 of `nix-upstream-output:{drv hash part}:{output path
/// name}`.
fn downstream_placeholder(dir: &StoreDir, drv_path: &str, output: &str) -> EvalResult<String> {
    let path = dir.parse_path(drv_path).map_err(StoreError::from)?;
    let drv_name = path.name().trim_end_matches(".drv");
    let clear_text = format!(
        "nix-upstream-output:{}:{}",
        path.hash_part(),
        kiln_store::derivation::output_path_name(drv_name, output)
    );
    let hash = Hash::digest(HashAlgo::Sha256, clear_text);
    Ok(format!(
        "/{}",
        kiln_store::nixbase32::encode(hash.as_bytes())
    ))
}

/// The `meta` record kept for SBOMs, as JSON:
/// `{"name", "version", "description", "homepage", "licenses": [...]}`
/// where each license is `{"spdxId": …}` or `{"name": …}`. Fields that
/// fail to evaluate or have the wrong type are left out: `meta` is
/// informational and must never break instantiation.
pub fn meta_json(m: &mut Machine, meta: &Attrs, drv_name: &str) -> String {
    let mut out = serde_json::Map::new();
    out.insert("name".to_owned(), drv_name.into());
    for field in ["version", "description", "homepage", "mainProgram"] {
        if let Some(v) = meta.get_str(field).cloned()
            && let Some(text) = plain_string(m, &v)
        {
            out.insert(field.to_owned(), text.into());
        }
    }
    if let Some(license) = meta.get_str("license").cloned() {
        let mut licenses = Vec::new();
        match m.force(&license) {
            Ok(Value::List(items)) => {
                for item in items.iter() {
                    licenses.extend(license_json(m, item));
                }
            }
            Ok(other) => licenses.extend(license_json(m, &other)),
            Err(_) => {}
        }
        out.insert("licenses".to_owned(), licenses.into());
    }
    serde_json::Value::Object(out).to_string()
}

fn plain_string(m: &mut Machine, v: &Value) -> Option<String> {
    match m.force(v) {
        Ok(Value::String(s)) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn license_json(m: &mut Machine, v: &Value) -> Option<serde_json::Value> {
    let mut obj = BTreeMap::new();
    match m.force(v).ok()? {
        Value::String(s) => {
            obj.insert("spdxId", s.as_str().to_owned());
        }
        Value::Attrs(attrs) => {
            if let Some(id) = attrs
                .get_str("spdxId")
                .cloned()
                .and_then(|v| plain_string(m, &v))
            {
                obj.insert("spdxId", id);
            } else {
                for key in ["shortName", "fullName"] {
                    if let Some(name) = attrs
                        .get_str(key)
                        .cloned()
                        .and_then(|v| plain_string(m, &v))
                    {
                        obj.insert("name", name);
                        break;
                    }
                }
            }
        }
        _ => return None,
    }
    (!obj.is_empty()).then(|| serde_json::json!(obj))
}
