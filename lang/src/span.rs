//! Byte spans into the files of a [`SourceMap`](crate::source::SourceMap).
//!
//! A [`Span`] is a half-open byte range `start..end` inside one file, named
//! by a [`FileId`]. It is `Copy` and 12 bytes, so every AST node and every
//! evaluation error can carry one; line and column are computed only when a
//! diagnostic is rendered.

/// Names one file held by a [`SourceMap`](crate::source::SourceMap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A half-open byte range `start..end` in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: u32, end: u32) -> Span {
        Span { file, start, end }
    }

    /// The smallest span covering both (both must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// An empty span at the start of this one.
    pub fn start_point(self) -> Span {
        Span {
            end: self.start,
            ..self
        }
    }

    pub fn len(self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }
}
