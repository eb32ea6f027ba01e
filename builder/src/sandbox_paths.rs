//! Extra paths a derivation asks to see at fixed places in its sandbox.
//!
//! Like Nix's `sandbox-paths` setting (`/bin/sh=/nix/store/…-busybox`), but
//! declared by the derivation itself in its `__sandboxPaths` attribute, so
//! that what a build sees is part of its hash and never depends on the
//! host: a space-separated list of `INSIDE=SOURCE`, where SOURCE is a store
//! path (or a file in one) of the build's input closure, bound read-only at
//! INSIDE. Configure scripts and make need a `/bin/sh`; nixpkgs-mini's
//! stdenv offers its seed busybox there this way.
//!
//! Only input paths can be named, so a derivation sees nothing it could not
//! already read at its logical path; INSIDE must be an absolute, normal path
//! outside the places the sandbox itself sets up (the store dir, `/build`,
//! `/dev`, `/proc`, `/etc`).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::error::BuildError;

/// The derivation attribute that declares them.
pub const ATTRIBUTE: &str = "__sandboxPaths";

/// One extra read-only bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPath {
    /// Where the builder sees it (`/bin/sh`).
    pub inside: String,
    /// The host file or directory bound there (under the physical store).
    pub physical: PathBuf,
}

/// Parse `__sandboxPaths` of `drv` and check each source against the
/// build's input `closure`.
pub fn sandbox_paths(
    store: &Store,
    drv_path: &str,
    value: Option<&String>,
    closure: &BTreeSet<StorePath>,
) -> Result<Vec<SandboxPath>, BuildError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let store_dir = store.store_dir().as_str();
    let bad = |item: &str, why: &str| BuildError::SandboxPath {
        drv: drv_path.to_string(),
        item: item.to_string(),
        why: why.to_string(),
    };
    let mut out = Vec::new();
    for item in value.split_whitespace() {
        let Some((inside, source)) = item.split_once('=') else {
            return Err(bad(item, "expected INSIDE=SOURCE"));
        };
        check_inside(inside, store_dir).map_err(|why| bad(item, why))?;
        let (path, rest) = store
            .store_dir()
            .parse_path_prefix(source)
            .map_err(|_| bad(item, "SOURCE must be a store path"))?;
        if !closure.contains(&path) {
            return Err(bad(item, "SOURCE is not an input of the derivation"));
        }
        if Path::new(rest)
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::RootDir))
        {
            return Err(bad(item, "SOURCE must be a normal path"));
        }
        let physical = store.real_path(&path).join(rest.trim_start_matches('/'));
        out.push(SandboxPath {
            inside: inside.to_string(),
            physical,
        });
    }
    Ok(out)
}

fn check_inside(inside: &str, store_dir: &str) -> Result<(), &'static str> {
    let path = Path::new(inside);
    if !path.is_absolute() || path.components().count() < 2 {
        return Err("INSIDE must be an absolute path below /");
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::RootDir))
    {
        return Err("INSIDE must be a normal path (no `.` or `..`)");
    }
    for reserved in [store_dir, "/build", "/dev", "/proc", "/etc"] {
        if path.starts_with(reserved) || Path::new(reserved).starts_with(path) {
            return Err("INSIDE is a place the sandbox sets up itself");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::StoreDir;
    use kiln_store::store::StoreConfig;

    fn store() -> (tempfile::TempDir, Store) {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            root: root.path().to_path_buf(),
            store_dir: StoreDir::new("/kiln/store").unwrap(),
        })
        .unwrap();
        (root, store)
    }

    const SH: &str = "/kiln/store/pw38xrxii1hqv12ppmqfrppk7g287hpq-busybox";

    fn closure(store: &Store) -> BTreeSet<StorePath> {
        [store.store_dir().parse_path(SH).unwrap()].into()
    }

    #[test]
    fn an_input_is_bound_at_the_declared_place() {
        let (_root, store) = store();
        let value = format!("/bin/sh={SH} /usr/bin/env={SH}/bin/env");
        let got = sandbox_paths(&store, "d", Some(&value), &closure(&store)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].inside, "/bin/sh");
        assert_eq!(
            got[0].physical,
            store.real_path(&closure(&store).pop_first().unwrap())
        );
        assert_eq!(got[1].inside, "/usr/bin/env");
        assert!(
            got[1]
                .physical
                .ends_with("pw38xrxii1hqv12ppmqfrppk7g287hpq-busybox/bin/env")
        );
    }

    #[test]
    fn no_attribute_means_no_extra_paths() {
        let (_root, store) = store();
        assert!(
            sandbox_paths(&store, "d", None, &closure(&store))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn only_inputs_and_only_free_places_are_accepted() {
        let (_root, store) = store();
        let other = "/kiln/store/00000000000000000000000000000000-other";
        for value in [
            format!("/bin/sh={other}"),
            "/bin/sh=/etc/shadow".to_string(),
            format!("/bin/sh={SH}/../x"),
            format!("bin/sh={SH}"),
            format!("/={SH}"),
            format!("/etc/passwd={SH}"),
            format!("/build/x={SH}"),
            format!("/kiln/store/x={SH}"),
            format!("/kiln={SH}"),
            format!("/bin/../etc/x={SH}"),
            format!("/bin/sh{SH}"),
        ] {
            let err = sandbox_paths(&store, "d", Some(&value), &closure(&store));
            assert!(
                matches!(err, Err(BuildError::SandboxPath { .. })),
                "{value} was accepted"
            );
        }
    }
}
