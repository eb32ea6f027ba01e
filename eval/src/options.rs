//! What an evaluation is configured with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::search_path::SearchPathEntry;

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Entries for `<name>` lookups, in order (`-I` first, then
    /// `KILN_PATH`).
    pub search_path: Vec<SearchPathEntry>,
    /// `builtins.currentSystem`.
    pub current_system: String,
    /// Directory that relative paths in `-E` expressions are resolved
    /// against (the current directory).
    pub base_dir: PathBuf,
    /// Extra files visible as `<nix/NAME>` (the corepkgs Nix ships, such
    /// as `fetchurl.nix`).
    pub corepkgs: BTreeMap<String, String>,
    /// Render errors with the full trace, builtin frames included
    /// (`--show-trace`); otherwise the short one (see `render`).
    pub show_trace: bool,
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions {
            search_path: Vec::new(),
            current_system: current_system(),
            base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            corepkgs: BTreeMap::new(),
            show_trace: false,
        }
    }
}

/// The system double of this machine, as Nix spells it (`x86_64-linux`).
pub fn current_system() -> String {
    let arch = std::env::consts::ARCH;
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    format!("{arch}-{os}")
}
