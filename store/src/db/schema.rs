//! The database schema, as an ordered list of migrations.
//!
//! SQLite's `user_version` pragma holds how many migrations a database has
//! had. Opening a database applies the missing ones in order, each in the
//! same transaction as the version bump, so a crash mid-migration leaves the
//! previous version. Never edit a migration that has shipped: append one.
//!
//! Store paths are kept as full logical paths (`/kiln/store/<hash>-<name>`)
//! and hashes as `sha256:<nixbase32>`, the way Nix's own database keeps them.

/// Migration `i` takes a database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE ValidPaths (
        id                INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        path              TEXT    UNIQUE NOT NULL,
        nar_hash          TEXT    NOT NULL,
        nar_size          INTEGER NOT NULL,
        deriver           TEXT,
        registration_time INTEGER NOT NULL,
        ca                TEXT,
        -- space-separated `keyname:base64sig` entries, as in narinfo files
        signatures        TEXT
    );

    -- A reference edge. Deleting the referrer drops its edges; a path that
    -- is still referenced cannot be deleted (GC must delete referrers first).
    CREATE TABLE Refs (
        referrer  INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
        reference INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE RESTRICT,
        PRIMARY KEY (referrer, reference)
    );
    -- `referrers` walks edges backwards.
    CREATE INDEX IndexReferrer ON Refs(referrer);
    CREATE INDEX IndexReference ON Refs(reference);

    -- The outputs a valid .drv declares (input-addressed and fixed outputs;
    -- floating outputs have no path until built).
    CREATE TABLE DerivationOutputs (
        drv    INTEGER NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
        output TEXT    NOT NULL,
        path   TEXT    NOT NULL,
        PRIMARY KEY (drv, output)
    );
    CREATE INDEX IndexDerivationOutputs ON DerivationOutputs(path);

    -- The derivation's `meta` attribute set as JSON, recorded at
    -- instantiation (licenses and descriptions for SBOMs).
    CREATE TABLE DerivationMeta (
        drv  INTEGER PRIMARY KEY NOT NULL REFERENCES ValidPaths(id) ON DELETE CASCADE,
        json TEXT    NOT NULL
    );
    "#,
];

/// The schema version this build of kiln writes.
pub fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}
