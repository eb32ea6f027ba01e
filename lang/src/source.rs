//! The source map: every file (or `-E` expression, or stdin) that was parsed.
//!
//! Files are added once and never removed; a [`FileId`] is the index of the
//! file. Each file keeps its display name, the path it was read from (if
//! any; the evaluator resolves relative path literals against its parent
//! directory), and its text. Line starts are computed the first time a
//! position in that file is looked up, so parsing never pays for them.
//!
//! Lines and columns are 1-based. Columns count characters (not bytes), so a
//! caret lines up under non-ASCII text.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use crate::span::{FileId, Span};

/// One source text.
#[derive(Debug)]
pub struct SourceFile {
    name: String,
    path: Option<PathBuf>,
    text: String,
    line_starts: OnceCell<Vec<u32>>,
}

impl SourceFile {
    /// What diagnostics call this file (`/x/default.nix`, `(string)`, `(stdin)`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file this text was read from; `None` for `-E` and stdin.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    fn line_starts(&self) -> &[u32] {
        self.line_starts.get_or_init(|| {
            let mut starts = vec![0u32];
            starts.extend(
                self.text
                    .bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i as u32 + 1),
            );
            starts
        })
    }

    /// 1-based line and column of a byte offset (clamped to the text).
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let offset = (offset as usize).min(self.text.len());
        let starts = self.line_starts();
        let line = match starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = starts[line] as usize;
        let mut col_end = offset;
        while !self.text.is_char_boundary(col_end) {
            col_end -= 1;
        }
        let col = self.text[line_start..col_end].chars().count() + 1;
        (line as u32 + 1, col as u32)
    }

    /// The text of a 1-based line, without its line terminator.
    pub fn line_text(&self, line: u32) -> &str {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.saturating_sub(1) as usize) else {
            return "";
        };
        let end = starts
            .get(line as usize)
            .map(|&e| e as usize)
            .unwrap_or(self.text.len());
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }

    /// How many lines the text has (a final line without `\n` counts).
    pub fn line_count(&self) -> u32 {
        self.line_starts().len() as u32
    }
}

/// All source texts of one run, addressed by [`FileId`].
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a text. `path` is where it was read from, if anywhere.
    pub fn add(&mut self, name: impl Into<String>, path: Option<PathBuf>, text: String) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            name: name.into(),
            path,
            text,
            line_starts: OnceCell::new(),
        });
        id
    }

    /// Panics only on an id from another map (a programming error).
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn name(&self, id: FileId) -> &str {
        self.file(id).name()
    }

    pub fn text(&self, id: FileId) -> &str {
        self.file(id).text()
    }

    /// The source text a span covers (empty if out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text().get(span.start as usize..span.end as usize))
            .unwrap_or("")
    }

    /// `name:line:column` of the start of a span.
    pub fn describe(&self, span: Span) -> String {
        match self.get(span.file) {
            Some(f) => {
                let (line, col) = f.line_col(span.start);
                format!("{}:{}:{}", f.name(), line, col)
            }
            None => "«unknown»".to_string(),
        }
    }

    /// 1-based (line, column) of the start of a span.
    pub fn line_col(&self, span: Span) -> (u32, u32) {
        self.get(span.file)
            .map(|f| f.line_col(span.start))
            .unwrap_or((0, 0))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns() {
        let mut map = SourceMap::new();
        let id = map.add("t.nix", None, "ab\ncdé\n\nx".to_string());
        let f = map.file(id);
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(1), (1, 2));
        assert_eq!(f.line_col(3), (2, 1));
        // é is two bytes; the offset after it is column 4.
        assert_eq!(f.line_col(7), (2, 4));
        assert_eq!(f.line_col(9), (4, 1));
        assert_eq!(f.line_text(2), "cdé");
        assert_eq!(f.line_text(3), "");
        assert_eq!(f.line_count(), 4);
        assert_eq!(map.describe(Span::new(id, 3, 4)), "t.nix:2:1");
    }

    #[test]
    fn crlf_lines_are_trimmed() {
        let mut map = SourceMap::new();
        let id = map.add("t", None, "a\r\nb".to_string());
        assert_eq!(map.file(id).line_text(1), "a");
        assert_eq!(map.file(id).line_col(3), (2, 1));
    }
}
