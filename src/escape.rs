//! Build output shown on a terminal. A builder's bytes must not drive the
//! user's terminal: escape sequences can move the cursor, rewrite what was
//! printed before (a failed build made to look like a success), set the
//! window title, or on some terminals answer back as if typed. So every
//! control character is shown as text (`\x1b`, `\r`, `\u{9b}`) except the
//! tab and SGR sequences (`ESC [ digits;… m`: colours and bold, which only
//! style the text that follows). Logs kept on disk and output sent to a pipe
//! or file stay byte for byte what the builder wrote.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// `line` as it may be shown on a terminal.
pub fn escape_line(line: &str) -> Cow<'_, str> {
    if !line
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b'
            && let Some(len) = sgr_len(rest)
        {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        match c {
            '\t' => out.push('\t'),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The length of the SGR sequence `ESC [ (digit | ;)* m` at the start of
/// `s`, if there is one.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\x1b[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// A writer that escapes each line it passes on (see [`escape_line`]);
/// bytes are held until their line is complete, and what is left when it
/// is dropped is written as a last line.
pub struct EscapeLines<W: Write> {
    inner: W,
    partial: Vec<u8>,
}

impl<W: Write> EscapeLines<W> {
    pub fn new(inner: W) -> Self {
        EscapeLines {
            inner,
            partial: Vec::new(),
        }
    }

    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        self.inner.write_all(escape_line(&text).as_bytes())
    }
}

impl<W: Write> Write for EscapeLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..nl]);
            self.emit(&line)?;
            self.inner.write_all(b"\n")?;
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for EscapeLines<W> {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            let _ = self.emit(&line);
            let _ = self.inner.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_colours_pass_tab_kept() {
        assert!(matches!(escape_line("a\tb é"), Cow::Borrowed(_)));
        assert_eq!(escape_line("\x1b[1;31mred\x1b[0m"), "\x1b[1;31mred\x1b[0m");
    }

    #[test]
    fn every_other_control_is_shown_as_text() {
        // Cursor up and erase line, a title change, a bell, a carriage
        // return, DEL and the one-byte CSI (U+009B).
        assert_eq!(
            escape_line("ok\x1b[1A\x1b[2Kbuilt\x1b]0;pwned\x07\rX\x7f\u{9b}2J"),
            "ok\\x1b[1A\\x1b[2Kbuilt\\x1b]0;pwned\\x07\\rX\\x7f\\u{9b}2J"
        );
        assert_eq!(escape_line("\x1b"), "\\x1b");
    }

    #[test]
    fn the_writer_escapes_lines_split_across_writes() {
        let mut out = Vec::new();
        {
            let mut w = EscapeLines::new(&mut out);
            w.write_all(b"one\x1b").unwrap();
            w.write_all(b"[2J\ntwo\xc2").unwrap();
            w.write_all(b"\x9b\nthree").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "one\\x1b[2J\ntwo\\u{9b}\nthree"
        );
    }
}
