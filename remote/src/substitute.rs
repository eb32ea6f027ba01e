//! Substitution: valid paths from binary caches instead of builds.
//!
//! [`Substituters::open`] reads each cache's `nix-cache-info` (in
//! parallel); a cache that cannot be reached in the time limits, is not a
//! binary cache, or holds another store dir's paths is skipped with a
//! warning. The others are asked in priority order (lower `Priority:`
//! first, then the order given), as Nix does.
//!
//! [`Substituters::substitute`] takes the paths wanted, completes them to
//! their closure from the narinfos, and for each path:
//!
//! 1. the narinfo must describe the path asked for and, unless
//!    `require-sigs` is off, carry a signature by a trusted key over Nix's
//!    fingerprint (else the next cache is asked);
//! 2. the NAR is streamed (several paths at once, kept-alive connections),
//!    decompressed and unpacked into a temp dir of the store, while its
//!    SHA-256 and size are computed; a NAR whose hash or size differs from
//!    the signed narinfo, a truncated or corrupt stream, a NAR the reader
//!    refuses (`..` names, …) is dropped with a warning and the next cache
//!    tried;
//! 3. everything fetched whose references are all there goes through
//!    [`Store::install`] in one batch (temp roots, locks, canonical form,
//!    fsync, one transaction). What could not be fetched is left to the
//!    builder.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufReader, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kiln_fetch::{Client, FetchLimits};
use kiln_store::signing::TrustedKeys;
use kiln_store::store::{Locking, NewPath, Staged, Store, ValidPathInfo};
use kiln_store::{HashAlgo, Hasher, StoreDir, StorePath};

use crate::cache::Cache;
use crate::error::CacheError;
use crate::narinfo::{CacheInfo, DEFAULT_PRIORITY, NarInfo};
use crate::push::parallel;

/// Nix's settings for substitution.
#[derive(Debug, Clone)]
pub struct SubstituterConfig {
    /// `substituters` (then `extra-substituters`), in the order given.
    pub urls: Vec<String>,
    /// `trusted-public-keys`.
    pub trusted: TrustedKeys,
    /// `require-sigs` (default true): refuse unsigned or untrusted paths.
    pub require_sigs: bool,
    /// `connect-timeout`: a cache that does not accept a connection in
    /// this time is skipped.
    pub connect_timeout: Duration,
    /// `stalled-download-timeout`: a transfer that brings no byte for
    /// this long fails.
    pub stall_timeout: Duration,
    /// `http-connections`: lookups and downloads at once.
    pub jobs: usize,
}

impl Default for SubstituterConfig {
    fn default() -> Self {
        SubstituterConfig {
            urls: Vec::new(),
            trusted: TrustedKeys::default(),
            require_sigs: true,
            connect_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            jobs: 16,
        }
    }
}

/// What substitution reports as it goes.
pub trait SubstituteObserver: Sync {
    /// Something went wrong that does not stop the run (a cache skipped,
    /// a path refused).
    fn warn(&self, message: &str);
    /// Downloads are about to start: `paths` paths, `bytes` of download.
    fn plan(&self, _paths: usize, _bytes: u64) {}
    /// `n` more bytes of some download arrived.
    fn received(&self, _n: u64) {}
    /// One path is fetched and unpacked (not yet installed).
    fn fetched(&self, _path: &str, _from: &str) {}
}

struct Source {
    cache: Cache,
    priority: u32,
    down: AtomicBool,
}

/// A path a cache has, with its verified narinfo.
#[derive(Debug, Clone)]
pub struct Found {
    source: usize,
    pub narinfo: NarInfo,
}

/// What [`Substituters::substitute`] did.
#[derive(Debug, Default)]
pub struct SubstituteReport {
    /// Paths that became valid now.
    pub installed: Vec<StorePath>,
    /// Bytes downloaded (compressed).
    pub downloaded: u64,
    /// Paths wanted (or needed by one wanted) that no cache could give.
    pub missing: BTreeSet<StorePath>,
}

/// The caches to substitute from, in the order they are asked.
pub struct Substituters {
    sources: Vec<Source>,
    trusted: TrustedKeys,
    require_sigs: bool,
    store_dir: StoreDir,
    jobs: usize,
    /// Lookups done: path → found (or not) from source index ≥ key.1.
    lookups: Mutex<HashMap<(StorePath, usize), Option<Found>>>,
    /// Paths whose download failed from some source: (path, source).
    refused: Mutex<BTreeSet<(StorePath, usize)>>,
}

impl Substituters {
    /// Open the caches of `config` for a store of `store_dir`; the caches
    /// that cannot be used are reported to `observer` and left out.
    /// A URL that is not a cache URL at all is an error.
    pub fn open(
        config: &SubstituterConfig,
        store_dir: &StoreDir,
        observer: &dyn SubstituteObserver,
    ) -> Result<Substituters, CacheError> {
        let client = Client::new(&FetchLimits {
            connect: config.connect_timeout,
            stall: config.stall_timeout,
            total: None,
        });
        let mut seen = BTreeSet::new();
        let mut caches = Vec::new();
        for url in &config.urls {
            if seen.insert(url.clone()) {
                caches.push(Cache::new(url, client.clone())?);
            }
        }
        let infos = parallel(&caches, caches.len(), |cache| {
            Ok(match cache.get_small("nix-cache-info") {
                Ok(Some(bytes)) => match CacheInfo::parse(&String::from_utf8_lossy(&bytes)) {
                    Ok(info) if info.store_dir == store_dir.as_str() => Ok(info),
                    Ok(info) => Err(format!(
                        "it holds paths of the store dir {}, this store's is {}",
                        info.store_dir,
                        store_dir.as_str()
                    )),
                    Err(e) => Err(format!("its nix-cache-info is bad: {e}")),
                },
                Ok(None) => Err("it has no nix-cache-info: not a binary cache".to_string()),
                Err(e) => Err(e.to_string()),
            })
        })?;
        let mut sources = Vec::new();
        for (cache, info) in caches.into_iter().zip(infos) {
            match info {
                Ok(info) => sources.push(Source {
                    cache,
                    priority: info.priority.unwrap_or(DEFAULT_PRIORITY),
                    down: AtomicBool::new(false),
                }),
                Err(why) => observer.warn(&format!(
                    "warning: skipping the binary cache {}: {why}",
                    cache.url
                )),
            }
        }
        // Stable: equal priorities keep the order given.
        sources.sort_by_key(|s| s.priority);
        Ok(Substituters {
            sources,
            trusted: config.trusted.clone(),
            require_sigs: config.require_sigs,
            store_dir: store_dir.clone(),
            jobs: config.jobs.max(1),
            lookups: Mutex::new(HashMap::new()),
            refused: Mutex::new(BTreeSet::new()),
        })
    }

    /// Whether no cache is usable.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The URLs of the usable caches, in the order they are asked.
    pub fn urls(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.cache.url.clone()).collect()
    }

    /// The first cache from `from` on that has `path` with a narinfo this
    /// store may trust.
    fn lookup(
        &self,
        path: &StorePath,
        from: usize,
        observer: &dyn SubstituteObserver,
    ) -> Option<Found> {
        let key = (path.clone(), from);
        if let Some(known) = self.lookups.lock().unwrap().get(&key) {
            return known.clone();
        }
        let mut found = None;
        for (i, source) in self.sources.iter().enumerate().skip(from) {
            if source.down.load(Ordering::Relaxed)
                || self.refused.lock().unwrap().contains(&(path.clone(), i))
            {
                continue;
            }
            if let Some(narinfo) = self.narinfo_from(source, path, observer) {
                found = Some(Found { source: i, narinfo });
                break;
            }
        }
        self.lookups.lock().unwrap().insert(key, found.clone());
        found
    }

    /// `path`'s narinfo in `source`, if it has one this store may trust.
    fn narinfo_from(
        &self,
        source: &Source,
        path: &StorePath,
        observer: &dyn SubstituteObserver,
    ) -> Option<NarInfo> {
        let name = NarInfo::file_name(path);
        let printed = self.store_dir.display(path);
        let bytes = match source.cache.get_small(&name) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(e) => {
                if !source.down.swap(true, Ordering::Relaxed) {
                    observer.warn(&format!(
                        "warning: the binary cache {} is not answering ({e}); not asking it again in this run",
                        source.cache.url
                    ));
                }
                return None;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let narinfo = match NarInfo::parse(&self.store_dir, &text) {
            Ok(n) => n,
            Err(e) => {
                observer.warn(&format!(
                    "warning: ignoring {}: {e}",
                    source.cache.file_url(&name)
                ));
                return None;
            }
        };
        if narinfo.path != *path {
            observer.warn(&format!(
                "warning: ignoring {}: it describes {}, not {printed}",
                source.cache.file_url(&name),
                self.store_dir.display(&narinfo.path)
            ));
            return None;
        }
        if self.require_sigs
            && let Err(why) = narinfo.trusted_signer(&self.store_dir, &self.trusted)
        {
            observer.warn(&format!(
                "warning: not substituting {printed} from {}: no signature by a trusted key ({why}); \
                 add the cache's public key to trusted-public-keys if you trust it",
                source.cache.url
            ));
            return None;
        }
        Some(narinfo)
    }

    /// Which of `paths` some cache has (lookups in parallel).
    pub fn query(
        &self,
        paths: &[StorePath],
        observer: &dyn SubstituteObserver,
    ) -> Vec<Option<Found>> {
        parallel(paths, self.jobs, |p| Ok(self.lookup(p, 0, observer)))
            .expect("lookups do not fail")
    }

    /// Make `wanted` and their closures valid from the caches, as far as
    /// they have them. Paths valid already are skipped.
    pub fn substitute(
        &self,
        store: &Store,
        wanted: &[StorePath],
        observer: &dyn SubstituteObserver,
    ) -> Result<SubstituteReport, CacheError> {
        let mut report = SubstituteReport::default();
        if self.sources.is_empty() || wanted.is_empty() {
            return Ok(report);
        }
        // The closure, level by level, from the narinfos.
        let mut found: BTreeMap<StorePath, Found> = BTreeMap::new();
        let mut seen: BTreeSet<StorePath> = BTreeSet::new();
        let mut level: Vec<StorePath> = wanted
            .iter()
            .filter(|p| seen.insert((*p).clone()))
            .cloned()
            .collect();
        while !level.is_empty() {
            store.add_temp_roots(&level)?;
            let valid = store.valid_among(&level)?;
            let todo: Vec<StorePath> = level
                .into_iter()
                .zip(valid)
                .filter_map(|(p, v)| (!v).then_some(p))
                .collect();
            let results = self.query(&todo, observer);
            let mut next = Vec::new();
            for (path, result) in todo.into_iter().zip(results) {
                match result {
                    Some(f) => {
                        for r in &f.narinfo.references {
                            if seen.insert(r.clone()) {
                                next.push(r.clone());
                            }
                        }
                        found.insert(path, f);
                    }
                    None => {
                        report.missing.insert(path);
                    }
                }
            }
            level = next;
        }
        if found.is_empty() {
            return Ok(report);
        }
        observer.plan(
            found.len(),
            found
                .values()
                .map(|f| f.narinfo.file_size.unwrap_or(f.narinfo.nar_size))
                .sum(),
        );
        // Fetch everything found, several at once; a failure tries the
        // next cache that has the path.
        let items: Vec<(StorePath, Found)> = found.into_iter().collect();
        let downloaded = std::sync::atomic::AtomicU64::new(0);
        let fetched = parallel(&items, self.jobs, |(path, first)| {
            let mut current = Some(first.clone());
            while let Some(f) = current {
                match self.fetch(store, &f, observer, &downloaded) {
                    Ok(staged) => return Ok(Some((f, staged))),
                    Err(e) => {
                        observer.warn(&format!(
                            "warning: not substituting {} from {}: {e}",
                            store.print_path(path),
                            self.sources[f.source].cache.url
                        ));
                        self.refused
                            .lock()
                            .unwrap()
                            .insert((path.clone(), f.source));
                        current = self.lookup(path, f.source + 1, observer);
                    }
                }
            }
            Ok(None)
        })?;
        report.downloaded = downloaded.into_inner();
        // Install what was fetched and whose references are all there.
        let mut ok: BTreeMap<StorePath, (Found, kiln_store::store::temp::TempDir)> =
            BTreeMap::new();
        for ((path, _), result) in items.into_iter().zip(fetched) {
            match result {
                Some(x) => {
                    ok.insert(path, x);
                }
                None => {
                    report.missing.insert(path);
                }
            }
        }
        loop {
            let mut drop_paths = Vec::new();
            for (path, (f, _)) in &ok {
                for r in &f.narinfo.references {
                    if r != path && !ok.contains_key(r) && !store.is_valid(r)? {
                        drop_paths.push(path.clone());
                        break;
                    }
                }
            }
            if drop_paths.is_empty() {
                break;
            }
            for p in drop_paths {
                ok.remove(&p);
                report.missing.insert(p);
            }
        }
        let now = kiln_store::clock::unix_now();
        let mut batch = Vec::with_capacity(ok.len());
        let mut temps = Vec::with_capacity(ok.len());
        for (path, (f, tmp)) in ok {
            let n = f.narinfo;
            batch.push(NewPath {
                info: ValidPathInfo {
                    path,
                    nar_hash: n.nar_hash,
                    nar_size: n.nar_size,
                    deriver: n.deriver,
                    references: n.references,
                    registration_time: now,
                    ca: n.ca,
                    signatures: n.sigs,
                },
                content: Staged::Tree {
                    path: tmp.path().join("nar"),
                    canonical: false,
                },
            });
            temps.push(tmp);
        }
        let installed = store.install(batch, Locking::Take)?;
        drop(temps);
        report.installed = installed.new;
        Ok(report)
    }

    /// Download, check and unpack one path into a new temp dir of the
    /// store (as `TMP/nar`).
    fn fetch(
        &self,
        store: &Store,
        found: &Found,
        observer: &dyn SubstituteObserver,
        downloaded: &std::sync::atomic::AtomicU64,
    ) -> Result<kiln_store::store::temp::TempDir, CacheError> {
        let source = &self.sources[found.source];
        let info = &found.narinfo;
        let download = source
            .cache
            .open(&info.url)?
            .ok_or_else(|| CacheError::Refused(format!("its NAR {} is missing", info.url)))?;
        let counted = Counting {
            inner: download.reader,
            observer,
            total: downloaded,
        };
        let decoder = info
            .compression
            .decoder(counted)
            .map_err(CacheError::io("decompressing", &info.url))?;
        let mut nar = HashingReader {
            inner: BufReader::with_capacity(1 << 20, decoder),
            hasher: Hasher::new(HashAlgo::Sha256),
            count: 0,
        };
        let tmp = store.temp_dir()?;
        let target = tmp.path().join("nar");
        kiln_store::nar::restore(&mut nar, &target)
            .map_err(|e| CacheError::Refused(format!("its NAR is not a valid NAR: {e}")))?;
        // The stream must end with the NAR (and its compression be intact).
        let mut rest = [0u8; 1];
        let trailing = nar
            .inner
            .read(&mut rest)
            .map_err(|e| CacheError::Refused(format!("its NAR file is corrupt: {e}")))?;
        if trailing != 0 {
            return Err(CacheError::Refused(
                "its NAR file has bytes after the NAR".to_string(),
            ));
        }
        let hash = nar.hasher.finish();
        if nar.count != info.nar_size || hash != info.nar_hash {
            return Err(CacheError::Refused(format!(
                "its NAR has hash {} and size {}, the signed narinfo says {} and {}",
                hash.to_typed_nix32(),
                nar.count,
                info.nar_hash.to_typed_nix32(),
                info.nar_size
            )));
        }
        // Make the files durable now, on this worker, while other paths
        // are still downloading: the install's own sync then finds them
        // clean instead of writing the whole closure back at the end.
        kiln_store::durable::sync_tree(&target)?;
        observer.fetched(&store.print_path(&info.path), &source.cache.url);
        Ok(tmp)
    }
}

/// Counts the bytes received, for progress.
struct Counting<'a, R> {
    inner: R,
    observer: &'a dyn SubstituteObserver,
    total: &'a std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observer.received(n as u64);
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Hashes and counts the bytes read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
