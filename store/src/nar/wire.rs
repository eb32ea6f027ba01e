//! The NAR wire format: tokens, limits and the low-level string encoding.
//!
//! # Grammar
//!
//! A NAR ("Nix ARchive") serialises one file system object, deterministically:
//! no owners, no timestamps, only the owner-executable bit of a regular file.
//!
//! ```text
//! nar       = str("nix-archive-1") node
//! node      = str("(") str("type") body str(")")
//! body      = str("regular") [ str("executable") str("") ] str("contents") contents
//!           | str("symlink") str("target") str(target)
//!           | str("directory") { entry }
//! entry     = str("entry") str("(") str("name") str(name) str("node") node str(")")
//! contents  = u64(len) bytes(len) padding(len)
//! str(s)    = u64(len(s)) bytes(s) padding(len(s))
//! u64(n)    = n as 8 bytes, little-endian
//! padding(n) = (8 - n % 8) % 8 zero bytes
//! ```
//!
//! So every token starts at a multiple of 8. For example an empty regular
//! file is, in 8-byte words: `13`, `nix-arch`, `ive-1\0\0\0`, `1`, `(`, `4`,
//! `type`, `7`, `regular\0`, `8`, `contents`, `0`, `1`, `)` (112 bytes).
//!
//! # Rules the reader and writer enforce
//!
//! - Directory entries appear in strictly increasing **bytewise** order of
//!   their names (`A` < `Z` < `_` < `a` < `é`), so there are no duplicates.
//! - A name is 1 to [`MAX_NAME_LEN`] bytes, and is not `.` or `..` and holds
//!   no `/` or NUL, so a restored entry stays inside its directory.
//! - A symlink target is 1 to [`MAX_TARGET_LEN`] bytes without NUL (what
//!   `symlink(2)` accepts). Targets are stored verbatim, never followed.
//! - Padding bytes are zero; a token string is at most [`MAX_TAG_LEN`] bytes;
//!   directories nest at most [`MAX_DEPTH`] levels.
//! - Only the three node types exist; sockets, fifos and devices cannot be
//!   archived.

use std::io::{self, Write};

/// The archive's first string.
pub const MAGIC: &[u8] = b"nix-archive-1";

pub const OPEN: &[u8] = b"(";
pub const CLOSE: &[u8] = b")";
pub const TYPE: &[u8] = b"type";
pub const REGULAR: &[u8] = b"regular";
pub const EXECUTABLE: &[u8] = b"executable";
pub const CONTENTS: &[u8] = b"contents";
pub const SYMLINK: &[u8] = b"symlink";
pub const TARGET: &[u8] = b"target";
pub const DIRECTORY: &[u8] = b"directory";
pub const ENTRY: &[u8] = b"entry";
pub const NAME: &[u8] = b"name";
pub const NODE: &[u8] = b"node";

/// Longest token string (the longest token, `nix-archive-1`, has 13 bytes).
pub const MAX_TAG_LEN: u64 = 16;
/// Longest entry name: Linux's `NAME_MAX`.
pub const MAX_NAME_LEN: u64 = 255;
/// Longest symlink target: Linux's `PATH_MAX` minus the NUL.
pub const MAX_TARGET_LEN: u64 = 4095;
/// Deepest directory nesting the reader accepts.
pub const MAX_DEPTH: usize = 1024;

/// Number of zero bytes after a string of `len` bytes.
pub fn padding_len(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}

/// Writes `str(bytes)`: length, bytes, zero padding. Returns the bytes written.
pub fn write_str(out: &mut impl Write, bytes: &[u8]) -> io::Result<u64> {
    let len = bytes.len() as u64;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)?;
    out.write_all(&[0; 8][..padding_len(len)])?;
    Ok(8 + len + padding_len(len) as u64)
}

/// Why an entry name is not allowed, or `None` when it is fine.
pub fn bad_name_reason(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty name")
    } else if name == b"." || name == b".." {
        Some("'.' and '..' are not allowed")
    } else if name.contains(&b'/') {
        Some("name contains '/'")
    } else if name.contains(&0) {
        Some("name contains a NUL byte")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_to_8_bytes() {
        let mut out = Vec::new();
        assert_eq!(write_str(&mut out, b"type").unwrap(), 16);
        assert_eq!(out, b"\x04\0\0\0\0\0\0\0type\0\0\0\0");
        out.clear();
        assert_eq!(write_str(&mut out, b"").unwrap(), 8);
        assert_eq!(write_str(&mut out, b"12345678").unwrap(), 16);
        assert_eq!(out.len(), 24);
    }

    #[test]
    fn names_are_checked() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0"] {
            assert!(bad_name_reason(bad).is_some(), "{bad:?}");
        }
        for good in [&b"..."[..], b".a", b"a..", b"\xff", b" "] {
            assert_eq!(bad_name_reason(good), None, "{good:?}");
        }
    }
}
