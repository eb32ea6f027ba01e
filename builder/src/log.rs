//! Build logs: a sequence of zstd frames per derivation, readable while the
//! build runs and after kiln is killed.
//!
//! Location: `STATE/log/<drv base name>.zst`, e.g.
//! `ROOT/kiln/var/kiln/log/0abc…-hello-1.0.drv.zst`, created (empty) when
//! the build starts; a rebuild replaces it.
//!
//! Format: concatenated zstd frames, which any zstd decoder reads as one
//! stream (`zstd -dc FILE`). The builder's stdout and stderr, interleaved as
//! they arrived, are buffered and written as one independent frame (with
//! content size and checksum) when 256 KiB have gathered or when the oldest
//! buffered byte is one second old, so the file holds everything printed
//! up to about a second ago, whatever kill ends kiln. When the build ends,
//! the rest is written and then the end marker: a skippable frame (magic
//! `0x184D2A5B`, ignored by zstd decoders) holding `kiln-log-end`.
//!
//! A log without the end marker is incomplete: its build is still running
//! or kiln was killed. Reading one yields every complete frame and stops at
//! a truncated last frame (a kill during a write, or a power loss).
//! Nothing is fsynced: a log is a diagnostic, not worth a sync per frame.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

use crate::error::BuildError;

/// How many trailing lines a failure report shows.
pub const TAIL_LINES: usize = 25;

/// Longer lines are shown (not logged) in pieces of this many bytes.
const MAX_LINE: usize = 64 * 1024;

/// A frame is written once this much output is buffered… (Frames are
/// compressed independently: on build-log-like text, 64 KiB frames came out
/// 2–16% larger than one stream, 256 KiB ones 0.5–10%.)
pub const FRAME_SIZE: usize = 256 * 1024;

/// …or once the oldest buffered output is this old.
pub const FRAME_DELAY: Duration = Duration::from_secs(1);

/// Level 3: fast enough to keep up with any builder, logs are small.
const LEVEL: i32 = 3;

/// The end marker: a zstd skippable frame (magic 0x184D2A5B, little
/// endian), its payload length, and the payload.
const END_MARKER: &[u8] = b"\x5B\x2A\x4D\x18\x0C\x00\x00\x00kiln-log-end";

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Where the log of the derivation `drv_base_name` lives.
pub fn log_path(state_dir: &Path, drv_base_name: &str) -> PathBuf {
    state_dir.join("log").join(format!("{drv_base_name}.zst"))
}

/// Streams a build's output into its compressed log, and remembers the
/// last lines for the failure report and the progress view.
pub struct LogWriter {
    path: PathBuf,
    /// `None` once finished.
    file: Option<File>,
    /// Made on the first frame: a silent build needs none.
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Output not yet written as a frame.
    pending: Vec<u8>,
    /// When the oldest byte of `pending` arrived.
    pending_since: Option<Instant>,
    frame: Vec<u8>,
    tail: VecDeque<String>,
    partial: Vec<u8>,
}

impl LogWriter {
    pub fn create(path: PathBuf) -> Result<LogWriter, BuildError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| BuildError::io(dir, e))?;
        }
        let file = File::create(&path).map_err(|e| BuildError::io(&path, e))?;
        Ok(LogWriter {
            path,
            file: Some(file),
            compressor: None,
            pending: Vec::new(),
            pending_since: None,
            frame: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES + 1),
            partial: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append raw output; returns the complete lines it finished, so the
    /// caller can show them (`-L`, progress). Writes a frame when
    /// [`FRAME_SIZE`] bytes are buffered; the caller calls
    /// [`LogWriter::flush_due`] by [`LogWriter::flush_deadline`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<Vec<String>, BuildError> {
        if self.file.is_some() && !bytes.is_empty() {
            if self.pending.is_empty() {
                self.pending_since = Some(Instant::now());
            }
            self.pending.extend_from_slice(bytes);
            if self.pending.len() >= FRAME_SIZE {
                self.write_frame()?;
            }
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

    /// When buffered output must be written as a frame, if any is buffered.
    pub fn flush_deadline(&self) -> Option<Instant> {
        self.pending_since.map(|since| since + FRAME_DELAY)
    }

    /// Write the buffered output as a frame if its deadline is at `now`
    /// or past.
    pub fn flush_due(&mut self, now: Instant) -> Result<(), BuildError> {
        match self.flush_deadline() {
            Some(deadline) if deadline <= now => self.write_frame(),
            _ => Ok(()),
        }
    }

    /// Compress the buffered output into one frame and append it with a
    /// single write, so that a kill leaves whole frames.
    fn write_frame(&mut self) -> Result<(), BuildError> {
        self.pending_since = None;
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let io = |e| BuildError::io(&self.path, e);
        let compressor = match &mut self.compressor {
            Some(c) => c,
            None => {
                let mut c = zstd::bulk::Compressor::new(LEVEL).map_err(io)?;
                c.include_checksum(true).map_err(io)?;
                self.compressor.insert(c)
            }
        };
        self.frame.clear();
        self.frame
            .reserve(zstd::zstd_safe::compress_bound(self.pending.len()));
        compressor
            .compress_to_buffer(&self.pending, &mut self.frame)
            .map_err(io)?;
        file.write_all(&self.frame).map_err(io)?;
        self.pending.clear();
        Ok(())
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

    /// Write the buffered output and the end marker. Also done on drop,
    /// ignoring errors.
    pub fn finish(mut self) -> Result<(), BuildError> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), BuildError> {
        self.write_frame()?;
        if let Some(mut file) = self.file.take() {
            file.write_all(END_MARKER)
                .map_err(|e| BuildError::io(&self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.finish_inner();
    }
}

/// How a log read by [`read_log`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEnd {
    /// The build finished writing it.
    Complete,
    /// No end marker: the build is still running or kiln was killed. All
    /// complete frames were read; a truncated last one was left out.
    Incomplete,
}

/// Decompress the log at `path` into `out`: every complete frame, in order.
pub fn read_log(path: &Path, out: &mut impl Write) -> Result<LogEnd, BuildError> {
    let file = File::open(path).map_err(|e| BuildError::io(path, e))?;
    decode_log(file, out).map_err(|e| match e {
        DecodeError::Read(e) => BuildError::io(path, e),
        DecodeError::Write(e) => BuildError::io(Path::new("<output>"), e),
        DecodeError::Corrupt(offset) => BuildError::LogCorrupt {
            path: path.to_path_buf(),
            offset,
        },
    })
}

enum DecodeError {
    Read(std::io::Error),
    Write(std::io::Error),
    /// The log holds something other than zstd frames at this offset.
    Corrupt(u64),
}

/// Read compressed input a chunk at a time, and decode each frame once it
/// is whole (ours hold at most about 320 KiB, so memory stays small).
fn decode_log(mut input: impl Read, out: &mut impl Write) -> Result<LogEnd, DecodeError> {
    const CHUNK: usize = 128 * 1024;
    let mut decoder = Decoder::new().map_err(DecodeError::Read)?;
    let mut decoded = vec![0u8; CHUNK];
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0; // of the first frame not decoded yet
    let mut offset = 0u64; // of `buf[start]` in the file
    let mut ended = false;
    let mut eof = false;
    loop {
        let rest = &buf[start..];
        // An error means "not a whole frame": more input may complete it.
        if let Ok(len) = zstd::zstd_safe::find_frame_compressed_size(rest) {
            let frame = &rest[..len];
            ended = frame == END_MARKER;
            decode_frame(&mut decoder, frame, &mut decoded, out)
                .map_err(|e| e.or_corrupt_at(offset))?;
            start += len;
            offset += len as u64;
            continue;
        }
        if eof {
            break;
        }
        buf.drain(..start);
        start = 0;
        let len = buf.len();
        buf.resize(len + CHUNK, 0);
        let n = loop {
            match input.read(&mut buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecodeError::Read(e)),
            }
        };
        buf.truncate(len + n);
        eof = n == 0;
    }
    let rest = &buf[start..];
    if rest.is_empty() {
        return Ok(if ended {
            LogEnd::Complete
        } else {
            LogEnd::Incomplete
        });
    }
    // What a kill or power loss leaves: the start of a frame.
    let head = rest.len().min(4);
    let frame_start = rest[..head] == ZSTD_MAGIC[..head] || rest[..head] == END_MARKER[..head];
    if frame_start {
        Ok(LogEnd::Incomplete)
    } else {
        Err(DecodeError::Corrupt(offset))
    }
}

enum FrameError {
    Decode,
    Write(std::io::Error),
}

impl FrameError {
    fn or_corrupt_at(self, offset: u64) -> DecodeError {
        match self {
            FrameError::Decode => DecodeError::Corrupt(offset),
            FrameError::Write(e) => DecodeError::Write(e),
        }
    }
}

/// Decode one whole frame (skippable frames yield nothing).
fn decode_frame(
    decoder: &mut Decoder<'_>,
    frame: &[u8],
    decoded: &mut [u8],
    out: &mut impl Write,
) -> Result<(), FrameError> {
    let mut input = InBuffer::around(frame);
    loop {
        let mut output = OutBuffer::around(&mut *decoded);
        let hint = decoder
            .run(&mut input, &mut output)
            .map_err(|_| FrameError::Decode)?;
        let written = output.pos();
        out.write_all(&decoded[..written])
            .map_err(FrameError::Write)?;
        if hint == 0 {
            return Ok(()); // the frame is decoded and flushed
        }
        if input.pos() == frame.len() && written == 0 {
            // The frame ended without completing: not a zstd frame after
            // all (find_frame_compressed_size only reads block headers).
            decoder.reinit().map_err(|_| FrameError::Decode)?;
            return Err(FrameError::Decode);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(path: &Path) -> (Vec<u8>, LogEnd) {
        let mut back = Vec::new();
        let end = read_log(path, &mut back).unwrap();
        (back, end)
    }

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
        all.extend_from_slice(b"no newline");
        assert_eq!(read_back(&path), (all.clone(), LogEnd::Complete));
        // Any zstd decoder reads the whole log as one stream.
        let file = File::open(&path).unwrap();
        assert_eq!(zstd::decode_all(file).unwrap(), all);
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
        assert_eq!(read_back(&path), (long, LogEnd::Complete));
    }

    /// The output of a build, the same for every run of the test.
    fn text(lines: std::ops::Range<usize>) -> String {
        lines.map(|i| format!("some line {i}\n")).collect()
    }

    #[test]
    fn a_frame_is_written_at_the_size_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.zst");
        let mut w = LogWriter::create(path.clone()).unwrap();
        let first = text(0..(FRAME_SIZE / 16));
        assert!(first.len() < FRAME_SIZE);
        w.write(first.as_bytes()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // Crossing the threshold writes everything buffered, at once.
        let second = text(0..(FRAME_SIZE / 16));
        w.write(second.as_bytes()).unwrap();
        let whole = format!("{first}{second}");
        assert_eq!(read_back(&path), (whole.into(), LogEnd::Incomplete));
        assert!(w.flush_deadline().is_none());
        w.finish().unwrap();
    }

    #[test]
    fn a_frame_is_written_a_second_after_the_first_buffered_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idle.zst");
        let mut w = LogWriter::create(path.clone()).unwrap();
        assert!(w.flush_deadline().is_none());
        let before = Instant::now();
        w.write(b"configuring\n").unwrap();
        let deadline = w.flush_deadline().unwrap();
        assert!(deadline >= before + FRAME_DELAY);
        assert!(deadline <= Instant::now() + FRAME_DELAY);
        // Later output does not push the deadline back.
        w.write(b"checking for cc... ").unwrap();
        assert_eq!(w.flush_deadline(), Some(deadline));
        w.flush_due(deadline - Duration::from_millis(1)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        w.flush_due(deadline).unwrap();
        let expected = b"configuring\nchecking for cc... ".to_vec();
        assert_eq!(read_back(&path), (expected, LogEnd::Incomplete));
        assert!(w.flush_deadline().is_none());
        // A second frame, then the end.
        w.write(b"yes\n").unwrap();
        w.finish().unwrap();
        let expected = b"configuring\nchecking for cc... yes\n".to_vec();
        assert_eq!(read_back(&path), (expected, LogEnd::Complete));
    }

    /// A log of three frames, with the offsets where each ends.
    fn three_frames(path: &Path) -> (Vec<u64>, Vec<String>) {
        let mut w = LogWriter::create(path.to_path_buf()).unwrap();
        let mut ends = Vec::new();
        let mut parts = Vec::new();
        for range in [0..100, 100..300, 300..1000] {
            let part = text(range);
            w.write(part.as_bytes()).unwrap();
            w.flush_due(Instant::now() + FRAME_DELAY).unwrap();
            ends.push(std::fs::metadata(path).unwrap().len());
            parts.push(part);
        }
        w.finish().unwrap();
        (ends, parts)
    }

    #[test]
    fn a_log_cut_inside_its_last_frame_reads_the_complete_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.zst");
        let (ends, parts) = three_frames(&path);
        let bytes = std::fs::read(&path).unwrap();
        // Cut the third frame anywhere: in its header, in a block, in its
        // checksum.
        for cut in [
            ends[1] + 1,
            ends[1] + 5,
            (ends[1] + ends[2]) / 2,
            ends[2] - 1,
        ] {
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();
            let expected = format!("{}{}", parts[0], parts[1]);
            assert_eq!(
                read_back(&path),
                (expected.into(), LogEnd::Incomplete),
                "cut at {cut}"
            );
        }
        // Cut between frames, or inside the end marker.
        std::fs::write(&path, &bytes[..ends[2] as usize]).unwrap();
        let all = parts.concat();
        assert_eq!(read_back(&path), (all.clone().into(), LogEnd::Incomplete));
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(read_back(&path), (all.into(), LogEnd::Incomplete));
    }

    #[test]
    fn garbage_is_an_error_not_an_incomplete_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.zst");
        let (ends, _) = three_frames(&path);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ends[0] as usize..].fill(b'x');
        std::fs::write(&path, &bytes).unwrap();
        let err = read_log(&path, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, BuildError::LogCorrupt { offset, .. } if offset == ends[0]),
            "{err}"
        );
    }

    #[test]
    fn empty_logs() {
        let dir = tempfile::tempdir().unwrap();
        // A silent build: nothing but the end marker.
        let path = dir.path().join("silent.zst");
        LogWriter::create(path.clone()).unwrap().finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), END_MARKER);
        assert_eq!(read_back(&path), (Vec::new(), LogEnd::Complete));
        let file = File::open(&path).unwrap();
        assert!(zstd::decode_all(file).unwrap().is_empty());
        // A build killed before it printed anything.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read_back(&path), (Vec::new(), LogEnd::Incomplete));
    }

    #[test]
    fn a_dropped_writer_finishes_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dropped.zst");
        let mut w = LogWriter::create(path.clone()).unwrap();
        w.write(b"last words\n").unwrap();
        drop(w);
        assert_eq!(
            read_back(&path),
            (b"last words\n".to_vec(), LogEnd::Complete)
        );
    }
}
