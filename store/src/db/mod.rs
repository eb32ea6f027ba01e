//! The store database: which paths are valid, their NAR hashes, sizes,
//! references, derivers, and what derivations declare.
//!
//! One SQLite file at `STATE/db/db.sqlite`, in WAL mode (readers never wait
//! for the writer) with foreign keys enforced and `synchronous = FULL`, so a
//! committed registration survives a crash. Every write is one `BEGIN
//! IMMEDIATE` transaction: several kiln processes may share a store, and
//! the busy timeout makes them queue rather than fail.
//!
//! This layer speaks strings (full logical store paths, `algo:nixbase32`
//! hashes); [`crate::store`] converts them to and from typed values. The
//! tables are described in [`schema`].

mod gc;
mod maint;
pub mod schema;

pub(crate) use gc::GcGraph;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// A database failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {path}: {action}: {source}")]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("creating database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this kiln understands ({supported}); upgrade kiln"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "database {path} has schema version {found}, older than this kiln's ({supported}), and it cannot be upgraded read-only; run a kiln command that writes (e.g. `kiln store gc --dry-run`) as the store's owner once"
    )]
    OlderSchemaReadOnly {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("cannot register {referrer}: its reference {reference} is not a valid path")]
    UnknownReference { referrer: String, reference: String },
    #[error("{path} is not a valid path")]
    NotValid { path: String },
}

/// One valid path as the database stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRow {
    /// Full logical store path.
    pub path: String,
    /// `sha256:<nixbase32>` of the path's NAR serialisation.
    pub nar_hash: String,
    pub nar_size: u64,
    pub deriver: Option<String>,
    /// Seconds since the Unix epoch.
    pub registration_time: i64,
    /// Content address (`fixed:r:sha256:…`, `text:sha256:…`), if any.
    pub ca: Option<String>,
    pub signatures: Vec<String>,
    /// Full logical store paths, sorted.
    pub references: Vec<String>,
}

/// An output a derivation declares: `(drv path, output name, output path)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvOutputRow {
    pub drv: String,
    pub output: String,
    pub path: String,
}

pub struct Database {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// How long a process waits for another one's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

impl Database {
    /// Open (creating if needed) the database file at `path` and bring its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Database, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let err = sqlite_err(path);
        let mut conn = Connection::open(path).map_err(err("opening"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(err("setting busy timeout"))?;
        // journal_mode returns a row, so it is queried, not executed.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(err("enabling WAL"))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(err("setting pragmas"))?;
        persist_wal(&conn);
        migrate(path, &mut conn)?;
        Ok(Database {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Open an existing database for reading only (`SQLITE_OPEN_READ_ONLY`):
    /// what read-only commands use, so that a user who cannot write a
    /// root-owned store can still query it. Nothing is created or migrated;
    /// an older schema is refused with what to do. Needs the `-wal` and
    /// `-shm` files to exist, which writers keep (see `persist_wal`).
    pub fn open_read_only(path: &Path) -> Result<Database, DbError> {
        use rusqlite::OpenFlags;
        let err = sqlite_err(path);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err("opening read-only"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(err("setting busy timeout"))?;
        let found = user_version(&conn).map_err(err("reading user_version"))?;
        let supported = schema::current_version();
        if found > supported {
            return Err(DbError::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported,
            });
        }
        if found < supported {
            return Err(DbError::OlderSchemaReadOnly {
                path: path.to_path_buf(),
                found,
                supported,
            });
        }
        Ok(Database {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (an open transaction rolls back on drop), so poisoning is ignored.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema version of the open database.
    #[cfg(test)]
    pub fn schema_version(&self) -> Result<u32, DbError> {
        user_version(&self.conn()).map_err(sqlite_err(&self.path)("reading user_version"))
    }

    /// Make `rows` valid, with their references and the derivation outputs
    /// `drv_outputs`, in one transaction: all or nothing. A path that is
    /// already valid has its row updated. Every reference must be valid
    /// already or be one of `rows`.
    pub fn register(&self, rows: &[PathRow], drv_outputs: &[DrvOutputRow]) -> Result<(), DbError> {
        let err = sqlite_err(&self.path);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("beginning transaction"))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO ValidPaths
                       (path, nar_hash, nar_size, deriver, registration_time, ca, signatures)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(path) DO UPDATE SET
                       nar_hash = excluded.nar_hash, nar_size = excluded.nar_size,
                       deriver = coalesce(excluded.deriver, deriver),
                       ca = coalesce(excluded.ca, ca),
                       signatures = excluded.signatures",
                )
                .map_err(err("preparing insert"))?;
            for row in rows {
                let signatures = (!row.signatures.is_empty()).then(|| row.signatures.join(" "));
                upsert
                    .execute(params![
                        row.path,
                        row.nar_hash,
                        row.nar_size as i64,
                        row.deriver,
                        row.registration_time,
                        row.ca,
                        signatures
                    ])
                    .map_err(err("inserting a valid path"))?;
            }
            let mut clear = tx
                .prepare_cached(
                    "DELETE FROM Refs WHERE referrer = (SELECT id FROM ValidPaths WHERE path = ?1)",
                )
                .map_err(err("preparing reference update"))?;
            let mut add_ref = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO Refs (referrer, reference)
                     SELECT a.id, b.id FROM ValidPaths a, ValidPaths b
                     WHERE a.path = ?1 AND b.path = ?2",
                )
                .map_err(err("preparing reference insert"))?;
            for row in rows {
                clear
                    .execute([&row.path])
                    .map_err(err("clearing references"))?;
                for reference in &row.references {
                    let added = add_ref
                        .execute([&row.path, reference])
                        .map_err(err("inserting a reference"))?;
                    if added == 0 && !is_valid_in(&tx, reference).map_err(err("checking"))? {
                        return Err(DbError::UnknownReference {
                            referrer: row.path.clone(),
                            reference: reference.clone(),
                        });
                    }
                }
            }
            let mut add_output = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO DerivationOutputs (drv, output, path)
                     SELECT id, ?2, ?3 FROM ValidPaths WHERE path = ?1",
                )
                .map_err(err("preparing derivation output insert"))?;
            for out in drv_outputs {
                let added = add_output
                    .execute([&out.drv, &out.output, &out.path])
                    .map_err(err("inserting a derivation output"))?;
                if added == 0 {
                    return Err(DbError::NotValid {
                        path: out.drv.clone(),
                    });
                }
            }
        }
        tx.commit().map_err(err("committing"))
    }

    pub fn is_valid(&self, path: &str) -> Result<bool, DbError> {
        is_valid_in(&self.conn(), path).map_err(sqlite_err(&self.path)("querying validity"))
    }

    /// Which of `paths` are valid, in their order: one read transaction
    /// and one prepared statement for all (an indexed lookup each), so a
    /// large batch costs neither a snapshot per path nor a table scan.
    pub fn valid_among(&self, paths: &[String]) -> Result<Vec<bool>, DbError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Deferred)
            .map_err(err("beginning read transaction"))?;
        let found = paths
            .iter()
            .map(|path| is_valid_in(&tx, path))
            .collect::<rusqlite::Result<Vec<bool>>>()
            .map_err(err("querying validity"))?;
        tx.commit().map_err(err("ending read transaction"))?;
        Ok(found)
    }

    /// Every valid path, sorted.
    pub fn all_paths(&self) -> Result<Vec<String>, DbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT path FROM ValidPaths ORDER BY path")
            .map_err(sqlite_err(&self.path)("preparing the list of valid paths"))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(sqlite_err(&self.path)("listing valid paths"))
    }

    /// The row of a valid path, with its references; `None` if not valid.
    pub fn path_row(&self, path: &str) -> Result<Option<PathRow>, DbError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT id, nar_hash, nar_size, deriver, registration_time, ca, signatures
                 FROM ValidPaths WHERE path = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([path], |r| {
                    let signatures: Option<String> = r.get(6)?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        PathRow {
                            path: path.to_string(),
                            nar_hash: r.get(1)?,
                            nar_size: r.get::<_, i64>(2)? as u64,
                            deriver: r.get(3)?,
                            registration_time: r.get(4)?,
                            ca: r.get(5)?,
                            signatures: signatures
                                .map(|s| s.split_whitespace().map(str::to_string).collect())
                                .unwrap_or_default(),
                            references: Vec::new(),
                        },
                    ))
                })
                .optional()
            })
            .map_err(err("querying path info"))?;
        let Some((id, mut row)) = row else {
            return Ok(None);
        };
        row.references = edge_query(
            &conn,
            "SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference
             WHERE r.referrer = ?1 ORDER BY v.path",
            id,
        )
        .map_err(err("querying references"))?;
        Ok(Some(row))
    }

    /// Valid paths that refer to `path`, sorted.
    pub fn referrers(&self, path: &str) -> Result<Vec<String>, DbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT a.path FROM Refs r
                 JOIN ValidPaths a ON a.id = r.referrer
                 JOIN ValidPaths b ON b.id = r.reference
                 WHERE b.path = ?1 ORDER BY a.path",
            )
            .map_err(sqlite_err(&self.path)("preparing referrers query"))?;
        let rows = stmt
            .query_map([path], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(sqlite_err(&self.path)("querying referrers"))?;
        Ok(rows)
    }

    /// Every path reachable from `roots` through references, the roots
    /// included, with NAR sizes; computed inside SQLite in one query.
    pub fn closure(&self, roots: &[String]) -> Result<Vec<(String, u64)>, DbError> {
        let err = sqlite_err(&self.path);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "WITH RECURSIVE reach(id) AS (
                   SELECT id FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?1))
                   UNION
                   SELECT r.reference FROM Refs r JOIN reach ON r.referrer = reach.id
                 )
                 SELECT v.path, v.nar_size FROM reach JOIN ValidPaths v ON v.id = reach.id
                 ORDER BY v.path",
            )
            .map_err(err("preparing closure query"))?;
        let roots_json = json_string_array(roots);
        let rows = stmt
            .query_map([roots_json], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err("querying closure"))?;
        Ok(rows)
    }

    /// Record (or replace) the `meta` JSON of a valid derivation.
    pub fn set_derivation_meta(&self, drv: &str, json: &str) -> Result<(), DbError> {
        let changed = self
            .conn()
            .execute(
                "INSERT OR REPLACE INTO DerivationMeta (drv, json)
                 SELECT id, ?2 FROM ValidPaths WHERE path = ?1",
                [drv, json],
            )
            .map_err(sqlite_err(&self.path)("setting derivation meta"))?;
        if changed == 0 {
            return Err(DbError::NotValid {
                path: drv.to_string(),
            });
        }
        Ok(())
    }

    pub fn derivation_meta(&self, drv: &str) -> Result<Option<String>, DbError> {
        self.conn()
            .query_row(
                "SELECT m.json FROM DerivationMeta m JOIN ValidPaths v ON v.id = m.drv
                 WHERE v.path = ?1",
                [drv],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite_err(&self.path)("querying derivation meta"))
    }

    /// `(output name, output path)` pairs a valid derivation declares.
    pub fn derivation_outputs(&self, drv: &str) -> Result<Vec<(String, String)>, DbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT o.output, o.path FROM DerivationOutputs o
                 JOIN ValidPaths v ON v.id = o.drv WHERE v.path = ?1 ORDER BY o.output",
            )
            .map_err(sqlite_err(&self.path)("preparing derivation outputs query"))?;
        stmt.query_map([drv], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sqlite_err(&self.path)("querying derivation outputs"))
    }

    /// Valid derivations that declare `path` as one of their outputs.
    pub fn derivers_of_output(&self, path: &str) -> Result<Vec<String>, DbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT v.path FROM DerivationOutputs o JOIN ValidPaths v ON v.id = o.drv
                 WHERE o.path = ?1 ORDER BY v.path",
            )
            .map_err(sqlite_err(&self.path)("preparing derivers query"))?;
        stmt.query_map([path], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(sqlite_err(&self.path)("querying derivers"))
    }
}

#[cfg(test)]
impl Database {
    pub(crate) fn forget_for_test(&self, path: &str) -> rusqlite::Result<usize> {
        self.conn()
            .execute("DELETE FROM ValidPaths WHERE path = ?1", [path])
    }
}

fn sqlite_err(path: &Path) -> impl Fn(&'static str) -> Box<dyn FnOnce(rusqlite::Error) -> DbError> {
    let path = path.to_path_buf();
    move |action| {
        let path = path.clone();
        Box::new(move |source| DbError::Sqlite {
            path,
            action,
            source,
        })
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Apply the migrations this database has not had yet. The version is read
/// again inside the write transaction, so two processes opening a fresh
/// store at once migrate it once.
/// Keep the `-wal` file (and so the `-shm` file) when the last
/// connection closes (`SQLITE_FCNTL_PERSIST_WAL`): a reader that cannot
/// write the database directory can only open a WAL database whose `-shm`
/// and `-wal` files exist. Best effort: without it, readers fall back to
/// an error that says so.
fn persist_wal(conn: &Connection) {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is a live connection owned by `conn` for the
    // duration of the call; "main" is a NUL-terminated schema name; the
    // argument of SQLITE_FCNTL_PERSIST_WAL is a pointer to an int, which
    // `on` is and outlives the call.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        );
    }
}

fn migrate(path: &Path, conn: &mut Connection) -> Result<(), DbError> {
    let err = sqlite_err(path);
    let supported = schema::current_version();
    if user_version(conn).map_err(err("reading user_version"))? == supported {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("beginning migration"))?;
    let found = user_version(&tx).map_err(err("reading user_version"))?;
    if found > supported {
        return Err(DbError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for (version, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(err("applying a migration"))?;
        tx.pragma_update(None, "user_version", version as u32 + 1)
            .map_err(err("updating user_version"))?;
    }
    tx.commit().map_err(err("committing migration"))
}

fn is_valid_in(conn: &Connection, path: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM ValidPaths WHERE path = ?1")?
        .exists([path])
}

fn edge_query(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    stmt.query_map([id], |r| r.get(0))?.collect()
}

/// A JSON array of strings, for passing a list to SQLite's `json_each`.
fn json_string_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests;
