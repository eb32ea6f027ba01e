//! `kiln cache push`: a closure into a binary cache.
//!
//! 1. `nix-cache-info` is read (its `StoreDir` must be this store's) or
//!    written.
//! 2. Which paths of the closure the cache has is asked in parallel (one
//!    narinfo lookup each, on kept-alive connections).
//! 3. Each missing path is serialised to a NAR, hashed (the hash must be
//!    the one the store registered: a corrupt path is never pushed),
//!    compressed (every core) into a temp file, hashed again (`FileHash`)
//!    and uploaded as `nar/<filehash>.nar.<ext>`; several paths at once.
//! 4. The narinfos are written last, references before referrers, each
//!    signed with the key given: a reader never finds a narinfo whose NAR
//!    or references are not there yet.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kiln_store::signing::SecretKey;
use kiln_store::store::Store;
use kiln_store::{HashAlgo, Hasher, StorePath};

use crate::cache::Cache;
use crate::compression::Compression;
use crate::error::CacheError;
use crate::narinfo::{CacheInfo, NarInfo};

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub compression: Compression,
    /// Sign every narinfo with this key (Nix's `secret-key-files`).
    pub key: Option<SecretKey>,
    /// Paths compressed and uploaded at once, and narinfo lookups at once.
    pub jobs: usize,
    /// Threads of each compressor.
    pub threads: u32,
    /// `Priority:` of a new `nix-cache-info`.
    pub priority: Option<u32>,
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushReport {
    /// Paths uploaded, with their NAR size and compressed size.
    pub pushed: Vec<(StorePath, u64, u64)>,
    /// Paths of the closure the cache had already.
    pub present: usize,
}

/// What [`push`] reports as it goes.
pub trait PushObserver: Sync {
    /// `n` paths of the closure are missing from the cache, `bytes` of NAR.
    fn plan(&self, _missing: usize, _present: usize, _bytes: u64) {}
    /// One path is uploaded.
    fn pushed(&self, _path: &StorePath, _nar_size: u64, _file_size: u64) {}
}

/// No reporting.
pub struct Quiet;
impl PushObserver for Quiet {}

/// Run `work` on every item with `jobs` threads; the first error stops
/// the others (they finish their current item) and is returned.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> Result<R, CacheError> + Sync,
) -> Result<Vec<R>, CacheError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let first_error: Mutex<Option<CacheError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    match work(item) {
                        Ok(r) => results.lock().unwrap()[i] = Some(r),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().unwrap().get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item done"))
        .collect())
}

/// A writer that hashes and counts what goes through it.
pub(crate) struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Hasher,
    pub count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Make sure `cache` has a `nix-cache-info` for this store's store dir.
pub fn ensure_cache_info(
    store: &Store,
    cache: &Cache,
    priority: Option<u32>,
) -> Result<(), CacheError> {
    let ours = store.store_dir().as_str().to_string();
    match cache.get_small("nix-cache-info")? {
        Some(bytes) => {
            let info = CacheInfo::parse(&String::from_utf8_lossy(&bytes)).map_err(|source| {
                CacheError::NarInfo {
                    url: cache.file_url("nix-cache-info"),
                    source,
                }
            })?;
            if info.store_dir != ours {
                return Err(CacheError::StoreDirMismatch {
                    url: cache.url.clone(),
                    theirs: info.store_dir,
                    ours,
                });
            }
            Ok(())
        }
        None => {
            let info = CacheInfo {
                store_dir: ours,
                want_mass_query: true,
                priority,
            };
            cache.put_bytes(
                "nix-cache-info",
                info.render().as_bytes(),
                "text/x-nix-cache-info",
            )
        }
    }
}

/// Push the closure of `roots` to `cache`.
pub fn push(
    store: &Store,
    cache: &Cache,
    roots: &[StorePath],
    options: &PushOptions,
    observer: &dyn PushObserver,
) -> Result<PushReport, CacheError> {
    ensure_cache_info(store, cache, options.priority)?;
    let closure = store.closure(roots)?;
    let order = store.topo_sort(&closure)?;
    let present = parallel(&order, options.jobs.max(8), |path| {
        Ok(cache.get_small(&NarInfo::file_name(path))?.is_some())
    })?;
    let missing: Vec<StorePath> = order
        .iter()
        .zip(&present)
        .filter(|(_, has)| !**has)
        .map(|(p, _)| p.clone())
        .collect();
    let mut infos = Vec::with_capacity(missing.len());
    for path in &missing {
        infos.push(
            store
                .path_info(path)?
                .ok_or_else(|| kiln_store::store::StoreError::NotValid(store.print_path(path)))?,
        );
    }
    observer.plan(
        missing.len(),
        order.len() - missing.len(),
        infos.iter().map(|i| i.nar_size).sum(),
    );
    let narinfos = parallel(&infos, options.jobs, |info| {
        let narinfo = upload_nar(store, cache, info, options)?;
        observer.pushed(&info.path, info.nar_size, narinfo.file_size.unwrap_or(0));
        Ok(narinfo)
    })?;
    // Narinfos in topological order: references first.
    let mut report = PushReport {
        present: order.len() - missing.len(),
        ..PushReport::default()
    };
    for narinfo in narinfos {
        cache.put_bytes(
            &NarInfo::file_name(&narinfo.path),
            narinfo.render(store.store_dir()).as_bytes(),
            "text/x-nix-narinfo",
        )?;
        report.pushed.push((
            narinfo.path.clone(),
            narinfo.nar_size,
            narinfo.file_size.unwrap_or(0),
        ));
    }
    Ok(report)
}

/// Serialise, check, compress and upload one path's NAR; its narinfo.
fn upload_nar(
    store: &Store,
    cache: &Cache,
    info: &kiln_store::store::ValidPathInfo,
    options: &PushOptions,
) -> Result<NarInfo, CacheError> {
    let printed = store.print_path(&info.path);
    let tmp = cache.temp_file()?;
    let tmp_path = tmp.path().to_path_buf();
    let file = std::io::BufWriter::with_capacity(
        1 << 20,
        tmp.reopen().map_err(CacheError::io("opening", &tmp_path))?,
    );
    let file_side = HashingWriter {
        inner: file,
        hasher: Hasher::new(HashAlgo::Sha256),
        count: 0,
    };
    let encoder = options
        .compression
        .encoder(file_side, options.threads)
        .map_err(CacheError::io("starting the compressor for", &tmp_path))?;
    let mut nar_side = HashingWriter {
        inner: encoder,
        hasher: Hasher::new(HashAlgo::Sha256),
        count: 0,
    };
    kiln_store::nar::dump_path(&store.real_path(&info.path), &mut nar_side).map_err(|source| {
        CacheError::Nar {
            path: printed.clone(),
            source,
        }
    })?;
    let nar_hash = nar_side.hasher.finish();
    let nar_size = nar_side.count;
    let mut file_side = nar_side
        .inner
        .finish()
        .map_err(CacheError::io("compressing into", &tmp_path))?;
    file_side
        .flush()
        .map_err(CacheError::io("writing", &tmp_path))?;
    let HashingWriter {
        inner: file,
        hasher,
        count: file_size,
    } = file_side;
    let file_hash = hasher.finish();
    drop(file);
    if nar_hash != info.nar_hash || nar_size != info.nar_size {
        return Err(CacheError::CorruptLocal {
            path: printed,
            expected: info.nar_hash.to_typed_nix32(),
            found: nar_hash.to_typed_nix32(),
        });
    }
    let url = format!(
        "nar/{}{}",
        file_hash.to_nix32(),
        options.compression.extension()
    );
    cache.upload(&url, &tmp_path, "application/x-nix-nar")?;
    drop(tmp);

    let mut sigs: Vec<String> = info.signatures.clone();
    let mut narinfo = NarInfo {
        path: info.path.clone(),
        url,
        compression: options.compression,
        file_hash: Some(file_hash),
        file_size: Some(file_size),
        nar_hash: info.nar_hash,
        nar_size: info.nar_size,
        references: info.references.clone(),
        deriver: info.deriver.clone(),
        system: None,
        sigs: Vec::new(),
        ca: info.ca.clone(),
    };
    if let Some(key) = &options.key {
        let sig = key.sign(narinfo.fingerprint(store.store_dir()).as_bytes());
        if !sigs.contains(&sig) {
            sigs.push(sig);
        }
    }
    let unique: BTreeSet<&String> = sigs.iter().collect();
    narinfo.sigs = unique.into_iter().cloned().collect();
    Ok(narinfo)
}
