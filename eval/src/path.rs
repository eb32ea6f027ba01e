//! Path values: always absolute and normalised without touching the file
//! system (`.` and `..` resolved textually, repeated `/` collapsed), as
//! Nix's `canonPath` does.

use std::path::{Path, PathBuf};

/// Normalise an absolute path textually.
pub fn normalise(path: &str) -> PathBuf {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    PathBuf::from(out)
}

/// Resolve `text` (absolute, or relative to `base`) and normalise it.
pub fn resolve(base: &Path, text: &str) -> PathBuf {
    if text.starts_with('/') {
        normalise(text)
    } else {
        normalise(&format!("{}/{}", base.display(), text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_dots_and_slashes() {
        assert_eq!(normalise("/a/./b//c/../d"), PathBuf::from("/a/b/d"));
        assert_eq!(normalise("/.."), PathBuf::from("/"));
        assert_eq!(resolve(Path::new("/x/y"), "../z"), PathBuf::from("/x/z"));
        assert_eq!(resolve(Path::new("/x"), "/abs"), PathBuf::from("/abs"));
    }
}
