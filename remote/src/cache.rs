//! One binary cache: a directory (`file://`) or an HTTP(S) server, read
//! and written by relative file names (`nix-cache-info`,
//! `<hash>.narinfo`, `nar/<filehash>.nar.xz`).
//!
//! Writes to a directory go to a temp file in the cache directory, are
//! fsynced and renamed into place, so a reader never sees half a file.
//! Writes to a server are `PUT`s (nginx with `dav_methods PUT`, an S3
//! endpoint), each file complete before the narinfo naming it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kiln_fetch::{Client, Download, FetchError};

use crate::error::CacheError;

/// The largest narinfo or `nix-cache-info` read (Nix's are < 2 KiB; a
/// path with thousands of references and signatures stays far below).
pub const MAX_SMALL_FILE: u64 = 4 << 20;

#[derive(Debug, Clone)]
enum Location {
    Dir(PathBuf),
    Http(String),
}

/// A binary cache reached through one shared [`Client`].
#[derive(Clone)]
pub struct Cache {
    /// The URL as the user gave it (for messages).
    pub url: String,
    location: Location,
    client: Client,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache({})", self.url)
    }
}

impl Cache {
    /// `file:///DIR`, an absolute `DIR`, `http://…` or `https://…`. A
    /// query string (`?priority=…`, Nix's store parameters) is dropped.
    pub fn new(url: &str, client: Client) -> Result<Cache, CacheError> {
        let base = url.split('?').next().unwrap_or(url).trim_end_matches('/');
        let location = if let Some(rest) = base.strip_prefix("file://") {
            let path = kiln_fetch::file_url_path(&format!("file://{rest}"))
                .map_err(|_| CacheError::BadUrl(url.to_string()))?;
            Location::Dir(path)
        } else if base.starts_with('/') {
            Location::Dir(PathBuf::from(base))
        } else if base.starts_with("http://") || base.starts_with("https://") {
            Location::Http(base.to_string())
        } else {
            return Err(CacheError::BadUrl(url.to_string()));
        };
        Ok(Cache {
            url: url.to_string(),
            location,
            client,
        })
    }

    /// The URL of a file of the cache.
    pub fn file_url(&self, rel: &str) -> String {
        match &self.location {
            Location::Dir(dir) => format!("file://{}/{rel}", dir.display()),
            Location::Http(base) => format!("{base}/{rel}"),
        }
    }

    /// A small file, `None` when the cache has none of that name.
    pub fn get_small(&self, rel: &str) -> Result<Option<Vec<u8>>, FetchError> {
        self.client.get_small(&self.file_url(rel), MAX_SMALL_FILE)
    }

    /// Start receiving a file.
    pub fn open(&self, rel: &str) -> Result<Option<Download>, FetchError> {
        self.client.open(&self.file_url(rel))
    }

    /// Where to write a file before [`Cache::upload`] takes it: the cache
    /// directory itself (so the upload is a rename), or the system's temp
    /// dir for a server.
    pub fn staging_dir(&self) -> Result<PathBuf, CacheError> {
        match &self.location {
            Location::Dir(dir) => {
                fs::create_dir_all(dir.join("nar"))
                    .map_err(CacheError::io("creating", dir.join("nar")))?;
                Ok(dir.clone())
            }
            Location::Http(_) => Ok(std::env::temp_dir()),
        }
    }

    /// Make the complete local file `file` (in [`Cache::staging_dir`]) the
    /// cache's file `rel`.
    pub fn upload(&self, rel: &str, file: &Path, content_type: &str) -> Result<(), CacheError> {
        match &self.location {
            Location::Dir(dir) => {
                let target = dir.join(rel);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(CacheError::io("creating", parent))?;
                }
                fs::File::open(file)
                    .and_then(|f| f.sync_all())
                    .map_err(CacheError::io("syncing", file))?;
                fs::rename(file, &target).map_err(CacheError::io("renaming into", &target))?;
                Ok(())
            }
            Location::Http(_) => {
                let handle = fs::File::open(file).map_err(CacheError::io("opening", file))?;
                let len = handle
                    .metadata()
                    .map_err(CacheError::io("reading", file))?
                    .len();
                self.client
                    .put(&self.file_url(rel), handle, len, content_type)?;
                Ok(())
            }
        }
    }

    /// Write the cache's file `rel` with these bytes.
    pub fn put_bytes(&self, rel: &str, bytes: &[u8], content_type: &str) -> Result<(), CacheError> {
        let staging = self.staging_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".kiln-upload-")
            .tempfile_in(&staging)
            .map_err(CacheError::io("creating a temp file in", &staging))?;
        tmp.write_all(bytes)
            .map_err(CacheError::io("writing", tmp.path()))?;
        let (_, path) = tmp.keep().map_err(|e| CacheError::Io {
            action: "keeping",
            path: staging.clone(),
            source: e.error,
        })?;
        let result = self.upload(rel, &path, content_type);
        let _ = fs::remove_file(&path);
        result
    }

    /// A new temp file for a NAR in [`Cache::staging_dir`].
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile, CacheError> {
        let staging = self.staging_dir()?;
        let dir = match &self.location {
            Location::Dir(_) => staging.join("nar"),
            Location::Http(_) => staging,
        };
        tempfile::Builder::new()
            .prefix(".kiln-upload-")
            .tempfile_in(&dir)
            .map_err(CacheError::io("creating a temp file in", &dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_fetch::FetchLimits;

    #[test]
    fn urls_and_directories() {
        let client = Client::new(&FetchLimits::default());
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let cache = Cache::new(&url, client.clone()).unwrap();
        cache.put_bytes("a.narinfo", b"x", "text/plain").unwrap();
        assert_eq!(cache.get_small("a.narinfo").unwrap().unwrap(), b"x");
        assert!(cache.get_small("b.narinfo").unwrap().is_none());
        // Nothing but the file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.iter().filter(|n| n.starts_with(".kiln")).count(), 0);
        let http = Cache::new("http://127.0.0.1:1/c/?priority=10", client.clone()).unwrap();
        assert_eq!(
            http.file_url("nix-cache-info"),
            "http://127.0.0.1:1/c/nix-cache-info"
        );
        assert!(Cache::new("s3://bucket", client.clone()).is_err());
        assert!(Cache::new("relative/dir", client).is_err());
    }
}
