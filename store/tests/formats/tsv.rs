//! Reading the tab-separated vector files and reporting failing rows.

use std::path::PathBuf;

/// `store/tests/vectors/<rel>`.
pub fn vector_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel)
}

/// One data row: its 1-based line number and its columns.
pub struct Row {
    pub line: usize,
    pub cols: Vec<String>,
}

/// Reads a TSV vector file, skipping the header, checking that every row
/// has as many columns as the header.
pub fn read_rows(rel: &str) -> Vec<Row> {
    let path = vector_path(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()));
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().expect("vector file has a header");
    let width = header.split('\t').count();
    let rows: Vec<Row> = lines
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            let cols: Vec<String> = line.split('\t').map(str::to_owned).collect();
            assert_eq!(cols.len(), width, "{rel}:{}: wrong column count", index + 1);
            Row {
                line: index + 1,
                cols,
            }
        })
        .collect();
    assert!(!rows.is_empty(), "{rel} has no rows");
    rows
}

/// Collects failures so one run reports every bad row, then fails once.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    pub fn push(&mut self, what: String) {
        self.0.push(what);
    }

    pub fn assert_none(self, checked: usize) {
        assert!(
            self.0.is_empty(),
            "{} of {checked} checks failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}
