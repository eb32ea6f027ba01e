//! NAR hashing with two threads: one walks the tree and reads files into
//! blocks, the other hashes the blocks. Reading (system calls, copying from
//! the page cache) then overlaps with hashing instead of adding to it, which
//! is what lets `hash_path` keep pace with hashing a NAR file directly.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use crate::error::NarError;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::nar::writer::{Output, read_file_part, write_nar};

/// Block size: large enough to amortise channel hand-offs, small enough
/// that the blocks in flight stay in the CPU caches.
const BLOCK: usize = 256 * 1024;
/// Filled blocks waiting for the hasher.
const IN_FLIGHT: usize = 4;

/// Inputs up to this size (a single file or symlink) are hashed on the
/// calling thread: for them the reader thread costs more (spawn, hand-offs)
/// than the hashing it overlaps.
pub const SMALL_INPUT: u64 = 1 << 20;

/// The NAR hash and NAR size of `path`, as `nix-hash --type ALGO PATH` and
/// `nix-store --dump PATH | wc -c` give them. This is kiln's one NAR
/// hasher: registration, verification, `kiln hash path` and evaluation all
/// use it.
pub fn hash_path(path: &Path, algo: HashAlgo) -> Result<(Hash, u64), NarError> {
    let small = std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_symlink() || (m.is_file() && m.len() <= SMALL_INPUT));
    if small {
        let mut hasher = Hasher::new(algo);
        let size = crate::nar::dump_path(path, &mut hasher)?;
        return Ok((hasher.finish(), size));
    }
    hash_tree(path, algo)
}

/// [`hash_path`] with the reading on one thread and the hashing on another.
fn hash_tree(path: &Path, algo: HashAlgo) -> Result<(Hash, u64), NarError> {
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut out = Blocks {
                full: full_tx,
                free: free_rx,
                block: vec![0; BLOCK],
                filled: 0,
            };
            let size = write_nar(path, &mut out)?;
            out.send()?;
            Ok::<u64, NarError>(size)
        });
        let mut hasher = Hasher::new(algo);
        // Ends when the reader drops its sender: finished or failed.
        for (block, filled) in full_rx {
            hasher.update(&block[..filled]);
            // The reader may have finished already; then the block is dropped.
            let _ = free_tx.send(block);
        }
        match reader.join() {
            Ok(size) => Ok((hasher.finish(), size?)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The NAR hash (sha256) and NAR size of a single non-executable regular
/// file with `contents`, computed from the bytes without a file:
/// `nix-archive-1 ( type regular contents BYTES )`.
pub fn hash_regular_bytes(contents: &[u8]) -> (Hash, u64) {
    use crate::nar::wire;
    let mut hasher = Hasher::new(HashAlgo::Sha256);
    let mut size = 0;
    for token in [
        wire::MAGIC,
        wire::OPEN,
        wire::TYPE,
        wire::REGULAR,
        wire::CONTENTS,
        contents,
        wire::CLOSE,
    ] {
        // Writing to a hasher cannot fail.
        size += wire::write_str(&mut hasher, token).unwrap_or(0);
    }
    (hasher.finish(), size)
}

/// An [`Output`] that fills fixed-size blocks and hands them to the hasher,
/// reusing the blocks it gets back.
struct Blocks {
    full: SyncSender<(Vec<u8>, usize)>,
    free: Receiver<Vec<u8>>,
    block: Vec<u8>,
    filled: usize,
}

impl Blocks {
    /// Hands the current block over (if it holds anything) and starts another.
    fn send(&mut self) -> Result<(), NarError> {
        if self.filled == 0 {
            return Ok(());
        }
        let next = self.free.try_recv().unwrap_or_else(|_| vec![0; BLOCK]);
        let block = std::mem::replace(&mut self.block, next);
        let filled = std::mem::take(&mut self.filled);
        self.full.send((block, filled)).map_err(|_| {
            NarError::Write(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the hashing thread stopped",
            ))
        })
    }
}

impl Output for Blocks {
    fn put(&mut self, mut bytes: &[u8]) -> Result<(), NarError> {
        while !bytes.is_empty() {
            if self.filled == BLOCK {
                self.send()?;
            }
            let n = bytes.len().min(BLOCK - self.filled);
            self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn put_file(&mut self, file: &mut File, path: &Path, len: u64) -> Result<(), NarError> {
        let mut remaining = len;
        while remaining > 0 {
            if self.filled == BLOCK {
                self.send()?;
            }
            let want = remaining.min((BLOCK - self.filled) as u64) as usize;
            let got = read_file_part(file, path, &mut self.block[self.filled..self.filled + want])?;
            self.filled += got;
            remaining -= got as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_hash_equals_hash_of_the_dump() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir(&root).unwrap();
        // Sizes around the block size, so files straddle block boundaries.
        for (i, size) in [0, 1, 7, BLOCK - 3, BLOCK, BLOCK + 5, 3 * BLOCK + 11]
            .iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..*size).map(|j| (j * 31 + i) as u8).collect();
            std::fs::write(root.join(format!("f{i}")), data).unwrap();
        }
        let mut nar = Vec::new();
        let size = crate::nar::dump_path(&root, &mut nar).unwrap();
        for algo in HashAlgo::ALL {
            let (hash, hashed_size) = hash_path(&root, algo).unwrap();
            assert_eq!(hashed_size, size);
            assert_eq!(hash, Hash::digest(algo, &nar));
        }
    }

    #[test]
    fn errors_come_back_from_the_reading_thread() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            hash_path(&missing, HashAlgo::Sha256),
            Err(NarError::Io { .. })
        ));
    }

    /// Small inputs take the one-thread path, large ones the two-thread
    /// one: both must give the same hash as each other, for every shape.
    #[test]
    fn the_small_input_path_hashes_like_the_threaded_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"node-1\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("file", &link).unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![7u8; (SMALL_INPUT + 1) as usize]).unwrap();
        for path in [&file, &link, &big, &dir.path().to_path_buf()] {
            for algo in [HashAlgo::Sha256, HashAlgo::Sha1, HashAlgo::Sha512] {
                assert_eq!(
                    hash_path(path, algo).unwrap(),
                    hash_tree(path, algo).unwrap(),
                    "{} {algo:?}",
                    path.display()
                );
            }
        }
        assert!(hash_path(&dir.path().join("missing"), HashAlgo::Sha256).is_err());
    }
}
