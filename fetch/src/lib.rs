//! kiln-fetch: the one downloader. [`fetch_to_file`] downloads one URL
//! into a new file (`builtin:fetchurl`); [`Client`] (`client.rs`) is the
//! keep-alive HTTP client of binary caches (small GETs, streamed GETs,
//! PUTs), on the same ureq agent settings and errors.
//!
//! Schemes:
//!
//! - `file://PATH` (also `file://localhost/PATH`, percent-escapes decoded):
//!   the local file is copied.
//! - `http://` and `https://`: a GET with ureq (rustls, the webpki roots).
//!   Redirects are followed (at most [`MAX_REDIRECTS`]); a final status
//!   other than 2xx is an error naming the URL and the status. The body is
//!   stored as served: no `Content-Encoding` is undone, so what is hashed is
//!   what the server sent, as in Nix (`decompress = false`). Proxies come
//!   from the environment as ureq reads it (`ALL_PROXY`, `HTTPS_PROXY`,
//!   `HTTP_PROXY`, lower case too, first set wins; `NO_PROXY`).
//!
//! The body is streamed to disk in chunks; nothing holds the whole file in
//! memory. The destination is created with `O_CREAT|O_EXCL`, so the fetcher
//! never replaces or follows anything already there. A failed download
//! leaves a partial file behind: the caller's temp dir owns it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod client;
pub use client::{Client, Download};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: u32 = 10;
/// Size of the chunks copied to disk.
const CHUNK: usize = 256 * 1024;
/// How often a progress line is written during a long download.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Time limits of one download.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Establishing the connection (DNS, TCP, TLS, proxy).
    pub connect: Duration,
    /// One read that brings no byte: a stalled server.
    pub stall: Duration,
    /// The whole download, if bounded.
    pub total: Option<Duration>,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect: Duration::from_secs(30),
            stall: Duration::from_secs(300),
            total: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "unable to download '{url}': unsupported URL scheme (only file://, http:// and https://)"
    )]
    UnsupportedScheme { url: String },

    #[error("unable to download '{url}': {reason}")]
    BadUrl { url: String, reason: &'static str },

    #[error("unable to download '{url}': HTTP error {status}{}", reason_suffix(.reason))]
    Status {
        url: String,
        status: u16,
        reason: Option<&'static str>,
    },

    #[error("unable to download '{url}': {source}")]
    Transfer {
        url: String,
        #[source]
        source: ureq::Error,
    },

    #[error("unable to download '{url}': reading {}: {source}", path.display())]
    ReadLocal {
        url: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("unable to download '{url}': {} is not a regular file", path.display())]
    NotAFile { url: String, path: PathBuf },

    #[error("unable to download '{url}': the download took longer than {}s", limit.as_secs())]
    TimedOut { url: String, limit: Duration },

    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("unable to upload to '{url}': HTTP error {status}{}", reason_suffix(.reason))]
    PutStatus {
        url: String,
        status: u16,
        reason: Option<&'static str>,
    },

    #[error("download of '{url}' was stopped because another build failed")]
    Cancelled { url: String },
}

fn reason_suffix(reason: &Option<&'static str>) -> String {
    reason.map(|r| format!(" ({r})")).unwrap_or_default()
}

/// Download `url` into the new file `dest`. `say` receives progress lines
/// (no trailing newline). Returns the number of bytes written.
pub fn fetch_to_file(
    url: &str,
    dest: &Path,
    limits: &FetchLimits,
    cancel: &AtomicBool,
    say: &mut dyn FnMut(&str),
) -> Result<u64, FetchError> {
    let start = Instant::now();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("file") => {
            let path = file_url_path(url)?;
            let mut source = File::open(&path).map_err(|source| FetchError::ReadLocal {
                url: url.to_string(),
                path: path.clone(),
                source,
            })?;
            let meta = source.metadata().map_err(|source| FetchError::ReadLocal {
                url: url.to_string(),
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(FetchError::NotAFile {
                    url: url.to_string(),
                    path,
                });
            }
            say(&format!("copying '{url}' ({} bytes)", meta.len()));
            let read_error = |source| FetchError::ReadLocal {
                url: url.to_string(),
                path: path.clone(),
                source,
            };
            copy_body(
                url,
                &mut source,
                &read_error,
                Some(meta.len()),
                dest,
                limits,
                start,
                cancel,
                say,
            )
        }
        Some("http" | "https") => {
            say(&format!("downloading '{url}'"));
            let agent = agent(limits);
            let mut response = agent.get(url).call().map_err(|e| transfer(url, e))?;
            let status = response.status();
            let final_url = ureq::ResponseExt::get_uri(&response).to_string();
            if final_url != url {
                say(&format!("redirected to '{final_url}'"));
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                    reason: status.canonical_reason(),
                });
            }
            let size = response.body().content_length();
            match size {
                Some(n) => say(&format!("size: {n} bytes")),
                None => say("size: unknown"),
            }
            let mut body = response.body_mut().as_reader();
            let read_error = |source: std::io::Error| {
                // ureq reports its own errors (timeouts, TLS) through the
                // reader wrapped in an io::Error.
                match source.downcast::<ureq::Error>() {
                    Ok(e) => transfer(url, e),
                    Err(source) => transfer(url, ureq::Error::Io(source)),
                }
            };
            copy_body(
                url,
                &mut body,
                &read_error,
                size,
                dest,
                limits,
                start,
                cancel,
                say,
            )
        }
        _ => Err(FetchError::UnsupportedScheme {
            url: url.to_string(),
        }),
    }
}

pub(crate) fn agent(limits: &FetchLimits) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(limits.connect))
        .timeout_per_read(Some(limits.stall))
        .timeout_global(limits.total)
        // The status is checked here, to name it with the URL.
        .http_status_as_error(false)
        .max_redirects(MAX_REDIRECTS)
        .user_agent(format!("kiln/{}", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

pub(crate) fn transfer(url: &str, source: ureq::Error) -> FetchError {
    FetchError::Transfer {
        url: url.to_string(),
        source,
    }
}

/// Stream `source` into the new file `dest`, writing a progress line now
/// and then and checking the total time limit and cancellation per chunk.
#[allow(clippy::too_many_arguments)]
fn copy_body(
    url: &str,
    source: &mut dyn Read,
    read_error: &dyn Fn(std::io::Error) -> FetchError,
    size: Option<u64>,
    dest: &Path,
    limits: &FetchLimits,
    start: Instant,
    cancel: &AtomicBool,
    say: &mut dyn FnMut(&str),
) -> Result<u64, FetchError> {
    let write_error = |source| FetchError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(write_error)?;
    let mut buf = vec![0u8; CHUNK];
    let mut written: u64 = 0;
    let mut last_progress = Instant::now();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(FetchError::Cancelled {
                url: url.to_string(),
            });
        }
        if let Some(limit) = limits.total.filter(|t| start.elapsed() > *t) {
            return Err(FetchError::TimedOut {
                url: url.to_string(),
                limit,
            });
        }
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        file.write_all(&buf[..n]).map_err(write_error)?;
        written += n as u64;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            match size {
                Some(total) => say(&format!("received {written} of {total} bytes")),
                None => say(&format!("received {written} bytes")),
            }
        }
    }
    file.sync_all().map_err(write_error)?;
    say(&format!(
        "fetched {written} bytes in {:.1}s",
        start.elapsed().as_secs_f64()
    ));
    Ok(written)
}

/// The local path of a `file://` URL: `file:///p` or `file://localhost/p`,
/// with `%XX` escapes decoded (to bytes, so any file name can be named).
pub fn file_url_path(url: &str) -> Result<PathBuf, FetchError> {
    let bad = |reason| FetchError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let rest = &url["file://".len()..];
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return Err(bad("a file:// URL needs an absolute path (file:///…)"));
    }
    // A query or fragment is not part of the path.
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("a '%' in the URL is not followed by two hex digits"))?;
            decoded.push(hex);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    if decoded.contains(&0) {
        return Err(bad("the path contains a NUL byte"));
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(decoded)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};

    /// One canned answer of the test server, by request path.
    type Route = (&'static str, String, Vec<u8>);

    /// A tiny HTTP/1.1 server on 127.0.0.1 answering `requests` requests
    /// from `routes` (status line and extra headers, body); unknown paths
    /// get a 404. Returns its base URL.
    fn serve(routes: Vec<Route>, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(stream) = stream else { break };
                answer(stream, &routes);
            }
        });
        base
    }

    fn answer(mut stream: TcpStream, routes: &[Route]) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                break;
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
        let (head, body) = routes
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, head, body)| (head.clone(), body.clone()))
            .unwrap_or_else(|| ("404 Not Found".to_string(), b"nope".to_vec()));
        let response = format!(
            "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
    }

    fn fetch(url: &str, dest: &Path) -> (Result<u64, FetchError>, Vec<String>) {
        let mut lines = Vec::new();
        let cancel = AtomicBool::new(false);
        let result = fetch_to_file(url, dest, &FetchLimits::default(), &cancel, &mut |l| {
            lines.push(l.to_string())
        });
        (result, lines)
    }

    #[test]
    fn http_body_is_stored_as_served() {
        // Bigger than one chunk, not valid UTF-8.
        let body: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i * 7 % 251) as u8).collect();
        let base = serve(vec![("/f", "200 OK".into(), body.clone())], 1);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let (result, lines) = fetch(&format!("{base}/f"), &dest);
        assert_eq!(result.unwrap(), body.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert_eq!(lines[0], format!("downloading '{base}/f'"));
        assert!(lines.contains(&format!("size: {} bytes", body.len())));
    }

    #[test]
    fn redirects_are_followed() {
        let routes = vec![
            ("/old", "302 Found\r\nLocation: /new".into(), Vec::new()),
            ("/new", "200 OK".into(), b"moved here".to_vec()),
        ];
        let base = serve(routes, 2);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let (result, lines) = fetch(&format!("{base}/old"), &dest);
        assert_eq!(result.unwrap(), 10);
        assert_eq!(std::fs::read(&dest).unwrap(), b"moved here");
        assert!(
            lines.contains(&format!("redirected to '{base}/new'")),
            "{lines:?}"
        );
    }

    #[test]
    fn not_found_names_the_url_and_status() {
        let base = serve(Vec::new(), 1);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{base}/missing");
        let (result, _) = fetch(&url, &dir.path().join("out"));
        let err = result.unwrap_err();
        assert!(matches!(err, FetchError::Status { status: 404, .. }));
        assert_eq!(
            err.to_string(),
            format!("unable to download '{url}': HTTP error 404 (Not Found)")
        );
    }

    #[test]
    fn truncated_body_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            if let Some(Ok(mut stream)) = listener.incoming().next() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let (result, _) = fetch(&url, &dir.path().join("out"));
        assert!(
            matches!(result, Err(FetchError::Transfer { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn file_urls_copy_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a b.txt");
        std::fs::write(&src, b"local bytes").unwrap();
        let url = format!("file://{}", dir.path().join("a%20b.txt").display());
        let dest = dir.path().join("out");
        let (result, _) = fetch(&url, &dest);
        assert_eq!(result.unwrap(), 11);
        assert_eq!(std::fs::read(&dest).unwrap(), b"local bytes");
    }

    #[test]
    fn file_url_errors() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let (missing, _) = fetch("file:///nonexistent/kiln-test-file", &dest);
        assert!(matches!(missing, Err(FetchError::ReadLocal { .. })));
        let (relative, _) = fetch("file://relative/path", &dest);
        assert!(matches!(relative, Err(FetchError::BadUrl { .. })));
        let (directory, _) = fetch(&format!("file://{}", dir.path().display()), &dest);
        assert!(matches!(directory, Err(FetchError::NotAFile { .. })));
        let (scheme, _) = fetch("ftp://example.org/x", &dest);
        assert!(matches!(scheme, Err(FetchError::UnsupportedScheme { .. })));
        assert!(!dest.exists());
    }

    #[test]
    fn an_existing_destination_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"new").unwrap();
        let dest = dir.path().join("out");
        std::fs::write(&dest, b"old").unwrap();
        let (result, _) = fetch(&format!("file://{}", src.display()), &dest);
        assert!(matches!(result, Err(FetchError::Write { .. })));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    }

    #[test]
    fn cancellation_stops_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"x").unwrap();
        let cancel = AtomicBool::new(true);
        let result = fetch_to_file(
            &format!("file://{}", src.display()),
            &dir.path().join("out"),
            &FetchLimits::default(),
            &cancel,
            &mut |_| {},
        );
        assert!(matches!(result, Err(FetchError::Cancelled { .. })));
    }
}
