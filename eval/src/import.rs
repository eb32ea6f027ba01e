//! Loading files: `import`, `scopedImport`, and the top-level file or
//! `-E` expression.
//!
//! A file is read, parsed, compiled with its directory as the base for
//! relative paths, and evaluated in an empty top frame. `import` caches
//! the value by canonical path, so importing a file twice evaluates it
//! once (a directory means its `default.nix`). `scopedImport` is not
//! cached: its extra names are compiled as the file's outermost lexical
//! scope, so they shadow the globals as in Nix. `<nix/fetchurl.nix>` and
//! friends resolve to [`COREPKGS_DIR`]
//! and are served from memory.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use smallvec::SmallVec;

use crate::compile::{self, CompileContext};
use crate::env::Env;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval_io::FileKind;
use crate::machine::Machine;
use crate::search_path::COREPKGS_DIR;
use crate::symbol::Symbol;
use crate::value::{Attrs, Value};

/// `fetchurl.nix` as Nix ships it in spirit: a fixed-output derivation
/// fetched by the builder's built-in fetcher.
const FETCHURL_NIX: &str = r#"{ system ? "", url, hash ? "", sha256 ? "", sha1 ? "", md5 ? "", outputHash ? "", outputHashAlgo ? "", executable ? false, unpack ? false, name ? baseNameOf (toString url) }:
derivation {
  builder = "builtin:fetchurl";
  inherit name url executable unpack;
  system = "builtin";
  outputHashMode = if unpack || executable then "recursive" else "flat";
  outputHashAlgo = if hash != "" then "" else if sha256 != "" then "sha256" else if sha1 != "" then "sha1" else if md5 != "" then "md5" else outputHashAlgo;
  outputHash = if hash != "" then hash else if sha256 != "" then sha256 else if sha1 != "" then sha1 else if md5 != "" then md5 else outputHash;
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
  urls = [ url ];
}
"#;

impl Machine {
    /// `import path`.
    pub fn import_path(&mut self, path: &Path) -> EvalResult<Value> {
        let file = self.resolve_import(path);
        let key = self.io.canonicalize(&file).unwrap_or_else(|_| file.clone());
        if let Some(value) = self.import_cache.get(&key) {
            return Ok(value.clone());
        }
        let value = self
            .eval_file_with(&file, None)
            .map_err(|e| e.context(format!("while importing '{}'", file.display()), None))?;
        self.import_cache.insert(key, value.clone());
        Ok(value)
    }

    /// `scopedImport scope path`.
    pub fn import_scoped(&mut self, path: &Path, scope: Attrs) -> EvalResult<Value> {
        let file = self.resolve_import(path);
        self.eval_file_with(&file, Some(scope))
    }

    fn eval_file_with(&mut self, file: &Path, scope: Option<Attrs>) -> EvalResult<Value> {
        let text = self.read_source(file)?;
        let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.eval_text(
            file.display().to_string(),
            Some(file.to_path_buf()),
            text,
            &base,
            scope,
        )
    }

    fn read_source(&self, file: &Path) -> EvalResult<String> {
        if let Ok(rest) = file.strip_prefix(COREPKGS_DIR) {
            return match rest.to_str() {
                Some("fetchurl.nix") => Ok(FETCHURL_NIX.to_owned()),
                _ => Err(EvalError::new(
                    ErrorKind::Io(format!("file '{}' does not exist", file.display())),
                    None,
                )),
            };
        }
        let text = self.io.read_file(file).and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                )
            })
        });
        text.map_err(|e| {
            EvalError::new(
                ErrorKind::Io(format!("reading '{}': {e}", file.display())),
                None,
            )
        })
    }

    /// Parse, compile and evaluate a source text (to weak head normal form).
    pub fn eval_text(
        &mut self,
        name: String,
        path: Option<PathBuf>,
        text: String,
        base_dir: &Path,
        scope: Option<Attrs>,
    ) -> EvalResult<Value> {
        let (outer_names, outer_values): (Vec<Symbol>, SmallVec<[Value; 2]>) = match &scope {
            Some(attrs) => attrs.iter().map(|(n, v)| (n, v.clone())).unzip(),
            None => (Vec::new(), SmallVec::new()),
        };
        let code = self.compile_text(name, path, text, base_dir, outer_names)?;
        let env = Env::new(outer_values, None);
        self.eval(&code, &env)
    }

    /// Parse and compile a source text. Undefined variables are reported
    /// here, before anything is evaluated (Nix does it while parsing).
    pub fn compile_text(
        &mut self,
        name: String,
        path: Option<PathBuf>,
        text: String,
        base_dir: &Path,
        outer_names: Vec<Symbol>,
    ) -> EvalResult<Rc<crate::compile::ir::Expr>> {
        let file = self.sources.add(name, path, text);
        let mut ast = crate::parse::parse(self, file)?;
        let ctx = CompileContext {
            interner: &self.interner,
            sources: &self.sources.map,
            base_dir,
            globals: &self.globals,
            outer_names,
        };
        Ok(Rc::new(compile::compile(&mut ast, &ctx)?))
    }
}

impl Machine {
    /// A directory means its `default.nix`.
    fn resolve_import(&self, path: &Path) -> PathBuf {
        if matches!(self.io.kind(path), Ok(FileKind::Directory)) {
            path.join("default.nix")
        } else {
            path.to_path_buf()
        }
    }
}
