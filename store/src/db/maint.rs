//! Queries for store maintenance (`kiln store verify`): edges the foreign
//! keys should have made impossible.

use super::{Database, DbError, sqlite_err};

impl Database {
    /// Reference edges whose target is not a valid path, as
    /// `(referrer path, reference id)`; the referrer is `None` when it is
    /// not valid either. Foreign keys forbid these, so any is damage (a
    /// database written with foreign keys off, or edited by hand).
    pub fn dangling_references(&self) -> Result<Vec<(Option<String>, i64)>, DbError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT a.path, r.reference FROM Refs r
                 LEFT JOIN ValidPaths a ON a.id = r.referrer
                 LEFT JOIN ValidPaths b ON b.id = r.reference
                 WHERE b.id IS NULL OR a.id IS NULL
                 ORDER BY a.path, r.reference",
            )
            .map_err(err("preparing the dangling references query"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err("querying dangling references"))
    }
}

#[cfg(test)]
impl Database {
    /// Run SQL with foreign keys off, as a damaged database might have.
    pub(crate) fn execute_unchecked_for_test(&self, sql: &str) {
        let conn = self.conn();
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = OFF; {sql}; PRAGMA foreign_keys = ON;"
        ))
        .expect("test SQL");
    }
}
