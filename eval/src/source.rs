//! Every source text of one evaluation (the lang crate's source map) and
//! the position queries the evaluator needs.

use std::path::Path;

use kiln_lang::source::SourceMap;
use kiln_lang::span::FileId;

use crate::span::Span;

#[derive(Debug, Default)]
pub struct Sources {
    pub map: SourceMap,
}

impl Sources {
    pub fn add(&mut self, name: String, path: Option<std::path::PathBuf>, text: String) -> FileId {
        self.map.add(name, path, text)
    }

    /// (file name, line, column) of the start of `span`.
    pub fn line_column(&self, span: Span) -> (String, u32, u32) {
        match self.map.get(span.file) {
            Some(file) => {
                let (line, col) = file.line_col(span.start);
                (file.name().to_owned(), line, col)
            }
            None => ("«unknown»".to_owned(), 0, 0),
        }
    }

    /// The path of the file a span is in (none for `-E` text).
    pub fn path_of(&self, span: Span) -> Option<&Path> {
        self.map.get(span.file).and_then(|f| f.path())
    }
}
