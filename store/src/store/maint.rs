//! What store maintenance asks beyond the ordinary queries: whether a
//! valid path's files are there, and damage in the reference graph.

use crate::store::{Store, StoreError};
use crate::store_path::StorePath;

impl Store {
    /// Whether `path` is valid *and* has files on disk. A path registered
    /// but deleted by hand is valid without being present; builds and
    /// installs treat it as missing and make it again.
    pub fn is_present(&self, path: &StorePath) -> Result<bool, StoreError> {
        Ok(self.is_valid(path)? && self.files_exist(path))
    }

    /// Whether anything is at `path`'s physical location (no symlink is
    /// followed).
    pub fn files_exist(&self, path: &StorePath) -> bool {
        std::fs::symlink_metadata(self.real_path(path)).is_ok()
    }

    /// Reference edges to paths that are not valid, as (referrer, the
    /// database id of the missing reference). See
    /// `Database::dangling_references`.
    pub fn dangling_references(&self) -> Result<Vec<(Option<StorePath>, i64)>, StoreError> {
        self.db
            .dangling_references()?
            .into_iter()
            .map(|(referrer, id)| {
                let referrer = match referrer {
                    Some(p) => Some(self.parse_db_path(&p)?),
                    None => None,
                };
                Ok((referrer, id))
            })
            .collect()
    }
}

#[cfg(test)]
impl Store {
    /// Run SQL on the database with foreign keys off.
    pub(crate) fn damage_database_for_test(&self, sql: &str) {
        self.db.execute_unchecked_for_test(sql);
    }
}
