//! Reading a tree once: copy it into a temp dir while NAR-hashing it, or
//! NAR-hash it with reading and hashing on two cores.
//!
//! The source is serialised to NAR ([`crate::nar::dump_path`]) on the
//! calling thread; the bytes travel through a [`pipe`] to a second thread
//! that restores them ([`crate::nar::restore`]) or hashes them. For a copy,
//! what is written is exactly what was hashed, even if the source changes
//! meanwhile, and the restore side re-checks the archive (names, order), so
//! a source the NAR format cannot represent fails before anything is
//! registered.

use std::io::{self, Write};
use std::path::Path;

use crate::error::NarError;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::store::StoreError;
use crate::store::pipe::{ChunkWriter, pipe};

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
    let (writer, mut reader) = pipe();
    let (copy_done, wait_for_copy) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        if let Some(dir) = dest.parent() {
            scope.spawn(move || write_back_while_copying(dir, wait_for_copy));
        }
        let restorer = scope.spawn(move || {
            let result = crate::nar::restore(&mut reader, dest);
            drop(copy_done);
            result
        });
        let mut sink = HashingWriter {
            sha256: Hasher::new(HashAlgo::Sha256),
            extra: extra_algo.map(Hasher::new),
            pipe: writer,
        };
        let dumped = crate::nar::dump_path(src, &mut sink);
        let finished = sink.pipe.finish();
        let restored = restorer.join().unwrap_or_else(|_| {
            Err(NarError::io(
                dest,
                io::Error::other("restore thread panicked"),
            ))
        });
        match (dumped, finished, restored) {
            (Ok(size), Ok(()), Ok(_)) => Ok(Ingested {
                nar_sha256: sink.sha256.finish(),
                nar_size: size,
                extra: sink.extra.map(Hasher::finish),
            }),
            // The restorer stopping made the dump fail: its error is the cause.
            (_, _, Err(restore_err)) if sink.pipe.reader_gone() => Err(restore_err.into()),
            (Err(dump_err), _, _) => Err(StoreError::Source {
                path: src.to_path_buf(),
                source: Box::new(dump_err.into()),
            }),
            (Ok(_), Err(io_err), _) => Err(StoreError::Io {
                action: "copying",
                path: src.to_path_buf(),
                source: io_err,
            }),
            (Ok(_), Ok(()), Err(restore_err)) => Err(restore_err.into()),
        }
    })
}

/// How often a long copy pushes its data towards the disk.
const WRITE_BACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// While a copy runs longer than [`WRITE_BACK_INTERVAL`], repeatedly write
/// back the file system's dirty data (`syncfs`), so the disk works while the
/// copy goes on and the final sync before registration has little left to
/// wait for. Short copies never get here. Errors are ignored: the final
/// sync reports them.
fn write_back_while_copying(dir: &Path, copy_done: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    while let Err(RecvTimeoutError::Timeout) = copy_done.recv_timeout(WRITE_BACK_INTERVAL) {
        let _ = crate::durable::write_back_file_system(dir);
    }
}

/// Hashes everything written, then forwards it down the pipe.
struct HashingWriter {
    sha256: Hasher,
    extra: Option<Hasher>,
    pipe: ChunkWriter,
}

impl Write for HashingWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sha256.update(bytes);
        if let Some(extra) = &mut self.extra {
            extra.update(bytes);
        }
        self.pipe.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
