//! A NAR from the wire into a temp dir of the store, hashed while it
//! streams past. The NAR reader enforces the grammar (no `..`, `/`, empty
//! or repeated names: nothing is created outside the temp dir) and reads
//! exactly the NAR's bytes, so the stream goes on right after it.

use std::io::{self, Read};

use kiln_store::store::Store;
use kiln_store::store::temp::TempDir;
use kiln_store::{Hash, HashAlgo, Hasher, NarError};

/// A NAR unpacked at `dir/nar`, with the SHA-256 and size of its bytes.
pub struct Received {
    pub dir: TempDir,
    pub nar_hash: Hash,
    pub nar_size: u64,
}

impl Received {
    /// Where the tree is (what `Staged::Tree` takes).
    pub fn tree(&self) -> std::path::PathBuf {
        self.dir.path().join("nar")
    }
}

/// Why a NAR could not be received.
#[derive(Debug)]
pub enum ReceiveError {
    /// The stream failed (EOF, broken pipe, timeout).
    Io(io::Error),
    /// The bytes are not a valid NAR.
    Nar(NarError),
    /// The store could not make a temp dir.
    Store(kiln_store::store::StoreError),
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveError::Io(e) => write!(f, "{e}"),
            ReceiveError::Nar(e) => write!(f, "not a valid NAR: {e}"),
            ReceiveError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Reads one NAR from `input` into a new temp dir of `store`.
pub fn receive_nar(store: &Store, input: &mut impl Read) -> Result<Received, ReceiveError> {
    let dir = store.temp_dir().map_err(ReceiveError::Store)?;
    let mut hashing = HashingReader {
        inner: input,
        hasher: Hasher::new(HashAlgo::Sha256),
        count: 0,
        error: None,
        eof: false,
    };
    let target = dir.path().join("nar");
    let result = kiln_store::nar::restore(&mut hashing, &target);
    // An I/O failure of the stream is the connection's, not the NAR's.
    if let Some(e) = hashing.error.take() {
        return Err(ReceiveError::Io(e));
    }
    if result.is_err() && hashing.eof {
        return Err(ReceiveError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the stream ended inside a NAR, after {} bytes",
                hashing.count
            ),
        )));
    }
    result.map_err(ReceiveError::Nar)?;
    Ok(Received {
        dir,
        nar_hash: hashing.hasher.finish(),
        nar_size: hashing.count,
    })
}

/// Hashes and counts what is read through it; remembers a read error.
struct HashingReader<'a, R> {
    inner: &'a mut R,
    hasher: Hasher,
    count: u64,
    error: Option<io::Error>,
    eof: bool,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if n == 0 && !buf.is_empty() {
                    self.eof = true;
                }
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}
