//! From global options to a store: where the root is, which store dir, and
//! how a store path typed on the command line is understood.
//!
//! Root: `--root` / `KILN_ROOT`; otherwise `/` for uid 0 and
//! `$XDG_DATA_HOME/kiln/root` (or `~/.local/share/kiln/root`) for other
//! users. The store is at ROOT + store dir, state at ROOT/kiln/var/kiln.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use kiln_store::store::{Store, StoreConfig};
use kiln_store::{StoreDir, StorePath};

use crate::cli::GlobalOpts;
use crate::exit;

/// The store configuration the global options describe.
pub fn store_config(global: &GlobalOpts) -> anyhow::Result<StoreConfig> {
    let store_dir = StoreDir::new(&global.store_dir)
        .map_err(|err| exit::user(anyhow!("--store-dir: {err}")))?;
    let root = match &global.root {
        Some(root) if root.as_os_str().is_empty() => {
            return Err(exit::user(anyhow!(
                "--root: the directory must not be empty"
            )));
        }
        Some(root) => root.clone(),
        None => default_root()?,
    };
    let root = std::path::absolute(&root)
        .with_context(|| format!("--root: cannot resolve {}", root.display()))
        .map_err(exit::user)?;
    Ok(StoreConfig { root, store_dir })
}

/// `/` for root; a directory in the user's data dir otherwise.
fn default_root() -> anyhow::Result<PathBuf> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    default_root_for(
        uid,
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
    .ok_or_else(|| {
        exit::user(anyhow!(
            "no store root: set --root or KILN_ROOT (HOME and XDG_DATA_HOME are unset)"
        ))
    })
}

fn default_root_for(
    uid: u32,
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if uid == 0 {
        return Some(PathBuf::from("/"));
    }
    if let Some(data) = xdg_data_home.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(data).join("kiln/root"));
    }
    home.filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/kiln/root"))
}

/// Open the store the global options describe.
pub fn open_store(global: &GlobalOpts) -> anyhow::Result<Store> {
    let config = store_config(global)?;
    let root = config.root.clone();
    Store::open(config).with_context(|| format!("opening the store at root {}", root.display()))
}

/// Open the store for a command that only reads it (`path-info`, `query`,
/// `why-depends`, `verify` without `--repair`, …): the database read-only,
/// so other users can read a root-owned store.
pub fn open_store_read_only(global: &GlobalOpts) -> anyhow::Result<Store> {
    let config = store_config(global)?;
    let root = config.root.clone();
    Store::open_read_only(config)
        .with_context(|| format!("opening the store at root {} to read", root.display()))
}

/// The derivations known to have built (or to declare) the output `path`:
/// the deriver its registration records first, then every valid `.drv`
/// that names it as an output. Empty when the store knows none.
pub fn derivers(store: &Store, path: &StorePath) -> anyhow::Result<Vec<StorePath>> {
    let mut drvs = Vec::new();
    if let Some(info) = store.path_info(path).context("querying the database")? {
        drvs.extend(info.deriver);
    }
    for drv in store
        .derivers_of_output(path)
        .context("querying the database")?
    {
        if !drvs.contains(&drv) {
            drvs.push(drv);
        }
    }
    Ok(drvs)
}

/// Understand a store path given on the command line: a logical path
/// (`/kiln/store/<hash>-<name>`, also with a path inside it), the same path
/// under the physical root, or a symlink to either (a `result` link).
pub fn parse_store_path_arg(config: &StoreConfig, arg: &str) -> anyhow::Result<StorePath> {
    resolve_store_path(config, arg).map_err(exit::user)
}

fn resolve_store_path(config: &StoreConfig, arg: &str) -> anyhow::Result<StorePath> {
    if arg.is_empty() {
        return Err(anyhow!("an empty string is not a store path"));
    }
    let logical = Path::new(config.store_dir.as_str());
    let physical = config.physical_store_dir();
    let physical_real = fs::canonicalize(&physical).ok();
    let prefixes: Vec<&Path> = [
        Some(logical),
        Some(physical.as_path()),
        physical_real.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut current = std::path::absolute(arg)
        .with_context(|| format!("{arg}: cannot make the path absolute"))?;
    // Follow symlinks one hop at a time: a link's target is a logical path
    // that need not exist on this machine when the root is not `/`.
    for _ in 0..40 {
        if let Some(path) = under_store(&prefixes, &current, arg)? {
            return Ok(path);
        }
        match fs::read_link(&current) {
            Ok(target) => {
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                }
            }
            Err(_) => break,
        }
    }
    // A symlinked directory along the way (e.g. the root itself).
    if let Ok(real) = fs::canonicalize(arg)
        && let Some(path) = under_store(&prefixes, &real, arg)?
    {
        return Ok(path);
    }
    Err(anyhow!(
        "{arg} is not a store path: expected {}/<hash>-<name>, the same under {}, or a symlink to one",
        config.store_dir,
        physical.display()
    ))
}

/// The store path `path` is in, if it is below one of `prefixes`.
fn under_store(prefixes: &[&Path], path: &Path, arg: &str) -> anyhow::Result<Option<StorePath>> {
    for prefix in prefixes {
        let Ok(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        let Some(first) = rest.components().next() else {
            return Err(anyhow!(
                "{arg} is the store directory itself, not a store path"
            ));
        };
        let base = first.as_os_str().to_str().ok_or_else(|| {
            anyhow!("{arg}: store path names are ASCII, this one is not valid UTF-8")
        })?;
        let store_path = StorePath::from_base_name(base)
            .with_context(|| format!("{arg}: not a valid store path"))?;
        return Ok(Some(store_path));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roots() {
        let some = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            default_root_for(0, some("/x"), some("/h")),
            Some("/".into())
        );
        assert_eq!(
            default_root_for(1000, some("/data"), some("/h")),
            Some("/data/kiln/root".into())
        );
        assert_eq!(
            default_root_for(1000, some(""), some("/h")),
            Some("/h/.local/share/kiln/root".into())
        );
        assert_eq!(default_root_for(1000, None, None), None);
    }

    #[test]
    fn store_path_spellings() {
        let tmp = std::env::temp_dir().join(format!("kiln-config-test-{}", std::process::id()));
        let config = StoreConfig {
            root: tmp.clone(),
            store_dir: StoreDir::new("/kiln/store").unwrap(),
        };
        let base = "0c6kzph7l0dcbfmjap64f0czdafn3b7x-hello";
        let logical = format!("/kiln/store/{base}");
        let physical = format!("{}/kiln/store/{base}/bin", tmp.display());
        for arg in [logical.as_str(), physical.as_str()] {
            assert_eq!(resolve_store_path(&config, arg).unwrap().to_string(), base);
        }
        let err = resolve_store_path(&config, "/etc/passwd").unwrap_err();
        assert!(err.to_string().contains("is not a store path"), "{err}");
        let err = resolve_store_path(&config, "/kiln/store/x").unwrap_err();
        assert!(format!("{err:#}").contains("/kiln/store/x"), "{err:#}");
    }
}
