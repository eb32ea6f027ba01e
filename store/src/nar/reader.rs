//! Parsing a NAR from a stream: [`restore`] recreates the tree, [`validate`]
//! only checks it. Both enforce every rule of [`super::wire`] and stop at the
//! first fault with an error naming its byte offset.
//!
//! The reader consumes exactly the NAR's bytes and no more, so a NAR can be
//! read from the middle of a larger stream. It does small reads for tokens:
//! give it a `BufReader` (or a byte slice) when reading a file or a pipe.
//!
//! # Why a restore cannot escape its target
//!
//! The target must not exist; the reader creates it. Every entry name is
//! checked (no `/`, `.`, `..`, empty or NUL), and names within a directory
//! must strictly increase, so no name is created twice. Hence every path the
//! reader creates is `target/n1/n2/…` where each `n` is a new directory this
//! restore made itself: never a symlink, never something that existed
//! before. Files, directories and symlinks are created with exclusive
//! creation (`O_EXCL`, `mkdir`, `symlink`), which fail rather than follow or
//! overwrite anything. Symlink targets are stored verbatim and never followed.
//!
//! On error the partly restored tree is left in place for the caller to remove.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::NarError;
use crate::nar::wire;

/// Size of the chunks file contents are copied in.
const CHUNK: usize = 256 * 1024;

/// Reads one NAR from `input` and creates it at `target`, which must not
/// exist (its parent must). Returns the NAR's size in bytes.
pub fn restore(input: &mut impl Read, target: &Path) -> Result<u64, NarError> {
    match fs::symlink_metadata(target) {
        Ok(_) => return Err(NarError::TargetExists(target.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(NarError::io(target, e)),
    }
    parse(input, target.to_owned(), Restorer { file: None })
}

/// Reads one NAR from `input` and checks it without writing anything.
/// Returns the NAR's size in bytes.
pub fn validate(input: &mut impl Read) -> Result<u64, NarError> {
    parse(input, PathBuf::new(), Validator)
}

/// What to do with each parsed node. Paths are the target joined with the
/// entry names leading to the node.
trait Sink {
    fn directory(&mut self, path: &Path) -> Result<(), NarError>;
    fn begin_file(&mut self, path: &Path, executable: bool) -> Result<(), NarError>;
    fn file_data(&mut self, path: &Path, data: &[u8]) -> Result<(), NarError>;
    fn end_file(&mut self, path: &Path) -> Result<(), NarError>;
    fn symlink(&mut self, path: &Path, target: &[u8]) -> Result<(), NarError>;
}

struct Validator;

impl Sink for Validator {
    fn directory(&mut self, _: &Path) -> Result<(), NarError> {
        Ok(())
    }
    fn begin_file(&mut self, _: &Path, _: bool) -> Result<(), NarError> {
        Ok(())
    }
    fn file_data(&mut self, _: &Path, _: &[u8]) -> Result<(), NarError> {
        Ok(())
    }
    fn end_file(&mut self, _: &Path) -> Result<(), NarError> {
        Ok(())
    }
    fn symlink(&mut self, _: &Path, _: &[u8]) -> Result<(), NarError> {
        Ok(())
    }
}

struct Restorer {
    file: Option<File>,
}

impl Sink for Restorer {
    fn directory(&mut self, path: &Path) -> Result<(), NarError> {
        fs::create_dir(path).map_err(|e| NarError::io(path, e))
    }

    fn begin_file(&mut self, path: &Path, executable: bool) -> Result<(), NarError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o777 } else { 0o666 })
            .open(path)
            .map_err(|e| NarError::io(path, e))?;
        self.file = Some(file);
        Ok(())
    }

    fn file_data(&mut self, path: &Path, data: &[u8]) -> Result<(), NarError> {
        match &mut self.file {
            Some(file) => file.write_all(data).map_err(|e| NarError::io(path, e)),
            None => Ok(()),
        }
    }

    fn end_file(&mut self, _: &Path) -> Result<(), NarError> {
        self.file = None;
        Ok(())
    }

    fn symlink(&mut self, path: &Path, target: &[u8]) -> Result<(), NarError> {
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path)
            .map_err(|e| NarError::io(path, e))
    }
}

fn parse<R: Read, S: Sink>(input: &mut R, path: PathBuf, sink: S) -> Result<u64, NarError> {
    let mut parser = Parser {
        input,
        offset: 0,
        sink,
        path,
        chunk: Vec::new(),
    };
    parser.expect(wire::MAGIC, "the NAR magic \"nix-archive-1\"")?;
    parser.nar()?;
    Ok(parser.offset)
}

/// A token read from the input: at most [`wire::MAX_TAG_LEN`] bytes.
struct Tag {
    bytes: [u8; wire::MAX_TAG_LEN as usize],
    len: usize,
    offset: u64,
}

impl Tag {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

struct Parser<'a, R: Read, S: Sink> {
    input: &'a mut R,
    /// Bytes consumed so far.
    offset: u64,
    sink: S,
    /// Where the current node goes.
    path: PathBuf,
    /// Reused buffer for file contents, allocated on the first file.
    chunk: Vec<u8>,
}

/// What [`Parser::begin_node`] found.
enum Node {
    /// A regular file or symlink, read completely including its `)`.
    Leaf,
    /// A directory whose entries and `)` follow.
    Directory,
}

impl<R: Read, S: Sink> Parser<'_, R, S> {
    /// Parses the root node and everything below it. Iterative, with an
    /// explicit stack of open directories, so hostile nesting cannot
    /// overflow the call stack.
    fn nar(&mut self) -> Result<(), NarError> {
        // For each open directory, the name of its last entry so far.
        let mut open_dirs: Vec<Option<Vec<u8>>> = Vec::new();
        if let Node::Directory = self.begin_node()? {
            open_dirs.push(None);
        }
        while let Some(previous) = open_dirs.last_mut() {
            let tag = self.tag("\"entry\" or \")\"")?;
            match tag.as_bytes() {
                wire::CLOSE => {
                    open_dirs.pop();
                    if !open_dirs.is_empty() {
                        self.expect(wire::CLOSE, "\")\" closing the entry")?;
                        self.path.pop();
                    }
                    continue;
                }
                wire::ENTRY => {}
                _ => return Err(bad_tag(&tag, "\"entry\" or \")\"")),
            }
            self.expect(wire::OPEN, "\"(\"")?;
            self.expect(wire::NAME, "\"name\"")?;
            let offset = self.offset;
            let name = self.string(wire::MAX_NAME_LEN)?;
            if let Some(reason) = wire::bad_name_reason(&name) {
                return Err(NarError::BadEntryName {
                    offset,
                    name: String::from_utf8_lossy(&name).into_owned(),
                    reason,
                });
            }
            if let Some(previous) = previous
                && name.as_slice() <= previous.as_slice()
            {
                return Err(NarError::UnsortedEntry {
                    offset,
                    previous: String::from_utf8_lossy(previous).into_owned(),
                    name: String::from_utf8_lossy(&name).into_owned(),
                });
            }
            self.expect(wire::NODE, "\"node\"")?;
            self.path.push(std::ffi::OsStr::from_bytes(&name));
            *previous = Some(name);
            match self.begin_node()? {
                Node::Directory if open_dirs.len() >= wire::MAX_DEPTH => {
                    return Err(NarError::TooDeep {
                        offset: self.offset,
                        max: wire::MAX_DEPTH,
                    });
                }
                Node::Directory => open_dirs.push(None),
                Node::Leaf => {
                    self.expect(wire::CLOSE, "\")\" closing the entry")?;
                    self.path.pop();
                }
            }
        }
        Ok(())
    }

    /// Reads `( type KIND`, then a whole leaf node, or creates the directory.
    fn begin_node(&mut self) -> Result<Node, NarError> {
        const KINDS: &str = "a node type (regular, symlink or directory)";
        self.expect(wire::OPEN, "\"(\"")?;
        self.expect(wire::TYPE, "\"type\"")?;
        let kind = self.tag(KINDS)?;
        match kind.as_bytes() {
            wire::REGULAR => self.regular()?,
            wire::SYMLINK => self.symlink()?,
            wire::DIRECTORY => {
                self.sink.directory(&self.path)?;
                return Ok(Node::Directory);
            }
            _ => return Err(bad_tag(&kind, KINDS)),
        }
        self.expect(wire::CLOSE, "\")\"")?;
        Ok(Node::Leaf)
    }

    fn regular(&mut self) -> Result<(), NarError> {
        const WANT: &str = "\"executable\" or \"contents\"";
        let mut tag = self.tag(WANT)?;
        let executable = tag.as_bytes() == wire::EXECUTABLE;
        if executable {
            self.expect(b"", "the empty string after \"executable\"")?;
            tag = self.tag("\"contents\"")?;
        }
        if tag.as_bytes() != wire::CONTENTS {
            return Err(bad_tag(
                &tag,
                if executable { "\"contents\"" } else { WANT },
            ));
        }
        let len = self.u64()?;
        self.sink.begin_file(&self.path, executable)?;
        if self.chunk.is_empty() {
            self.chunk = vec![0; CHUNK];
        }
        let mut remaining = len;
        while remaining > 0 {
            let want = remaining.min(CHUNK as u64) as usize;
            let got = match self.input.read(&mut self.chunk[..want]) {
                Ok(0) => {
                    return Err(NarError::Truncated {
                        offset: self.offset,
                    });
                }
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(NarError::Read {
                        offset: self.offset,
                        source,
                    });
                }
            };
            self.offset += got as u64;
            remaining -= got as u64;
            self.sink.file_data(&self.path, &self.chunk[..got])?;
        }
        self.padding(len)?;
        self.sink.end_file(&self.path)
    }

    fn symlink(&mut self) -> Result<(), NarError> {
        self.expect(wire::TARGET, "\"target\"")?;
        let offset = self.offset;
        let target = self.string(wire::MAX_TARGET_LEN)?;
        if target.is_empty() || target.contains(&0) {
            return Err(NarError::BadSymlinkTarget {
                offset,
                target: String::from_utf8_lossy(&target).into_owned(),
            });
        }
        self.sink.symlink(&self.path, &target)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NarError> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(NarError::Truncated {
                offset: self.offset,
            }),
            Err(source) => Err(NarError::Read {
                offset: self.offset,
                source,
            }),
        }
    }

    fn u64(&mut self) -> Result<u64, NarError> {
        let mut bytes = [0; 8];
        self.read_exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Reads and checks the zero padding after `len` bytes.
    fn padding(&mut self, len: u64) -> Result<(), NarError> {
        let mut bytes = [0; 8];
        let padding = &mut bytes[..wire::padding_len(len)];
        let offset = self.offset;
        self.read_exact(padding)?;
        if padding.iter().any(|&b| b != 0) {
            return Err(NarError::BadPadding { offset });
        }
        Ok(())
    }

    /// Reads `str(s)` with `len(s) <= max`, without allocating more than `max`.
    fn string(&mut self, max: u64) -> Result<Vec<u8>, NarError> {
        let offset = self.offset;
        let len = self.u64()?;
        if len > max {
            return Err(NarError::TooLong { offset, len, max });
        }
        let mut bytes = vec![0; len as usize];
        self.read_exact(&mut bytes)?;
        self.padding(len)?;
        Ok(bytes)
    }

    /// Reads a token string; one longer than any token is a bad tag.
    fn tag(&mut self, expected: &'static str) -> Result<Tag, NarError> {
        let offset = self.offset;
        let len = self.u64()?;
        if len > wire::MAX_TAG_LEN {
            return Err(NarError::BadTag {
                offset,
                expected,
                found: format!("a {len}-byte string"),
            });
        }
        let mut tag = Tag {
            bytes: [0; wire::MAX_TAG_LEN as usize],
            len: len as usize,
            offset,
        };
        self.read_exact(&mut tag.bytes[..tag.len])?;
        self.padding(len)?;
        Ok(tag)
    }

    fn expect(&mut self, token: &[u8], expected: &'static str) -> Result<(), NarError> {
        let tag = self.tag(expected)?;
        if tag.as_bytes() == token {
            Ok(())
        } else {
            Err(bad_tag(&tag, expected))
        }
    }
}

fn bad_tag(tag: &Tag, expected: &'static str) -> NarError {
    NarError::BadTag {
        offset: tag.offset,
        expected,
        found: String::from_utf8_lossy(tag.as_bytes()).into_owned(),
    }
}
