//! Copy a file tree into a temp dir and NAR-hash it, reading the source once.
//!
//! The source is serialised to NAR ([`crate::nar::dump_path`]) on the calling
//! thread, which feeds every byte to the hashers; the same bytes travel
//! through a bounded channel to a second thread that restores them
//! ([`crate::nar::restore`]) into the temp dir. Hashing and writing run on
//! two cores at once, and what is written is exactly what was hashed, even
//! if the source changes meanwhile. The restore side also re-checks the
//! archive (names, order), so a source the NAR format cannot represent
//! fails before anything is registered.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::error::NarError;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::store::StoreError;

/// How many bytes travel between the threads in one message.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: enough to smooth out small files and directory work.
const IN_FLIGHT: usize = 8;

/// The result of copying a tree.
pub struct Ingested {
    /// sha256 of the NAR.
    pub nar_sha256: Hash,
    pub nar_size: u64,
    /// The NAR hash in the extra algorithm, if one was asked for.
    pub extra: Option<Hash>,
}

/// Copy `src` to `dest` (which must not exist), hashing its NAR with sha256
/// and, if given, with `extra_algo` too.
pub fn copy_and_hash(
    src: &Path,
    dest: &Path,
    extra_algo: Option<HashAlgo>,
) -> Result<Ingested, StoreError> {
    let (data_tx, data_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let dest_owned: PathBuf = dest.to_path_buf();
    std::thread::scope(|scope| {
        let restorer = scope.spawn(move || {
            let mut reader = ChunkReader {
                data: data_rx,
                spare: spare_tx,
                current: Vec::new(),
                pos: 0,
            };
            let result = crate::nar::restore(&mut reader, &dest_owned);
            // If restore stopped early, dropping the receiver makes the
            // producer's next send fail instead of blocking forever.
            drop(reader);
            result
        });

        let mut sink = TeeWriter {
            sha256: Hasher::new(HashAlgo::Sha256),
            extra: extra_algo.map(Hasher::new),
            buf: Vec::with_capacity(CHUNK),
            data: Some(data_tx),
            spare: spare_rx,
            receiver_gone: false,
        };
        let dumped = crate::nar::dump_path(src, &mut sink).and_then(|size| {
            sink.flush_chunk()
                .map_err(|e| NarError::io(src, e))
                .map(|()| size)
        });
        // Closing the channel tells the restorer the archive has ended.
        sink.data = None;
        let restored = restorer.join().unwrap_or_else(|_| {
            Err(NarError::io(
                dest,
                io::Error::other("restore thread panicked"),
            ))
        });

        match (dumped, restored) {
            (Ok(size), Ok(_)) => Ok(Ingested {
                nar_sha256: sink.sha256.finish(),
                nar_size: size,
                extra: sink.extra.map(Hasher::finish),
            }),
            // The restorer stopping made the dump fail: its error is the cause.
            (Err(_), Err(restore_err)) if sink.receiver_gone => Err(restore_err.into()),
            (Err(dump_err), _) => Err(StoreError::Source {
                path: src.to_path_buf(),
                source: Box::new(dump_err.into()),
            }),
            (Ok(_), Err(restore_err)) => Err(restore_err.into()),
        }
    })
}

/// Hashes everything written and forwards it in big chunks.
struct TeeWriter {
    sha256: Hasher,
    extra: Option<Hasher>,
    buf: Vec<u8>,
    data: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    receiver_gone: bool,
}

impl TeeWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = match &self.data {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        };
        if !sent {
            self.receiver_gone = true;
            // Not `BrokenPipe`: that kind means "the reader of stdout left".
            return Err(io::Error::other("the restoring side stopped"));
        }
        Ok(())
    }
}

impl Write for TeeWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sha256.update(bytes);
        if let Some(extra) = &mut self.extra {
            extra.update(bytes);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = CHUNK - self.buf.len();
            let take = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == CHUNK {
                self.flush_chunk()?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the chunks a [`TeeWriter`] sends, returning emptied buffers.
struct ChunkReader {
    data: Receiver<Vec<u8>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let Ok(next) = self.data.recv() else {
                return Ok(0); // the writer is done: end of archive
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
