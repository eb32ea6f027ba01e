//! Questions about valid paths: validity, info, the reference graph, and
//! derivation records.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::{Store, StoreError, ValidPathInfo};
use crate::store_path::StorePath;

impl Store {
    pub fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        Ok(self.db.is_valid(&self.print_path(path))?)
    }

    /// Every valid path, sorted.
    pub fn all_valid_paths(&self) -> Result<Vec<StorePath>, StoreError> {
        self.db
            .all_paths()?
            .iter()
            .map(|p| self.parse_db_path(p))
            .collect()
    }

    /// What the database records about `path`; `None` if it is not valid.
    pub fn path_info(&self, path: &StorePath) -> Result<Option<ValidPathInfo>, StoreError> {
        match self.db.path_row(&self.print_path(path))? {
            Some(row) => Ok(Some(self.info_from_row(row)?)),
            None => Ok(None),
        }
    }

    fn valid_info(&self, path: &StorePath) -> Result<ValidPathInfo, StoreError> {
        self.path_info(path)?
            .ok_or_else(|| StoreError::NotValid(self.print_path(path)))
    }

    /// The paths `path` refers to (possibly itself).
    pub fn references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.valid_info(path)?.references)
    }

    /// The valid paths that refer to `path`.
    pub fn referrers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        self.valid_info(path)?;
        self.db
            .referrers(&self.print_path(path))?
            .iter()
            .map(|p| self.parse_db_path(p))
            .collect()
    }

    /// The closure of `paths` under references (Nix's requisites), the
    /// paths themselves included. Every path must be valid.
    pub fn closure(&self, paths: &[StorePath]) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.closure_with_sizes(paths)?.into_keys().collect())
    }

    /// Sum of the NAR sizes of the closure of `paths`.
    pub fn closure_size(&self, paths: &[StorePath]) -> Result<u64, StoreError> {
        Ok(self.closure_with_sizes(paths)?.values().sum())
    }

    fn closure_with_sizes(
        &self,
        paths: &[StorePath],
    ) -> Result<BTreeMap<StorePath, u64>, StoreError> {
        for path in paths {
            if !self.is_valid(path)? {
                return Err(StoreError::NotValid(self.print_path(path)));
            }
        }
        let roots: Vec<String> = paths.iter().map(|p| self.print_path(p)).collect();
        self.db
            .closure(&roots)?
            .into_iter()
            .map(|(path, size)| Ok((self.parse_db_path(&path)?, size)))
            .collect()
    }

    /// `paths` ordered so that every path comes after the paths it refers
    /// to (references outside `paths` are ignored), ties broken by name:
    /// the order `nix-store -qR` prints.
    pub fn topo_sort(&self, paths: &BTreeSet<StorePath>) -> Result<Vec<StorePath>, StoreError> {
        let mut refs = BTreeMap::new();
        for path in paths {
            refs.insert(path.clone(), self.references(path)?);
        }
        let mut sorted = Vec::with_capacity(paths.len());
        let mut visited = BTreeSet::new();
        for path in paths {
            visit(path, &refs, &mut visited, &mut sorted);
        }
        Ok(sorted)
    }

    /// Record the `meta` attributes (JSON) of a valid derivation.
    pub fn set_derivation_meta(&self, drv: &StorePath, json: &str) -> Result<(), StoreError> {
        Ok(self.db.set_derivation_meta(&self.print_path(drv), json)?)
    }

    /// The `meta` JSON recorded for a derivation, if any.
    pub fn derivation_meta(&self, drv: &StorePath) -> Result<Option<String>, StoreError> {
        Ok(self.db.derivation_meta(&self.print_path(drv))?)
    }

    /// The outputs a valid derivation declares, by output name.
    pub fn derivation_outputs(
        &self,
        drv: &StorePath,
    ) -> Result<BTreeMap<String, StorePath>, StoreError> {
        self.db
            .derivation_outputs(&self.print_path(drv))?
            .into_iter()
            .map(|(name, path)| Ok((name, self.parse_db_path(&path)?)))
            .collect()
    }

    /// Valid derivations that declare `path` as an output.
    pub fn derivers_of_output(&self, path: &StorePath) -> Result<Vec<StorePath>, StoreError> {
        self.db
            .derivers_of_output(&self.print_path(path))?
            .iter()
            .map(|p| self.parse_db_path(p))
            .collect()
    }
}

/// Depth-first, post-order: a path is emitted after everything it refers to.
/// Iterative so that a long chain of references cannot overflow the stack.
fn visit(
    root: &StorePath,
    refs: &BTreeMap<StorePath, BTreeSet<StorePath>>,
    visited: &mut BTreeSet<StorePath>,
    sorted: &mut Vec<StorePath>,
) {
    if !visited.insert(root.clone()) {
        return;
    }
    let children = |p: &StorePath| -> Vec<StorePath> {
        refs.get(p)
            .map(|set| {
                set.iter()
                    .filter(|r| *r != p && refs.contains_key(*r))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut stack = vec![(root.clone(), children(root), 0usize)];
    while let Some((path, kids, next)) = stack.last_mut() {
        if let Some(child) = kids.get(*next).cloned() {
            *next += 1;
            if visited.insert(child.clone()) {
                let grandkids = children(&child);
                stack.push((child, grandkids, 0));
            }
        } else {
            sorted.push(path.clone());
            stack.pop();
        }
    }
}
