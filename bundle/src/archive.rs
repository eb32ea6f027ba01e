//! The container: a ustar archive in one zstd stream, in canonical form.
//!
//! Every entry is a regular file whose header is exactly what [`header`]
//! writes for its name and size (mode 0444, uid/gid 0, mtime 0, no owner
//! names), its data is followed by zero padding to 512 bytes, and the
//! archive ends with two zero blocks and nothing after them. The reader
//! ([`TarReader`]) accepts exactly that: a changed byte anywhere in a
//! header, a padding or the end is refused here, and a changed byte in an
//! entry's data is caught by the digests the manifest and the signed
//! statement carry. The zstd frame carries a content checksum too.

use std::io::{self, Read, Write};

use crate::BundleError;

pub const BLOCK: usize = 512;

/// Longest entry the reader holds in memory (manifest, SBOMs, envelope).
pub const MAX_METADATA_ENTRY: u64 = 512 << 20;

/// The one header an entry `name` of `size` bytes has.
pub fn header(name: &str, size: u64) -> Result<[u8; BLOCK], BundleError> {
    if name.len() > 99 || name.is_empty() || !name.is_ascii() {
        return Err(BundleError::invalid(format!(
            "entry name {name:?} cannot be stored"
        )));
    }
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .map_err(|e| BundleError::invalid(format!("entry name {name:?}: {e}")))?;
    h.set_size(size);
    h.set_mode(0o444);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = [0u8; BLOCK];
    out.copy_from_slice(h.as_bytes());
    Ok(out)
}

fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Writes entries in the order it is given them.
pub struct TarWriter<W: Write> {
    out: W,
    /// The entry being written: declared size and bytes so far.
    open: Option<(String, u64, u64)>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter { out, open: None }
    }

    /// A whole entry from memory.
    pub fn entry(&mut self, name: &str, data: &[u8]) -> Result<(), BundleError> {
        self.begin(name, data.len() as u64)?;
        self.write_all(data).map_err(BundleError::write)?;
        self.end()
    }

    /// Start an entry of `size` bytes; write them with [`Write`], then [`Self::end`].
    pub fn begin(&mut self, name: &str, size: u64) -> Result<(), BundleError> {
        assert!(self.open.is_none(), "entries are written one at a time");
        self.out
            .write_all(&header(name, size)?)
            .map_err(BundleError::write)?;
        self.open = Some((name.to_string(), size, 0));
        Ok(())
    }

    pub fn end(&mut self) -> Result<(), BundleError> {
        let (name, size, written) = self.open.take().expect("an entry is open");
        if size != written {
            return Err(BundleError::invalid(format!(
                "{name}: {written} bytes written, {size} declared (did the store path change while it was exported? `kiln store verify --check-contents` checks it)"
            )));
        }
        self.out
            .write_all(&[0u8; BLOCK][..padding(size)])
            .map_err(BundleError::write)
    }

    /// The end-of-archive marker; returns the inner writer.
    pub fn finish(mut self) -> Result<W, BundleError> {
        assert!(self.open.is_none(), "an entry is still open");
        self.out
            .write_all(&[0u8; 2 * BLOCK])
            .map_err(BundleError::write)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for TarWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let open = self.open.as_mut().expect("an entry is open");
        if open.2 + buf.len() as u64 > open.1 {
            return Err(io::Error::other(format!(
                "{}: more bytes than the {} declared",
                open.0, open.1
            )));
        }
        let n = self.out.write(buf)?;
        open.2 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a canonical archive entry by entry.
pub struct TarReader<R: Read> {
    input: R,
    /// Bytes left in the current entry, and its padding.
    left: u64,
    pad: usize,
    name: String,
    finished: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(input: R) -> TarReader<R> {
        TarReader {
            input,
            left: 0,
            pad: 0,
            name: String::new(),
            finished: false,
        }
    }

    fn read_block(&mut self, what: &str) -> Result<[u8; BLOCK], BundleError> {
        let mut block = [0u8; BLOCK];
        self.input.read_exact(&mut block).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                BundleError::invalid(format!("the archive ends early, in {what}"))
            } else {
                BundleError::read(e)
            }
        })?;
        Ok(block)
    }

    /// The next entry's name and size, or `None` at the (checked) end.
    /// The previous entry must have been read completely.
    pub fn next_entry(&mut self) -> Result<Option<(String, u64)>, BundleError> {
        if self.left != 0 {
            return Err(BundleError::invalid(format!(
                "{}: {} bytes of the entry were not used",
                self.name, self.left
            )));
        }
        self.skip_padding()?;
        if self.finished {
            return Ok(None);
        }
        let block = self.read_block("an entry header")?;
        if block.iter().all(|&b| b == 0) {
            let second = self.read_block("the end-of-archive marker")?;
            if second.iter().any(|&b| b != 0) {
                return Err(BundleError::invalid(
                    "the end-of-archive marker is damaged".into(),
                ));
            }
            let mut rest = [0u8; 1];
            loop {
                match self.input.read(&mut rest) {
                    Ok(0) => break,
                    Ok(_) => {
                        return Err(BundleError::invalid(
                            "bytes follow the end-of-archive marker".into(),
                        ));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(BundleError::read(e)),
                }
            }
            self.finished = true;
            return Ok(None);
        }
        let name_len = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = std::str::from_utf8(&block[..name_len])
            .map_err(|_| BundleError::invalid("an entry name is not UTF-8".into()))?
            .to_string();
        let size = tar::Header::from_byte_slice(&block)
            .entry_size()
            .map_err(|_| BundleError::invalid(format!("{name:?}: the size field is damaged")))?;
        if header(&name, size)? != block {
            return Err(BundleError::invalid(format!(
                "the header of entry {name:?} is not in the canonical form (changed?)"
            )));
        }
        self.left = size;
        self.pad = padding(size);
        self.name = name.clone();
        Ok(Some((name, size)))
    }

    fn skip_padding(&mut self) -> Result<(), BundleError> {
        if self.pad == 0 {
            return Ok(());
        }
        let mut buf = [0u8; BLOCK];
        let pad = self.pad;
        self.input.read_exact(&mut buf[..pad]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                BundleError::invalid("the archive ends early, in a padding".into())
            } else {
                BundleError::read(e)
            }
        })?;
        self.pad = 0;
        if buf[..pad].iter().any(|&b| b != 0) {
            return Err(BundleError::invalid(format!(
                "the padding after {} is not zero (changed?)",
                self.name
            )));
        }
        Ok(())
    }

    /// A whole (small) entry into memory.
    pub fn read_entry(&mut self) -> Result<Vec<u8>, BundleError> {
        if self.left > MAX_METADATA_ENTRY {
            return Err(BundleError::invalid(format!(
                "{}: {} bytes is too large for a metadata entry",
                self.name, self.left
            )));
        }
        let mut out = Vec::with_capacity(self.left as usize);
        self.read_to_end(&mut out).map_err(BundleError::read)?;
        if self.left != 0 {
            return Err(BundleError::invalid(format!(
                "the archive ends early, in {}",
                self.name
            )));
        }
        Ok(out)
    }

    pub fn remaining(&self) -> u64 {
        self.left
    }
}

/// Reading the current entry's data (never past it).
impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.input.read(&mut buf[..want])?;
        if n == 0 && want > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the archive ends early, in {}", self.name),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        w.entry("a.json", b"{}").unwrap();
        w.entry("nar/b.nar", &[7u8; 600]).unwrap();
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
        let mut r = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some((name, _)) = r.next_entry()? {
            out.push((name, r.read_entry()?));
        }
        Ok(out)
    }

    #[test]
    fn round_trip_and_gnu_tar_layout() {
        let bytes = archive();
        assert_eq!(bytes.len(), 512 + 512 + 512 + 1024 + 1024);
        let entries = read_all(&bytes).unwrap();
        assert_eq!(entries[0], ("a.json".into(), b"{}".to_vec()));
        assert_eq!(entries[1].1.len(), 600);
    }

    #[test]
    fn every_changed_byte_outside_data_is_refused() {
        let bytes = archive();
        // Data bytes: 512..514 and 1536..2136; everything else is structure.
        for offset in 0..bytes.len() {
            let data = (512..514).contains(&offset) || (1536..2136).contains(&offset);
            let mut changed = bytes.clone();
            changed[offset] ^= 0x20;
            let result = read_all(&changed);
            assert_eq!(result.is_err(), !data, "offset {offset}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err());
        assert!(read_all(&bytes[..bytes.len() - 1]).is_err());
    }
}
