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
    let mut out = Buffered {
        out: BufWriter::with_capacity(TOKEN_BUFFER, out),
        chunk: vec![0; CHUNK],
    };
    let size = write_nar(path, &mut out)?;
    out.out.flush().map_err(NarError::Write)?;
    Ok(size)
}

/// Where the NAR bytes go. Besides plain byte writes it copies file contents
/// itself, so an implementation can read them straight into its own buffer.
pub(crate) trait Output {
    fn put(&mut self, bytes: &[u8]) -> Result<(), NarError>;
    /// Appends exactly `len` bytes read from `file` (see [`read_file_part`]).
    fn put_file(&mut self, file: &mut File, path: &Path, len: u64) -> Result<(), NarError>;
}

/// Writes the NAR of `path` to `out`; returns its size.
pub(crate) fn write_nar(path: &Path, out: &mut impl Output) -> Result<u64, NarError> {
    let mut writer = NarWriter { out, written: 0 };
    writer.token(wire::MAGIC)?;
    writer.tree(path)?;
    Ok(writer.written)
}

/// Reads at least one byte of `file` into `buf`; running out of data means
/// the file shrank since its size was taken.
pub(crate) fn read_file_part(
    file: &mut File,
    path: &Path,
    buf: &mut [u8],
) -> Result<usize, NarError> {
    loop {
        return match file.read(buf) {
            Ok(0) => Err(NarError::FileChanged {
                path: path.to_owned(),
            }),
            Ok(got) => Ok(got),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(NarError::io(path, e)),
        };
    }
}

/// An [`Output`] over any writer, through a token buffer and a file chunk.
struct Buffered<W: Write> {
    out: BufWriter<W>,
    chunk: Vec<u8>,
}

impl<W: Write> Output for Buffered<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), NarError> {
        self.out.write_all(bytes).map_err(NarError::Write)
    }

    fn put_file(&mut self, file: &mut File, path: &Path, len: u64) -> Result<(), NarError> {
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(self.chunk.len() as u64) as usize;
            let got = read_file_part(file, path, &mut self.chunk[..want])?;
            self.out
                .write_all(&self.chunk[..got])
                .map_err(NarError::Write)?;
            remaining -= got as u64;
        }
        Ok(())
    }
}

struct NarWriter<'a, O: Output> {
    out: &'a mut O,
    written: u64,
}

impl<O: Output> NarWriter<'_, O> {
    /// Writes `str(bytes)`.
    fn token(&mut self, bytes: &[u8]) -> Result<(), NarError> {
        let len = bytes.len() as u64;
        let padding = wire::padding_len(len);
        self.out.put(&len.to_le_bytes())?;
        self.out.put(bytes)?;
        self.out.put(&[0; 8][..padding])?;
        self.written += 8 + len + padding as u64;
        Ok(())
    }

    /// Writes the node at `root` and everything below it. Iterative, with an
    /// explicit stack of open directories, so deep trees cannot overflow the
    /// call stack.
    fn tree(&mut self, root: &Path) -> Result<(), NarError> {
        let mut open_dirs: Vec<(PathBuf, std::vec::IntoIter<Entry>)> = Vec::new();
        let root_meta = fs::symlink_metadata(root).map_err(|e| NarError::io(root, e))?;
        if let Some(entries) = self.begin_node(root, &root_meta)? {
            open_dirs.push((root.to_owned(), entries.into_iter()));
        }
        while let Some((dir, entries)) = open_dirs.last_mut() {
            let Some((name, meta)) = entries.next() else {
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
            match self.begin_node(&child, &meta)? {
                Some(entries) => open_dirs.push((child, entries.into_iter())),
                None => self.token(wire::CLOSE)?,
            }
        }
        Ok(())
    }

    /// Writes a whole regular file or symlink node and returns `None`, or
    /// writes the start of a directory node and returns its sorted entries.
    fn begin_node(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<Option<Vec<Entry>>, NarError> {
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
        self.out.put(&len.to_le_bytes())?;
        self.out.put_file(&mut file, path, len)?;
        let padding = wire::padding_len(len);
        self.out.put(&[0; 8][..padding])?;
        self.written += 8 + len + padding as u64;
        Ok(())
    }
}

/// A directory entry's name and `lstat` metadata.
type Entry = (OsString, fs::Metadata);

/// The entries of a directory in bytewise order of their names, as Nix sorts
/// them. The metadata is taken while listing, relative to the open directory
/// (`fstatat`), which spares the kernel a walk of the whole path per entry.
fn sorted_entries(dir: &Path) -> Result<Vec<Entry>, NarError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| NarError::io(dir, e))? {
        let entry = entry.map_err(|e| NarError::io(dir, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| NarError::io(entry.path(), e))?;
        entries.push((entry.file_name(), meta));
    }
    entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    Ok(entries)
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
