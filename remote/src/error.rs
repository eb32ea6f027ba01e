//! The errors of binary cache operations.

use std::path::PathBuf;

use kiln_fetch::FetchError;
use kiln_store::NarError;
use kiln_store::store::StoreError;

use crate::narinfo::NarInfoError;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "{0:?} is not a binary cache URL: use file:///DIR (or an absolute directory), http:// or https://"
    )]
    BadUrl(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{url}: {source}")]
    NarInfo {
        url: String,
        #[source]
        source: NarInfoError,
    },
    #[error(
        "the cache {url} holds paths of the store dir {theirs}, this store's is {ours}; \
         push with --store-dir {theirs}, or use another cache"
    )]
    StoreDirMismatch {
        url: String,
        theirs: String,
        ours: String,
    },
    #[error(
        "{path} in this store has NAR hash {found}, its registration says {expected}: \
         it is corrupt; not pushing it (run `kiln store verify --check-contents`)"
    )]
    CorruptLocal {
        path: String,
        expected: String,
        found: String,
    },
    #[error("reading the NAR of {path}: {source}")]
    Nar {
        path: String,
        #[source]
        source: NarError,
    },
    #[error("{0}")]
    Refused(String),
}

impl CacheError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> CacheError {
        let path = path.into();
        move |source| CacheError::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the user's input was wrong (exit 2) rather than the operation.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            CacheError::BadUrl(_) | CacheError::StoreDirMismatch { .. }
        )
    }
}
