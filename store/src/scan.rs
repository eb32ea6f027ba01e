//! Reference scanning: which candidate store paths does an output mention?
//!
//! A store path `/kiln/store/<hash>-<name>` is referenced by an output when
//! its 32-character nixbase32 hash part occurs anywhere in what the output's
//! NAR would contain: regular file contents, symlink targets and directory
//! entry names. Like Nix, the search is textual: a hash that only appears
//! inside compressed data is not found, and a hash that appears by accident
//! is a reference.
//!
//! The search walks each buffer in windows of 32 bytes: when a byte of the
//! window is not in the nixbase32 alphabet, no window containing it can match,
//! so the scan jumps past it. Only windows made entirely of nixbase32
//! characters are looked up in the set of candidates. The last 31 bytes of
//! each chunk are carried over so that a hash spanning two reads is found.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustc_hash::FxHashSet;

use crate::nixbase32::ALPHABET;
use crate::store::StoreError;

/// Length of a store path's hash part in characters.
pub const HASH_PART_LEN: usize = 32;

const IS_BASE32: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

pub type HashPart = [u8; HASH_PART_LEN];

/// Turn a textual hash part into a key; `None` if it is not 32 nixbase32
/// characters.
pub fn hash_part(s: &str) -> Option<HashPart> {
    let bytes: HashPart = s.as_bytes().try_into().ok()?;
    bytes
        .iter()
        .all(|b| IS_BASE32[*b as usize])
        .then_some(bytes)
}

/// Scans for a fixed set of candidate hash parts, accumulating the ones seen.
pub struct RefScanner {
    candidates: FxHashSet<HashPart>,
    found: FxHashSet<HashPart>,
}

impl RefScanner {
    pub fn new(candidates: impl IntoIterator<Item = HashPart>) -> RefScanner {
        RefScanner {
            candidates: candidates.into_iter().collect(),
            found: FxHashSet::default(),
        }
    }

    /// The candidates seen so far.
    pub fn found(&self) -> &FxHashSet<HashPart> {
        &self.found
    }

    pub fn into_found(self) -> FxHashSet<HashPart> {
        self.found
    }

    /// Search one self-contained buffer.
    pub fn scan_bytes(&mut self, data: &[u8]) {
        if self.candidates.len() == self.found.len() {
            return;
        }
        let mut i = 0;
        while i + HASH_PART_LEN <= data.len() {
            // Check the window from its end: a non-base32 byte at offset j
            // rules out every window starting at or before i + j.
            let window = &data[i..i + HASH_PART_LEN];
            match window.iter().rposition(|b| !IS_BASE32[*b as usize]) {
                Some(j) => i += j + 1,
                None => {
                    let key: &HashPart = window.try_into().expect("window is 32 bytes");
                    if self.candidates.contains(key) {
                        self.found.insert(*key);
                    }
                    i += 1;
                }
            }
        }
    }

    /// Search a stream in chunks, carrying 31 bytes across chunk borders.
    pub fn scan_reader(&mut self, mut reader: impl Read) -> std::io::Result<()> {
        const CHUNK: usize = 256 * 1024;
        let carry_len = HASH_PART_LEN - 1;
        let mut buf = vec![0u8; carry_len + CHUNK];
        let mut kept = 0;
        loop {
            let n = match reader.read(&mut buf[kept..]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let len = kept + n;
            self.scan_bytes(&buf[..len]);
            kept = len.min(carry_len);
            buf.copy_within(len - kept..len, 0);
        }
    }

    /// Search everything under `path` that goes into its NAR: file contents,
    /// symlink targets, entry names. Does not follow symlinks.
    pub fn scan_path(&mut self, path: &Path) -> Result<(), StoreError> {
        let io = || StoreError::io("scanning", path);
        let meta = std::fs::symlink_metadata(path).map_err(io())?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(io())?;
            self.scan_bytes(target.as_os_str().as_encoded_bytes());
        } else if ft.is_dir() {
            let entries = std::fs::read_dir(path).map_err(io())?;
            for entry in entries {
                let entry = entry.map_err(io())?;
                self.scan_bytes(entry.file_name().as_encoded_bytes());
                self.scan_path(&entry.path())?;
            }
        } else if ft.is_file() {
            let file = File::open(path).map_err(io())?;
            self.scan_reader(file).map_err(io())?;
        }
        Ok(())
    }
}

/// Where a hash part occurs in a tree: for `why-depends --precise`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The file, relative to the tree's top (empty for the top itself).
    pub file: std::path::PathBuf,
    /// What holds it: a file's contents or a symlink's target.
    pub in_target: bool,
    /// Byte offset of the hash part in the contents (or target).
    pub offset: u64,
    /// Up to `margin` bytes before the hash, the hash, up to `margin`
    /// after.
    pub context: Vec<u8>,
    /// Where the hash part starts in `context`.
    pub hash_at: usize,
}

/// Every occurrence of `hash` under `path` (file contents and symlink
/// targets, entries in name order; no symlink is followed), each with
/// `margin` bytes of context on both sides. Files are read in chunks, so
/// their size does not matter.
pub fn find_occurrences(
    path: &Path,
    hash: &HashPart,
    margin: usize,
) -> Result<Vec<Occurrence>, StoreError> {
    let mut found = Vec::new();
    occurrences_in(path, std::path::Path::new(""), hash, margin, &mut found)?;
    Ok(found)
}

fn occurrences_in(
    path: &Path,
    rel: &Path,
    hash: &HashPart,
    margin: usize,
    found: &mut Vec<Occurrence>,
) -> Result<(), StoreError> {
    let io = || StoreError::io("scanning", path);
    let meta = std::fs::symlink_metadata(path).map_err(io())?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(io())?;
        let mut hits = Vec::new();
        search(
            &mut target.as_os_str().as_encoded_bytes(),
            hash,
            margin,
            &mut hits,
        )
        .map_err(io())?;
        found.extend(
            hits.into_iter()
                .map(|(offset, context, hash_at)| Occurrence {
                    file: rel.to_path_buf(),
                    in_target: true,
                    offset,
                    context,
                    hash_at,
                }),
        );
    } else if ft.is_dir() {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(path)
            .map_err(io())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io())?;
        names.sort();
        for name in names {
            occurrences_in(&path.join(&name), &rel.join(&name), hash, margin, found)?;
        }
    } else if ft.is_file() {
        let mut file = File::open(path).map_err(io())?;
        let mut hits = Vec::new();
        search(&mut file, hash, margin, &mut hits).map_err(io())?;
        found.extend(
            hits.into_iter()
                .map(|(offset, context, hash_at)| Occurrence {
                    file: rel.to_path_buf(),
                    in_target: false,
                    offset,
                    context,
                    hash_at,
                }),
        );
    }
    Ok(())
}

/// Search a stream for `hash`: (offset, context, where the hash starts in
/// the context) of each occurrence. Keeps at most a chunk plus the margins
/// in memory.
fn search(
    reader: &mut impl Read,
    hash: &HashPart,
    margin: usize,
    hits: &mut Vec<(u64, Vec<u8>, usize)>,
) -> std::io::Result<()> {
    const CHUNK: usize = 256 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 2 * margin + HASH_PART_LEN);
    // File offset of buf[0]; where the next search starts in buf.
    let mut base = 0u64;
    let mut next = 0usize;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        while next + HASH_PART_LEN <= buf.len() {
            let Some(at) = buf[next..]
                .windows(HASH_PART_LEN)
                .position(|w| w == hash.as_slice())
            else {
                next = buf.len() + 1 - HASH_PART_LEN;
                break;
            };
            let i = next + at;
            let end = i + HASH_PART_LEN + margin;
            if end > buf.len() && !eof {
                // Wait for the rest of the context.
                next = i;
                break;
            }
            let start = i.saturating_sub(margin);
            hits.push((
                base + i as u64,
                buf[start..end.min(buf.len())].to_vec(),
                i - start,
            ));
            next = i + HASH_PART_LEN;
        }
        if eof {
            return Ok(());
        }
        // Keep what the next match may need as its left context.
        let keep_from = next.saturating_sub(margin);
        buf.drain(..keep_from);
        base += keep_from as u64;
        next -= keep_from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const A: &str = "0a9vzh2x5ii4yd0y1pclk1qvwq3m0yb3";
    const B: &str = "1b9vzh2x5ii4yd0y1pclk1qvwq3m0yb3";
    const SELF: &str = "2c9vzh2x5ii4yd0y1pclk1qvwq3m0yb3";

    fn scanner() -> RefScanner {
        RefScanner::new([A, B, SELF].map(|s| hash_part(s).unwrap()))
    }

    fn found(s: &RefScanner) -> Vec<String> {
        let mut v: Vec<String> = s
            .found()
            .iter()
            .map(|h| String::from_utf8(h.to_vec()).unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn occurrences_have_their_file_offset_and_context_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("bin")).unwrap();
        // One hit in the first bytes, one spanning the 256 KiB chunk border.
        let mut big = format!("ab{A}cd").into_bytes();
        big.resize(256 * 1024 - 10, b'.');
        big.extend_from_slice(format!("<{A}>tail").as_bytes());
        std::fs::write(out.join("bin/prog"), &big).unwrap();
        std::os::unix::fs::symlink(format!("/kiln/store/{A}-x"), out.join("link")).unwrap();
        std::fs::write(out.join("other"), B).unwrap();
        let hash = hash_part(A).unwrap();
        let hits = find_occurrences(&out, &hash, 4).unwrap();
        let summary: Vec<(String, bool, u64, String, usize)> = hits
            .iter()
            .map(|o| {
                (
                    o.file.display().to_string(),
                    o.in_target,
                    o.offset,
                    String::from_utf8(o.context.clone()).unwrap(),
                    o.hash_at,
                )
            })
            .collect();
        let border = 256 * 1024 - 10 + 1;
        assert_eq!(
            summary,
            vec![
                ("bin/prog".into(), false, 2, format!("ab{A}cd.."), 2),
                (
                    "bin/prog".into(),
                    false,
                    border as u64,
                    format!("...<{A}>tai"),
                    4
                ),
                ("link".into(), true, 12, format!("ore/{A}-x"), 4),
            ]
        );
    }

    #[test]
    fn rejects_bad_hash_parts() {
        assert!(hash_part("e000000000000000000000000000000a").is_none());
        assert!(hash_part("abc").is_none());
        assert!(hash_part(A).is_some());
    }

    #[test]
    fn finds_a_reference_and_not_an_absent_one() {
        let mut s = scanner();
        s.scan_bytes(format!("#!/kiln/store/{A}-bash/bin/sh\nexec foo").as_bytes());
        assert_eq!(found(&s), vec![A]);
    }

    #[test]
    fn finds_a_hash_inside_a_longer_base32_run() {
        let mut s = scanner();
        s.scan_bytes(format!("xx{A}yy").as_bytes());
        assert_eq!(found(&s), vec![A]);
    }

    #[test]
    fn finds_a_hash_spanning_chunk_borders() {
        for split in 0..HASH_PART_LEN + 2 {
            let mut data = vec![b'.'; 256 * 1024 - split];
            data.extend_from_slice(A.as_bytes());
            data.extend_from_slice(b"-name");
            let mut s = scanner();
            // A reader that returns small, uneven chunks.
            struct Dribble<'a>(&'a [u8], usize);
            impl Read for Dribble<'_> {
                fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                    let n = self.0.len().min(out.len()).min(self.1);
                    out[..n].copy_from_slice(&self.0[..n]);
                    self.0 = &self.0[n..];
                    Ok(n)
                }
            }
            s.scan_reader(Dribble(&data, 7919 + split)).unwrap();
            assert_eq!(found(&s), vec![A], "split {split}");
        }
    }

    #[test]
    fn scans_a_tree_with_self_reference_and_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("bin")).unwrap();
        std::fs::write(out.join("bin/prog"), format!("/kiln/store/{SELF}-me/lib")).unwrap();
        std::os::unix::fs::symlink(format!("/kiln/store/{B}-other"), out.join("link")).unwrap();
        let mut s = scanner();
        s.scan_path(&out).unwrap();
        assert_eq!(found(&s), vec![B, SELF]);
    }

    #[test]
    fn a_reference_inside_compressed_data_is_not_found() {
        // Deflate codes literals with Huffman codes, so the hash's bytes are
        // not in the file.
        let text = format!("/kiln/store/{A}-dep\n").repeat(50);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(text.as_bytes()).unwrap();
        let compressed = gz.finish().unwrap();
        assert!(!compressed.windows(32).any(|w| w == A.as_bytes()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.gz");
        File::create(&path).unwrap().write_all(&compressed).unwrap();
        let mut s = scanner();
        s.scan_path(&path).unwrap();
        assert!(found(&s).is_empty());
        // The same text uncompressed is a reference.
        std::fs::write(&path, text).unwrap();
        s.scan_path(&path).unwrap();
        assert_eq!(found(&s), vec![A]);
    }
}
