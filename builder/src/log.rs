//! Build logs: one zstd stream per derivation.
//!
//! Location: `STATE/log/<drv base name>.zst`, e.g.
//! `ROOT/kiln/var/kiln/log/0abc…-hello-1.0.drv.zst`. The file holds the
//! builder's stdout and stderr interleaved as they arrived, compressed while
//! the build streams. A rebuild replaces the log. A log cut short (kiln
//! killed mid-build) still reads up to where it stopped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::BuildError;

/// How many trailing lines a failure report shows.
pub const TAIL_LINES: usize = 25;

/// Longer lines are shown (not logged) in pieces of this many bytes.
const MAX_LINE: usize = 64 * 1024;

/// Where the log of the derivation `drv_base_name` lives.
pub fn log_path(state_dir: &Path, drv_base_name: &str) -> PathBuf {
    state_dir.join("log").join(format!("{drv_base_name}.zst"))
}

/// Streams a build's output into its compressed log, and remembers the
/// last lines for the failure report and the progress view.
pub struct LogWriter {
    path: PathBuf,
    encoder: Option<zstd::Encoder<'static, File>>,
    tail: VecDeque<String>,
    partial: Vec<u8>,
}

impl LogWriter {
    pub fn create(path: PathBuf) -> Result<LogWriter, BuildError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| BuildError::io(dir, e))?;
        }
        let file = File::create(&path).map_err(|e| BuildError::io(&path, e))?;
        // Level 3: fast enough to keep up with any builder, logs are small.
        let encoder = zstd::Encoder::new(file, 3).map_err(|e| BuildError::io(&path, e))?;
        Ok(LogWriter {
            path,
            encoder: Some(encoder),
            tail: VecDeque::with_capacity(TAIL_LINES + 1),
            partial: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append raw output; returns the complete lines it finished, so the
    /// caller can show them (`-L`, progress).
    pub fn write(&mut self, bytes: &[u8]) -> Result<Vec<String>, BuildError> {
        if let Some(enc) = self.encoder.as_mut() {
            enc.write_all(bytes)
                .map_err(|e| BuildError::io(&self.path, e))?;
        }
        let mut lines = Vec::new();
        for &b in bytes {
            // A very long line is cut so that memory stays bounded.
            if b == b'\n' || self.partial.len() >= MAX_LINE {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.push_tail(line.clone());
                lines.push(line);
            }
            if b != b'\n' {
                self.partial.push(b);
            }
        }
        Ok(lines)
    }

    fn push_tail(&mut self, line: String) {
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The last lines written (at most [`TAIL_LINES`]), including an
    /// unterminated last line.
    pub fn tail(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.tail.iter().cloned().collect();
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
            if lines.len() > TAIL_LINES {
                lines.remove(0);
            }
        }
        lines
    }

    /// Finish the zstd stream. Also done on drop, ignoring errors.
    pub fn finish(mut self) -> Result<(), BuildError> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), BuildError> {
        if let Some(enc) = self.encoder.take() {
            let file = enc.finish().map_err(|e| BuildError::io(&self.path, e))?;
            drop(file);
        }
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.finish_inner();
    }
}

/// Decompress a log into `out`. A truncated stream yields what it holds and
/// then [`BuildError::LogTruncated`].
pub fn read_log(path: &Path, out: &mut impl Write) -> Result<(), BuildError> {
    let file = File::open(path).map_err(|e| BuildError::io(path, e))?;
    let mut decoder =
        zstd::Decoder::new(BufReader::new(file)).map_err(|e| BuildError::io(path, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out
                .write_all(&buf[..n])
                .map_err(|e| BuildError::io(Path::new("<output>"), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(BuildError::LogTruncated(path.to_path_buf()));
            }
            Err(e) => return Err(BuildError::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path(), "abc-x.drv");
        let mut w = LogWriter::create(path.clone()).unwrap();
        let mut all = Vec::new();
        for i in 0..40 {
            let chunk = format!("line {i}\n");
            all.extend_from_slice(chunk.as_bytes());
            // Split a line across two writes.
            let (a, b) = chunk.as_bytes().split_at(3);
            assert!(w.write(a).unwrap().is_empty());
            assert_eq!(w.write(b).unwrap(), vec![format!("line {i}")]);
        }
        w.write(b"no newline").unwrap();
        let tail = w.tail();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.last().unwrap(), "no newline");
        assert_eq!(tail[0], "line 16");
        w.finish().unwrap();
        assert!(path.ends_with("log/abc-x.drv.zst"));
        let mut back = Vec::new();
        read_log(&path, &mut back).unwrap();
        all.extend_from_slice(b"no newline");
        assert_eq!(back, all);
    }

    #[test]
    fn very_long_lines_are_cut_for_display_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.zst");
        let mut w = LogWriter::create(path.clone()).unwrap();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let lines = w.write(&long).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE));
        w.finish().unwrap();
        let mut back = Vec::new();
        read_log(&path, &mut back).unwrap();
        assert_eq!(back, long);
    }

    #[test]
    fn truncated_log_reads_partially() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zst");
        let mut w = LogWriter::create(path.clone()).unwrap();
        let text: String = (0..2000).map(|i| format!("some line {i}\n")).collect();
        w.write(text.as_bytes()).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let mut back = Vec::new();
        let err = read_log(&path, &mut back).unwrap_err();
        assert!(matches!(err, BuildError::LogTruncated(_)));
    }
}
