//! The keep-alive HTTP client of binary caches.
//!
//! One [`Client`] holds one ureq agent, whose connection pool is shared by
//! every thread that uses the client: parallel narinfo lookups and NAR
//! downloads reuse their TCP connections (HTTP/1.1 keep-alive). `file://`
//! URLs are read from (and written to, by the caller) the local file
//! system, so a directory and a web server are two forms of one cache.

use std::fs::File;
use std::io::Read;

use crate::{FetchError, FetchLimits, agent, file_url_path, transfer};

/// An HTTP(S) and `file://` client with a shared connection pool.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

/// A response body being received.
pub struct Download {
    pub reader: Box<dyn Read + Send>,
    /// `Content-Length` (or the file's size), when known.
    pub size: Option<u64>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Download({:?} bytes)", self.size)
    }
}

/// Whether an HTTP status says "there is no such file" (S3 answers 403
/// for a missing key when listing is not allowed, as Nix knows).
fn is_missing(status: u16) -> bool {
    matches!(status, 403 | 404 | 410)
}

impl Client {
    /// A client with these time limits for every request.
    pub fn new(limits: &FetchLimits) -> Client {
        Client {
            agent: agent(limits),
        }
    }

    /// Start receiving `url`: `None` when the server says it has no such
    /// file (404, 403, 410) or the local file does not exist.
    pub fn open(&self, url: &str) -> Result<Option<Download>, FetchError> {
        if url.starts_with("file://") {
            let path = file_url_path(url)?;
            return match File::open(&path) {
                Ok(file) => {
                    let size = file.metadata().ok().map(|m| m.len());
                    Ok(Some(Download {
                        reader: Box::new(file),
                        size,
                    }))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(FetchError::ReadLocal {
                    url: url.to_string(),
                    path,
                    source,
                }),
            };
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(FetchError::UnsupportedScheme {
                url: url.to_string(),
            });
        }
        let response = self.agent.get(url).call().map_err(|e| transfer(url, e))?;
        let status = response.status();
        if is_missing(status.as_u16()) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                reason: status.canonical_reason(),
            });
        }
        let size = response.body().content_length();
        let url = url.to_string();
        let reader = ErrorNaming {
            url,
            inner: response.into_body().into_reader(),
        };
        Ok(Some(Download {
            reader: Box::new(reader),
            size,
        }))
    }

    /// The whole of a small file (a narinfo, `nix-cache-info`), at most
    /// `max` bytes; `None` when it does not exist.
    pub fn get_small(&self, url: &str, max: u64) -> Result<Option<Vec<u8>>, FetchError> {
        let Some(download) = self.open(url)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        download
            .reader
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| read_error(url, e))?;
        if bytes.len() as u64 > max {
            return Err(FetchError::BadUrl {
                url: url.to_string(),
                reason: "the file is larger than such a file can be",
            });
        }
        Ok(Some(bytes))
    }

    /// `PUT` `len` bytes of `body` at `url` (an HTTP server that accepts
    /// uploads: nginx's WebDAV module, an S3 endpoint with a presigned or
    /// open bucket). Any 2xx status is success.
    pub fn put(
        &self,
        url: &str,
        body: impl Read + Send + 'static,
        len: u64,
        content_type: &str,
    ) -> Result<(), FetchError> {
        let response = self
            .agent
            .put(url)
            .header("Content-Type", content_type)
            .header("Content-Length", len.to_string())
            .send(ureq::SendBody::from_owned_reader(body))
            .map_err(|e| transfer(url, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::PutStatus {
                url: url.to_string(),
                status: status.as_u16(),
                reason: status.canonical_reason(),
            });
        }
        Ok(())
    }
}

/// A ureq error inside an `io::Error` becomes a [`FetchError`] naming the URL.
pub fn read_error(url: &str, source: std::io::Error) -> FetchError {
    match source.downcast::<ureq::Error>() {
        Ok(e) => transfer(url, e),
        Err(source) => transfer(url, ureq::Error::Io(source)),
    }
}

/// A body reader whose errors say which URL they came from.
struct ErrorNaming<R> {
    url: String,
    inner: R,
}

impl<R: Read> Read for ErrorNaming<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| std::io::Error::other(read_error(&self.url, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_open_and_missing_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"hello").unwrap();
        let client = Client::new(&FetchLimits::default());
        let url = format!("file://{}/a", dir.path().display());
        assert_eq!(client.get_small(&url, 100).unwrap().unwrap(), b"hello");
        let missing = format!("file://{}/b", dir.path().display());
        assert!(client.get_small(&missing, 100).unwrap().is_none());
        assert!(matches!(
            client.get_small(&url, 2),
            Err(FetchError::BadUrl { .. })
        ));
    }
}
