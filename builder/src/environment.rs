//! The builder's environment, exactly as Nix sets it.
//!
//! In order, later entries overriding earlier ones:
//!
//! - `PATH=/path-not-set`, `HOME=/homeless-shelter`,
//!   `NIX_STORE=<store dir>`, `NIX_BUILD_CORES=<cores>`,
//!   `NIX_BUILD_TOP`, `TMPDIR`, `TEMPDIR`, `TMP`, `TEMP` = `/build`,
//!   `PWD=/build`, `NIX_LOG_FD=2`, `TERM=xterm-256color`;
//! - every variable of the derivation's `env`, except that a name listed in
//!   `passAsFile` is replaced by `<name>Path`, naming a file in `/build`
//!   (`.attr-<nixbase32 sha256 of the name>`) that holds the value;
//! - each output's name bound to its path.
//!
//! A derivation with `__json` (structured attributes) gets instead of its
//! attributes `NIX_ATTRS_JSON_FILE=/build/.attrs.json` and
//! `NIX_ATTRS_SH_FILE=/build/.attrs.sh`, with the `outputs` attribute
//! rewritten to map each output name to its path.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::BuildError;
use crate::sandbox::BUILD_TOP;

/// What the environment is made from.
pub struct EnvInput<'a> {
    pub store_dir: &'a str,
    pub cores: u32,
    pub drv_env: &'a BTreeMap<String, String>,
    /// Output name → logical store path.
    pub outputs: &'a BTreeMap<String, String>,
}

/// Compute the environment; writes `passAsFile` and structured-attribute
/// files into `build_dir` (the host side of `/build`).
pub fn build_env(
    input: &EnvInput<'_>,
    build_dir: &Path,
) -> Result<BTreeMap<String, String>, BuildError> {
    let mut env = BTreeMap::new();
    let fixed = [
        ("PATH", "/path-not-set"),
        ("HOME", "/homeless-shelter"),
        ("NIX_STORE", input.store_dir),
        ("NIX_BUILD_TOP", BUILD_TOP),
        ("TMPDIR", BUILD_TOP),
        ("TEMPDIR", BUILD_TOP),
        ("TMP", BUILD_TOP),
        ("TEMP", BUILD_TOP),
        ("PWD", BUILD_TOP),
        ("NIX_LOG_FD", "2"),
        ("TERM", "xterm-256color"),
    ];
    for (k, v) in fixed {
        env.insert(k.to_string(), v.to_string());
    }
    env.insert("NIX_BUILD_CORES".into(), input.cores.to_string());

    if let Some(json) = input.drv_env.get("__json") {
        write_structured_attrs(json, input.outputs, build_dir)?;
        env.insert(
            "NIX_ATTRS_JSON_FILE".into(),
            format!("{BUILD_TOP}/.attrs.json"),
        );
        env.insert("NIX_ATTRS_SH_FILE".into(), format!("{BUILD_TOP}/.attrs.sh"));
    } else {
        let pass_as_file: Vec<&str> = input
            .drv_env
            .get("passAsFile")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        for (name, value) in input.drv_env {
            if pass_as_file.contains(&name.as_str()) {
                let file = format!(".attr-{}", attr_file_hash(name));
                let host = build_dir.join(&file);
                std::fs::write(&host, value).map_err(|e| BuildError::io(&host, e))?;
                env.insert(format!("{name}Path"), format!("{BUILD_TOP}/{file}"));
            } else {
                env.insert(name.clone(), value.clone());
            }
        }
    }
    for (name, path) in input.outputs {
        env.insert(name.clone(), path.clone());
    }
    Ok(env)
}

/// nixbase32 of the sha256 of an attribute name, as Nix names passAsFile
/// files.
fn attr_file_hash(name: &str) -> String {
    use kiln_store::hash::{Hash, HashAlgo};
    Hash::digest(HashAlgo::Sha256, name.as_bytes()).to_nix32()
}

fn write_structured_attrs(
    json: &str,
    outputs: &BTreeMap<String, String>,
    build_dir: &Path,
) -> Result<(), BuildError> {
    let mut value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| BuildError::Other(format!("__json is not valid JSON: {e}")))?;
    let serde_json::Value::Object(attrs) = &mut value else {
        return Err(BuildError::Other("__json is not a JSON object".into()));
    };
    let outputs_json: serde_json::Map<String, serde_json::Value> = outputs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    attrs.insert("outputs".into(), serde_json::Value::Object(outputs_json));

    let mut sh = String::new();
    for (key, val) in attrs.iter() {
        if !is_shell_name(key) {
            continue;
        }
        match val {
            serde_json::Value::String(s) => {
                sh += &format!("declare {key}={}\n", shell_quote(s));
            }
            serde_json::Value::Bool(b) => {
                sh += &format!("declare {key}={}\n", if *b { "1" } else { "" });
            }
            serde_json::Value::Number(n) => sh += &format!("declare -i {key}={n}\n"),
            serde_json::Value::Array(items) => {
                let words: Option<Vec<String>> =
                    items.iter().map(|i| i.as_str().map(shell_quote)).collect();
                if let Some(words) = words {
                    sh += &format!("declare -a {key}=({})\n", words.join(" "));
                }
            }
            serde_json::Value::Object(map) => {
                let pairs: Option<Vec<String>> = map
                    .iter()
                    .map(|(k, v)| {
                        v.as_str()
                            .map(|v| format!("[{}]={}", shell_quote(k), shell_quote(v)))
                    })
                    .collect();
                if let Some(pairs) = pairs {
                    sh += &format!("declare -A {key}=({})\n", pairs.join(" "));
                }
            }
            serde_json::Value::Null => {}
        }
    }
    let json_path = build_dir.join(".attrs.json");
    let text = serde_json::to_string(&value)
        .map_err(|e| BuildError::Other(format!("serialising .attrs.json: {e}")))?;
    std::fs::write(&json_path, text).map_err(|e| BuildError::io(&json_path, e))?;
    let sh_path = build_dir.join(".attrs.sh");
    std::fs::write(&sh_path, sh).map_err(|e| BuildError::io(&sh_path, e))?;
    Ok(())
}

fn is_shell_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> BTreeMap<String, String> {
        [("out".to_string(), "/kiln/store/aaaa-x".to_string())].into()
    }

    #[test]
    fn fixed_variables_and_drv_env() {
        let dir = tempfile::tempdir().unwrap();
        let drv_env: BTreeMap<String, String> = [
            ("name".to_string(), "x".to_string()),
            ("HOME".to_string(), "/override".to_string()),
            ("out".to_string(), "".to_string()),
        ]
        .into();
        let outs = outputs();
        let env = build_env(
            &EnvInput {
                store_dir: "/kiln/store",
                cores: 3,
                drv_env: &drv_env,
                outputs: &outs,
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(env["PATH"], "/path-not-set");
        assert_eq!(env["TMPDIR"], "/build");
        assert_eq!(env["NIX_BUILD_CORES"], "3");
        assert_eq!(env["NIX_STORE"], "/kiln/store");
        assert_eq!(env["name"], "x");
        // The derivation's env wins over the defaults, the outputs over both.
        assert_eq!(env["HOME"], "/override");
        assert_eq!(env["out"], "/kiln/store/aaaa-x");
    }

    #[test]
    fn pass_as_file() {
        let dir = tempfile::tempdir().unwrap();
        let drv_env: BTreeMap<String, String> = [
            ("big".to_string(), "lots of text".to_string()),
            ("passAsFile".to_string(), "big".to_string()),
        ]
        .into();
        let outs = outputs();
        let env = build_env(
            &EnvInput {
                store_dir: "/kiln/store",
                cores: 1,
                drv_env: &drv_env,
                outputs: &outs,
            },
            dir.path(),
        )
        .unwrap();
        assert!(!env.contains_key("big"));
        let inside = &env["bigPath"];
        let name = inside.strip_prefix("/build/").unwrap();
        assert!(name.starts_with(".attr-"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            "lots of text"
        );
    }

    #[test]
    fn structured_attrs() {
        let dir = tempfile::tempdir().unwrap();
        let drv_env: BTreeMap<String, String> = [(
            "__json".to_string(),
            r#"{"name":"x","flag":true,"list":["a","b'c"],"outputs":["out"]}"#.to_string(),
        )]
        .into();
        let outs = outputs();
        let env = build_env(
            &EnvInput {
                store_dir: "/kiln/store",
                cores: 1,
                drv_env: &drv_env,
                outputs: &outs,
            },
            dir.path(),
        )
        .unwrap();
        assert!(!env.contains_key("__json"));
        assert_eq!(env["NIX_ATTRS_JSON_FILE"], "/build/.attrs.json");
        let json = std::fs::read_to_string(dir.path().join(".attrs.json")).unwrap();
        assert!(json.contains(r#""outputs":{"out":"/kiln/store/aaaa-x"}"#));
        let sh = std::fs::read_to_string(dir.path().join(".attrs.sh")).unwrap();
        assert!(sh.contains("declare -a list=('a' 'b'\\''c')"));
        assert!(sh.contains("declare flag=1"));
    }
}
