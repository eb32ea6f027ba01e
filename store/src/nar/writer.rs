//! Serialising a file tree to a NAR, streaming (see [`super::wire`] for the
//! format). File contents are copied in large chunks through one reused
//! buffer and never held whole in memory.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::NarError;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::nar::wire;

/// Size of the chunks file contents are read in: large enough to make the
/// per-read cost negligible, small enough to stay in the CPU cache while it
/// is hashed.
const CHUNK: usize = 256 * 1024;
/// Buffer for the small token writes between file contents.
const TOKEN_BUFFER: usize = 64 * 1024;

/// Writes the NAR of `path` (not following a symlink at `path` itself) to
/// `out` and returns its size in bytes. Pass `out` unbuffered or buffered:
/// small writes are buffered here, large ones go straight through.
pub fn dump_path(path: &Path, out: &mut impl Write) -> Result<u64, NarError> {
    let mut writer = NarWriter {
        out: BufWriter::with_capacity(TOKEN_BUFFER, out),
        written: 0,
        chunk: vec![0; CHUNK],
    };
    writer.token(wire::MAGIC)?;
    writer.tree(path)?;
    writer.out.flush().map_err(NarError::Write)?;
    Ok(writer.written)
}

/// The NAR hash and NAR size of `path`, as `nix-hash --type ALGO PATH` and
/// `nix-store --dump PATH | wc -c` give them.
pub fn hash_path(path: &Path, algo: HashAlgo) -> Result<(Hash, u64), NarError> {
    let mut hasher = Hasher::new(algo);
    let size = dump_path(path, &mut hasher)?;
    Ok((hasher.finish(), size))
}

struct NarWriter<W: Write> {
    out: BufWriter<W>,
    written: u64,
    chunk: Vec<u8>,
}

impl<W: Write> NarWriter<W> {
    fn token(&mut self, bytes: &[u8]) -> Result<(), NarError> {
        self.written += wire::write_str(&mut self.out, bytes).map_err(NarError::Write)?;
        Ok(())
    }

    /// Writes the node at `root` and everything below it. Iterative, with an
    /// explicit stack of open directories, so deep trees cannot overflow the
    /// call stack.
    fn tree(&mut self, root: &Path) -> Result<(), NarError> {
        let mut open_dirs: Vec<(PathBuf, std::vec::IntoIter<OsString>)> = Vec::new();
        if let Some(entries) = self.begin_node(root)? {
            open_dirs.push((root.to_owned(), entries.into_iter()));
        }
        while let Some((dir, entries)) = open_dirs.last_mut() {
            let Some(name) = entries.next() else {
                open_dirs.pop();
                self.token(wire::CLOSE)?;
                if !open_dirs.is_empty() {
                    self.token(wire::CLOSE)?; // closes the entry holding the directory
                }
                continue;
            };
            let child = dir.join(&name);
            self.token(wire::ENTRY)?;
            self.token(wire::OPEN)?;
            self.token(wire::NAME)?;
            self.token(name.as_bytes())?;
            self.token(wire::NODE)?;
            match self.begin_node(&child)? {
                Some(entries) => open_dirs.push((child, entries.into_iter())),
                None => self.token(wire::CLOSE)?,
            }
        }
        Ok(())
    }

    /// Writes a whole regular file or symlink node and returns `None`, or
    /// writes the start of a directory node and returns its sorted entries.
    fn begin_node(&mut self, path: &Path) -> Result<Option<Vec<OsString>>, NarError> {
        let meta = fs::symlink_metadata(path).map_err(|e| NarError::io(path, e))?;
        let file_type = meta.file_type();
        self.token(wire::OPEN)?;
        self.token(wire::TYPE)?;
        if file_type.is_file() {
            self.token(wire::REGULAR)?;
            // Nix records only the owner-executable bit.
            if meta.mode() & 0o100 != 0 {
                self.token(wire::EXECUTABLE)?;
                self.token(b"")?;
            }
            self.token(wire::CONTENTS)?;
            self.contents(path, meta.len())?;
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|e| NarError::io(path, e))?;
            self.token(wire::SYMLINK)?;
            self.token(wire::TARGET)?;
            self.token(target.as_os_str().as_bytes())?;
        } else if file_type.is_dir() {
            self.token(wire::DIRECTORY)?;
            return Ok(Some(sorted_entries(path)?));
        } else {
            return Err(NarError::UnsupportedFileType {
                path: path.to_owned(),
                kind: describe(file_type),
            });
        }
        self.token(wire::CLOSE)?;
        Ok(None)
    }

    /// Writes `u64(len) bytes padding`, reading exactly `len` bytes of the file.
    fn contents(&mut self, path: &Path, len: u64) -> Result<(), NarError> {
        let mut file = File::open(path).map_err(|e| NarError::io(path, e))?;
        self.out
            .write_all(&len.to_le_bytes())
            .map_err(NarError::Write)?;
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(self.chunk.len() as u64) as usize;
            let got = match file.read(&mut self.chunk[..want]) {
                Ok(0) => {
                    return Err(NarError::FileChanged {
                        path: path.to_owned(),
                    });
                }
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NarError::io(path, e)),
            };
            self.out
                .write_all(&self.chunk[..got])
                .map_err(NarError::Write)?;
            remaining -= got as u64;
        }
        let padding = wire::padding_len(len);
        self.out
            .write_all(&[0; 8][..padding])
            .map_err(NarError::Write)?;
        self.written += 8 + len + padding as u64;
        Ok(())
    }
}

/// The entry names of a directory in bytewise order, as Nix sorts them.
fn sorted_entries(dir: &Path) -> Result<Vec<OsString>, NarError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| NarError::io(dir, e))? {
        names.push(entry.map_err(|e| NarError::io(dir, e))?.file_name());
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn describe(file_type: fs::FileType) -> &'static str {
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "named pipe"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}
