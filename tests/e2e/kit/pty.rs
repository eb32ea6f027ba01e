//! A pseudo-terminal for tests that drive an interactive program (the
//! repl, a shell): type keys, wait for what the terminal shows.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A pseudo-terminal whose output is collected by a thread.
pub struct Pty {
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
    prompt: String,
}

impl Pty {
    /// Start `command` with a new pseudo-terminal as stdin, stdout and
    /// stderr.
    /// `prompt` is what [`Pty::line`] waits for.
    pub fn spawn(mut command: Command, prompt: &str) -> (Pty, std::process::Child) {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: the out-pointers are valid for the call; the name
        // and termios pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: openpty returned two open descriptors we now own.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = command.spawn().expect("spawn on the pty");
        let master = std::fs::File::from(master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (
            Pty {
                master,
                seen,
                prompt: prompt.to_owned(),
            },
            child,
        )
    }

    /// Wait for the prompt after `from`, then type `keys`; the offset
    /// after the prompt.
    pub fn line(&mut self, from: usize, keys: &str) -> usize {
        let prompt = self.prompt.clone();
        let at = self.expect(from, &prompt);
        self.send(keys);
        at
    }

    pub fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Wait until the output, terminal escapes left out, contains
    /// `needle` after offset `from`; the offset after it.
    pub fn expect(&self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let all = without_escapes(&String::from_utf8_lossy(&seen));
                let text = all.get(from..).unwrap_or("");
                if let Some(at) = text.find(needle) {
                    return from + at + needle.len();
                }
                assert!(
                    Instant::now() < deadline,
                    "{needle:?} never appeared; the terminal shows:\n{text:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `text` without ANSI control sequences (`ESC [ … final`, `ESC x`).
pub fn without_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&'[').is_some() {
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}
