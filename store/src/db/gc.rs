//! The database side of garbage collection: the whole reference graph in
//! memory, and the invalidation of dead paths, in one write transaction.

use std::collections::HashMap;

use rusqlite::TransactionBehavior;

use crate::db::{Database, DbError, sqlite_err};

/// Every valid path with its edges, by dense index.
#[derive(Debug, Default)]
pub(crate) struct GcGraph {
    /// Full logical paths.
    pub paths: Vec<String>,
    pub nar_sizes: Vec<u64>,
    /// Row ids, for the deletion.
    ids: Vec<i64>,
    /// `(referrer, reference)`.
    pub refs: Vec<(u32, u32)>,
    /// `(derivation, output)` where both are valid.
    pub drv_outputs: Vec<(u32, u32)>,
}

impl GcGraph {
    pub fn index_of(&self) -> HashMap<&str, u32> {
        self.paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i as u32))
            .collect()
    }
}

impl Database {
    /// In one `BEGIN IMMEDIATE` transaction (no registration can slip in
    /// between reading and deleting): read the graph, let `decide` choose
    /// the paths to invalidate, and (with `commit`) delete their rows with
    /// their edges and derivation records. The chosen set must contain
    /// every referrer of each of its paths; otherwise nothing is deleted
    /// and the foreign key error is returned.
    pub(crate) fn gc_transaction<T>(
        &self,
        commit: bool,
        decide: impl FnOnce(&GcGraph) -> (Vec<u32>, T),
    ) -> Result<(GcGraph, Vec<u32>, T), DbError> {
        let err = sqlite_err(&self.path);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("beginning the collector's transaction"))?;
        let graph = read_graph(&tx).map_err(err("reading the reference graph"))?;
        let (chosen, extra) = decide(&graph);
        if !commit || chosen.is_empty() {
            return Ok((graph, chosen, extra));
        }
        {
            let mut drop_refs = tx
                .prepare_cached("DELETE FROM Refs WHERE referrer = ?1")
                .map_err(err("preparing the deletion of references"))?;
            for &i in &chosen {
                drop_refs
                    .execute([graph.ids[i as usize]])
                    .map_err(err("deleting references"))?;
            }
            let mut drop_path = tx
                .prepare_cached("DELETE FROM ValidPaths WHERE id = ?1")
                .map_err(err("preparing the deletion of paths"))?;
            for &i in &chosen {
                drop_path
                    .execute([graph.ids[i as usize]])
                    .map_err(err("invalidating a path"))?;
            }
        }
        tx.commit().map_err(err("committing the invalidation"))?;
        Ok((graph, chosen, extra))
    }
}

fn read_graph(conn: &rusqlite::Connection) -> rusqlite::Result<GcGraph> {
    let mut graph = GcGraph::default();
    let mut by_id: HashMap<i64, u32> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached("SELECT id, path, nar_size FROM ValidPaths")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            by_id.insert(id, graph.paths.len() as u32);
            graph.ids.push(id);
            graph.paths.push(row.get(1)?);
            graph.nar_sizes.push(row.get::<_, i64>(2)? as u64);
        }
    }
    {
        let mut stmt = conn.prepare_cached("SELECT referrer, reference FROM Refs")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (a, b): (i64, i64) = (row.get(0)?, row.get(1)?);
            if let (Some(&a), Some(&b)) = (by_id.get(&a), by_id.get(&b)) {
                graph.refs.push((a, b));
            }
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT o.drv, v.id FROM DerivationOutputs o JOIN ValidPaths v ON v.path = o.path",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (d, o): (i64, i64) = (row.get(0)?, row.get(1)?);
            if let (Some(&d), Some(&o)) = (by_id.get(&d), by_id.get(&o)) {
                graph.drv_outputs.push((d, o));
            }
        }
    }
    Ok(graph)
}
