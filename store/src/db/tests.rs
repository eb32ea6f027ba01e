use super::*;

fn row(path: &str, refs: &[&str]) -> PathRow {
    PathRow {
        path: path.to_string(),
        nar_hash: format!("sha256:{}", "0".repeat(52)),
        nar_size: 100 + path.len() as u64,
        deriver: None,
        registration_time: 1_700_000_000,
        ca: None,
        signatures: Vec::new(),
        references: refs.iter().map(|s| s.to_string()).collect(),
    }
}

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("db/db.sqlite")).unwrap();
    (dir, db)
}

const A: &str = "/kiln/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
const B: &str = "/kiln/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b";
const C: &str = "/kiln/store/cccccccccccccccccccccccccccccccc-c";

#[test]
fn fresh_database_has_current_schema_and_wal() {
    let (dir, db) = open();
    assert_eq!(db.schema_version().unwrap(), schema::current_version());
    let mode: String = db
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = db
        .conn()
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    drop(db);
    // Reopening does not re-run migrations (they would fail: tables exist).
    let again = Database::open(&dir.path().join("db/db.sqlite")).unwrap();
    assert_eq!(again.schema_version().unwrap(), schema::current_version());
}

#[test]
fn newer_schema_is_refused() {
    let (dir, db) = open();
    db.conn().pragma_update(None, "user_version", 999).unwrap();
    drop(db);
    let err = Database::open(&dir.path().join("db/db.sqlite"))
        .err()
        .expect("must refuse");
    assert!(
        matches!(err, DbError::NewerSchema { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn register_and_query_graph() {
    let (_dir, db) = open();
    // C is registered with B in one batch; B refers to itself and to C.
    db.register(&[row(C, &[]), row(B, &[B, C])], &[]).unwrap();
    db.register(&[row(A, &[B])], &[]).unwrap();

    assert!(db.is_valid(A).unwrap());
    let info = db.path_row(B).unwrap().unwrap();
    assert_eq!(info.references, vec![B.to_string(), C.to_string()]);
    assert_eq!(db.referrers(C).unwrap(), vec![B.to_string()]);
    assert_eq!(db.referrers(B).unwrap(), vec![A.to_string(), B.to_string()]);

    let closure = db.closure(&[A.to_string()]).unwrap();
    let paths: Vec<&str> = closure.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, vec![A, B, C]);
    let closure_c = db.closure(&[C.to_string()]).unwrap();
    assert_eq!(closure_c.len(), 1);
    assert!(
        db.closure(&["/kiln/store/nothing".to_string()])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unknown_reference_rolls_back_the_whole_batch() {
    let (_dir, db) = open();
    let err = db.register(&[row(C, &[]), row(A, &[B])], &[]).unwrap_err();
    assert!(matches!(err, DbError::UnknownReference { .. }), "{err}");
    assert!(
        !db.is_valid(C).unwrap(),
        "C must not be valid after rollback"
    );
    assert!(!db.is_valid(A).unwrap());
}

#[test]
fn referenced_paths_cannot_be_deleted_but_referrers_cascade() {
    let (_dir, db) = open();
    db.register(&[row(C, &[]), row(B, &[C])], &[]).unwrap();
    let conn = db.conn();
    assert!(
        conn.execute("DELETE FROM ValidPaths WHERE path = ?1", [C])
            .is_err()
    );
    conn.execute("DELETE FROM ValidPaths WHERE path = ?1", [B])
        .unwrap();
    let edges: i64 = conn
        .query_row("SELECT count(*) FROM Refs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(edges, 0);
}

#[test]
fn reregistering_updates_and_keeps_deriver() {
    let (_dir, db) = open();
    let mut first = row(A, &[]);
    first.deriver = Some("/kiln/store/dddddddddddddddddddddddddddddddd-a.drv".into());
    first.signatures = vec!["k1:sig".into()];
    db.register(&[first], &[]).unwrap();
    let mut second = row(A, &[]);
    second.nar_size = 7;
    db.register(&[second], &[]).unwrap();
    let got = db.path_row(A).unwrap().unwrap();
    assert_eq!(got.nar_size, 7);
    assert!(got.deriver.is_some());
    assert!(got.signatures.is_empty());
}

#[test]
fn derivation_outputs_and_meta() {
    let (_dir, db) = open();
    let drv = "/kiln/store/dddddddddddddddddddddddddddddddd-a.drv";
    db.register(
        &[row(drv, &[])],
        &[DrvOutputRow {
            drv: drv.into(),
            output: "out".into(),
            path: A.into(),
        }],
    )
    .unwrap();
    assert_eq!(
        db.derivation_outputs(drv).unwrap(),
        vec![("out".to_string(), A.to_string())]
    );
    assert_eq!(db.derivers_of_output(A).unwrap(), vec![drv.to_string()]);
    assert_eq!(db.derivation_meta(drv).unwrap(), None);
    db.set_derivation_meta(drv, r#"{"license":"mit"}"#).unwrap();
    assert_eq!(
        db.derivation_meta(drv).unwrap().as_deref(),
        Some(r#"{"license":"mit"}"#)
    );
    assert!(matches!(
        db.set_derivation_meta(A, "{}"),
        Err(DbError::NotValid { .. })
    ));
}

#[test]
fn json_array_escapes() {
    assert_eq!(
        json_string_array(&["a\"b".into(), "c\\d".into(), "\n".into()]),
        r#"["a\"b","c\\d","\u000a"]"#
    );
}

#[test]
fn valid_among_answers_each_path_in_order() {
    let (_dir, db) = open();
    db.register(&[row(A, &[]), row(C, &[A])], &[]).unwrap();
    let asked = [B, A, C, B].map(String::from);
    assert_eq!(db.valid_among(&asked).unwrap(), [false, true, true, false]);
    assert!(db.valid_among(&[]).unwrap().is_empty());
}
