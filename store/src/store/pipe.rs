//! A bounded in-memory pipe of large chunks between two threads.
//!
//! The writing side collects bytes into 1 MiB chunks and sends them; the
//! reading side consumes them as a [`Read`] or chunk by chunk, and sends the
//! emptied buffers back for reuse, so a long stream allocates only a few
//! buffers. Used to let one core read and serialise a tree while the other
//! hashes or writes it.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: enough to smooth out small files and directory work.
const IN_FLIGHT: usize = 8;

/// A connected pair.
pub fn pipe() -> (ChunkWriter, ChunkReader) {
    let (data_tx, data_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    (
        ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            data: Some(data_tx),
            spare: spare_rx,
            reader_gone: false,
        },
        ChunkReader {
            data: data_rx,
            spare: spare_tx,
            current: Vec::new(),
            pos: 0,
        },
    )
}

pub struct ChunkWriter {
    buf: Vec<u8>,
    data: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    reader_gone: bool,
}

impl ChunkWriter {
    fn send_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.data.as_ref().is_some_and(|tx| tx.send(full).is_ok());
        if !sent {
            self.reader_gone = true;
            // Not `BrokenPipe`: to the CLI that kind means "stdout was closed".
            return Err(io::Error::other("the receiving side stopped"));
        }
        Ok(())
    }

    /// Send what is buffered and close the pipe: the reader sees the end.
    pub fn finish(&mut self) -> io::Result<()> {
        let result = self.send_chunk();
        self.data = None;
        result
    }

    /// Whether a write failed because the reader had stopped (then the
    /// reader's own error is the one to report).
    pub fn reader_gone(&self) -> bool {
        self.reader_gone
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (CHUNK - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == CHUNK {
                self.send_chunk()?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct ChunkReader {
    data: Receiver<Vec<u8>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let Ok(next) = self.data.recv() else {
                return Ok(0); // the writer finished: end of stream
            };
            let mut used = std::mem::replace(&mut self.current, next);
            used.clear();
            let _ = self.spare.try_send(used);
            self.pos = 0;
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_across_chunks() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let (mut writer, mut reader) = pipe();
        let received = std::thread::scope(|s| {
            let handle = s.spawn(move || {
                let mut got = Vec::new();
                reader.read_to_end(&mut got).unwrap();
                got
            });
            for piece in data.chunks(1000) {
                writer.write_all(piece).unwrap();
            }
            writer.finish().unwrap();
            handle.join().unwrap()
        });
        assert_eq!(received, data);
    }

    #[test]
    fn a_stopped_reader_fails_the_writer() {
        let (mut writer, reader) = pipe();
        drop(reader);
        let err = writer.write_all(&vec![0; 2 * CHUNK]).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(writer.reader_gone());
    }
}
