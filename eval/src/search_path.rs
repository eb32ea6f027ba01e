//! The search path for `<name>` lookups.
//!
//! Entries come from `-I` options, then from `KILN_PATH`, then from
//! `NIX_PATH` (both colon-separated; a `scheme://…` entry keeps its colon). An entry is either `DIR` (look for
//! `DIR/name`) or `PREFIX=DIR` (`<PREFIX/rest>` becomes `DIR/rest`). The
//! parser turns `<p>` into `__findFile __nixPath "p"`, so a program can
//! shadow either name, as in Nix; `__nixPath` is the list of entries as
//! `{ prefix; path; }` sets and `__findFile` walks it in order and returns
//! the first candidate that exists. `<nix/…>` names the few files Nix
//! ships with itself (`nix/fetchurl.nix`), which kiln provides built in.

use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval_io::EvalIO;
use crate::machine::Machine;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchPathEntry {
    /// Empty for a plain directory entry.
    pub prefix: String,
    pub path: String,
}

impl SearchPathEntry {
    /// Parse `PREFIX=PATH` or `PATH`; relative paths are resolved against
    /// `cwd`.
    pub fn parse(text: &str, cwd: &Path) -> SearchPathEntry {
        let (prefix, path) = match text.split_once('=') {
            Some((prefix, path)) => (prefix.to_owned(), path),
            None => (String::new(), text),
        };
        let path = if path.starts_with('/') || path.contains("://") {
            path.to_owned()
        } else {
            crate::path::resolve(cwd, path).display().to_string()
        };
        SearchPathEntry { prefix, path }
    }

    /// Parse a colon-separated list (`KILN_PATH`, `NIX_PATH`). Empty items
    /// are skipped; the colon of a URL (`nixpkgs=https://…`) does not
    /// split it. (kiln does not download, so such an entry never matches.)
    pub fn parse_list(text: &str, cwd: &Path) -> Vec<SearchPathEntry> {
        let mut items: Vec<String> = Vec::new();
        for piece in text.split(':') {
            match items.last_mut() {
                Some(last) if piece.starts_with("//") => {
                    last.push(':');
                    last.push_str(piece);
                }
                _ => items.push(piece.to_owned()),
            }
        }
        items
            .iter()
            .filter(|item| !item.is_empty())
            .map(|item| SearchPathEntry::parse(item, cwd))
            .collect()
    }

    /// The candidate file for `wanted` under this entry, if the prefix fits.
    pub fn candidate(&self, wanted: &str) -> Option<PathBuf> {
        if self.prefix.is_empty() {
            return Some(crate::path::resolve(Path::new(&self.path), wanted));
        }
        let rest = wanted.strip_prefix(self.prefix.as_str())?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(crate::path::normalise(&format!("{}{}", self.path, rest)))
    }
}

/// Where the built-in `<nix/…>` files appear to live.
pub const COREPKGS_DIR: &str = "/__kiln_corepkgs__";

impl Machine {
    /// Look `wanted` up in the machine's own search path.
    pub fn find_in_search_path(&self, wanted: &str) -> EvalResult<PathBuf> {
        find_file(&*self.io, &self.search_path, wanted)
    }
}

/// Resolve `<wanted>` against `entries`.
pub fn find_file(
    io: &dyn EvalIO,
    entries: &[SearchPathEntry],
    wanted: &str,
) -> EvalResult<PathBuf> {
    for entry in entries {
        if let Some(candidate) = entry.candidate(wanted)
            && io.kind(&candidate).is_ok()
        {
            return Ok(candidate);
        }
    }
    if let Some(rest) = wanted.strip_prefix("nix/") {
        return Ok(PathBuf::from(format!("{COREPKGS_DIR}/{rest}")));
    }
    Err(EvalError::new(
        ErrorKind::SearchPathNotFound(wanted.to_owned()),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_entry_keeps_its_colon() {
        let entries = SearchPathEntry::parse_list(
            "nixpkgs=https://example.org/n.tar.gz:/plain::x=/y",
            Path::new("/"),
        );
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["https://example.org/n.tar.gz", "/plain", "/y"]);
    }

    #[test]
    fn parses_prefixed_and_plain_entries() {
        let cwd = Path::new("/work");
        let plain = SearchPathEntry::parse("./dir1", cwd);
        assert_eq!(plain.prefix, "");
        assert_eq!(plain.path, "/work/dir1");
        let prefixed = SearchPathEntry::parse("dir5=/x/dir3", cwd);
        assert_eq!(prefixed.prefix, "dir5");
        assert_eq!(
            prefixed.candidate("dir5/c.nix"),
            Some(PathBuf::from("/x/dir3/c.nix"))
        );
        assert_eq!(prefixed.candidate("dir55/c.nix"), None);
        assert_eq!(SearchPathEntry::parse_list("a::/b", cwd).len(), 2);
    }
}
