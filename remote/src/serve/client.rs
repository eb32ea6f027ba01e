//! [`ServeClient`]: a remote store reached through a spawned command that
//! speaks the serve protocol on its stdin and stdout (`ssh HOST kiln store
//! serve --stdio --write`, `ssh HOST nix-store --serve --write`, or the
//! same command run locally).
//!
//! Nix's own client waits forever on a remote that stops answering; this
//! one has an idle timeout: when an operation sees no byte move for that
//! long, a watchdog kills the remote and the operation fails with
//! [`RemoteError::Timeout`]. A remote that exits, closes the pipe or sends
//! garbage fails the operation with [`RemoteError::Connection`] (with the
//! end of its stderr) and the client is unusable afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_store::store::{Locking, NewPath, Staged, Store, StoreError, ValidPathInfo};
use kiln_store::{Derivation, Hash, HashAlgo, Hasher, StoreDir, StorePath};

use super::receive::{ReceiveError, receive_nar};
use super::wire::{self, WirePathInfo, bad};
use super::{Command as Cmd, RemoteError, SERVE_MAGIC_1, SERVE_MAGIC_2, SERVE_PROTOCOL_VERSION};

/// How long an operation may see no byte move before the remote is
/// declared dead (except while a build runs, see [`BuildOptions`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of the remote's stderr is kept for error messages.
const STDERR_KEPT: usize = 16 * 1024;

/// The build settings sent with BuildDerivation (Nix's names). 0 is "no
/// limit" for the numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Seconds a build may print nothing (`max-silent-time`).
    pub max_silent_time: u64,
    /// Seconds a build may run (`timeout`); also how long the client
    /// waits for the result, plus the idle timeout. With 0 it waits as
    /// long as the remote is alive.
    pub build_timeout: u64,
    /// Bytes of log a build may write (`max-log-size`).
    pub max_log_size: u64,
    /// Extra builds to check determinism (`repeat`).
    pub build_repeat: u64,
    pub enforce_determinism: bool,
    pub keep_failed: bool,
}

/// What a remote build gave (Nix's `BuildResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBuildResult {
    /// Nix's `BuildResult::Status` ([`super::status`]).
    pub status: u64,
    pub error_msg: String,
    pub times_built: u64,
    pub is_non_deterministic: bool,
    /// Unix seconds.
    pub start_time: i64,
    pub stop_time: i64,
    /// `DrvOutput` id (`sha256:HASH!out`) → realisation JSON, as sent.
    pub built_outputs: BTreeMap<String, String>,
}

impl RemoteBuildResult {
    /// Whether the outputs are valid on the remote now.
    pub fn success(&self) -> bool {
        super::status::success(self.status)
    }

    pub fn status_name(&self) -> &'static str {
        super::status::name(self.status)
    }
}

/// The shared state of the watchdog.
struct Watch {
    /// Milliseconds of silence allowed; 0: none (wait).
    timeout_ms: AtomicU64,
    /// Whether an operation is running (the clock only runs then).
    active: AtomicBool,
    last: Mutex<Instant>,
    fired: AtomicBool,
    stop: AtomicBool,
}

impl Watch {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

struct Watched<T> {
    inner: T,
    watch: Arc<Watch>,
}

impl<T: Read> Read for Watched<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch.touch();
        Ok(n)
    }
}

/// The remote's stdin; `None` once closed.
struct WatchedIn {
    inner: Option<ChildStdin>,
    watch: Arc<Watch>,
}

impl Write for WatchedIn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = self.inner.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        let n = inner.write(buf)?;
        self.watch.touch();
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(i) => i.flush(),
            None => Ok(()),
        }
    }
}

/// A connection to a remote store over the serve protocol.
pub struct ServeClient {
    dir: StoreDir,
    program: String,
    child: Arc<Mutex<Child>>,
    to: BufWriter<WatchedIn>,
    from: BufReader<Watched<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    watch: Arc<Watch>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    remote_version: u64,
    idle: Duration,
    broken: bool,
}

impl ServeClient {
    /// Start `cmd` (its stdin, stdout and stderr are taken over) and shake
    /// hands. Paths are printed and parsed in the store dir `dir`, which
    /// must be the remote's.
    pub fn spawn(mut cmd: Command, dir: StoreDir) -> Result<ServeClient, RemoteError> {
        let program = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| RemoteError::Spawn {
            program: program.clone(),
            source,
        })?;
        let watch = Arc::new(Watch {
            timeout_ms: AtomicU64::new(DEFAULT_IDLE_TIMEOUT.as_millis() as u64),
            active: AtomicBool::new(false),
            last: Mutex::new(Instant::now()),
            fired: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut child_stderr = child.stderr.take().expect("piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = child_stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
                k.extend_from_slice(&buf[..n]);
                if k.len() > STDERR_KEPT {
                    let cut = k.len() - STDERR_KEPT;
                    k.drain(..cut);
                }
            }
        });
        let child = Arc::new(Mutex::new(child));
        let watchdog = {
            let watch = watch.clone();
            let child = child.clone();
            std::thread::spawn(move || {
                while !watch.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    let ms = watch.timeout_ms.load(Ordering::Relaxed);
                    if ms == 0 || !watch.active.load(Ordering::Relaxed) {
                        continue;
                    }
                    let idle = watch
                        .last
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .elapsed();
                    if idle > Duration::from_millis(ms) {
                        watch.fired.store(true, Ordering::Relaxed);
                        let _ = child.lock().unwrap_or_else(|p| p.into_inner()).kill();
                        break;
                    }
                }
            })
        };
        let mut client = ServeClient {
            dir,
            program,
            child,
            to: BufWriter::with_capacity(
                1 << 16,
                WatchedIn {
                    inner: Some(stdin),
                    watch: watch.clone(),
                },
            ),
            from: BufReader::with_capacity(
                1 << 16,
                Watched {
                    inner: stdout,
                    watch: watch.clone(),
                },
            ),
            stderr,
            stderr_thread: Some(stderr_thread),
            watch,
            watchdog: Some(watchdog),
            remote_version: 0,
            idle: DEFAULT_IDLE_TIMEOUT,
            broken: false,
        };
        client.remote_version = client.op("the handshake", |c| {
            wire::write_u64(&mut c.to, SERVE_MAGIC_1)?;
            wire::write_u64(&mut c.to, SERVE_PROTOCOL_VERSION)?;
            c.to.flush()?;
            let magic = wire::read_u64(&mut c.from)?;
            if magic != SERVE_MAGIC_2 {
                return Err(bad(format!(
                    "it answered {magic:#x} instead of the serve protocol's magic {SERVE_MAGIC_2:#x}"
                )));
            }
            let version = wire::read_u64(&mut c.from)?;
            if version & 0xff00 != 0x200 {
                return Err(bad(format!(
                    "it speaks serve protocol {}.{}, kiln speaks 2.x",
                    version >> 8,
                    version & 0xff
                )));
            }
            Ok(version)
        })?;
        Ok(client)
    }

    /// The idle timeout of every operation (default
    /// [`DEFAULT_IDLE_TIMEOUT`]); `None` waits forever, as Nix does.
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.idle = timeout.unwrap_or(Duration::ZERO);
        self.watch
            .timeout_ms
            .store(self.idle.as_millis() as u64, Ordering::Relaxed);
    }

    /// The remote's protocol version (`0x2NN`).
    pub fn remote_version(&self) -> u64 {
        self.remote_version
    }

    /// The minor version both sides speak.
    fn minor(&self) -> u64 {
        super::minor(self.remote_version).min(super::minor(SERVE_PROTOCOL_VERSION))
    }

    /// What the remote printed on stderr (its end).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Run one exchange with the watchdog's clock running; an I/O error
    /// breaks the connection.
    fn op<T>(
        &mut self,
        context: &str,
        f: impl FnOnce(&mut Self) -> io::Result<T>,
    ) -> Result<T, RemoteError> {
        if self.broken {
            return Err(RemoteError::Other(format!(
                "{context}: the connection to `{}` failed earlier",
                self.program
            )));
        }
        self.watch.touch();
        self.watch.active.store(true, Ordering::Relaxed);
        let result = f(self);
        self.watch.active.store(false, Ordering::Relaxed);
        result.map_err(|e| self.connection_error(context, e))
    }

    fn connection_error(&mut self, context: &str, source: io::Error) -> RemoteError {
        self.broken = true;
        // Stop the remote and collect the rest of its stderr.
        let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).kill();
        // Wait a moment for the rest of its stderr, but not for ever: a
        // grandchild of the remote command may still hold stderr open.
        if let Some(t) = self.stderr_thread.take() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        let stderr = self.stderr();
        let context = format!("{context} with `{}`", self.program);
        if self.watch.fired.load(Ordering::Relaxed) {
            return RemoteError::Timeout {
                context,
                seconds: self.watch.timeout_ms.load(Ordering::Relaxed).div_ceil(1000),
                stderr,
            };
        }
        let source = if source.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the remote closed the connection",
            )
        } else {
            source
        };
        RemoteError::Connection {
            context,
            source,
            stderr,
        }
    }

    /// Which of `paths` are valid on the remote.
    pub fn query_valid_paths(
        &mut self,
        paths: &[StorePath],
    ) -> Result<BTreeSet<StorePath>, RemoteError> {
        self.op("querying valid paths", |c| {
            wire::write_u64(&mut c.to, Cmd::QueryValidPaths as u64)?;
            wire::write_bool(&mut c.to, false)?; // lock
            wire::write_bool(&mut c.to, false)?; // substitute
            wire::write_paths(&mut c.to, &c.dir, paths.iter())?;
            c.to.flush()?;
            let valid = wire::read_paths(&mut c.from, &c.dir)?;
            let asked: BTreeSet<&StorePath> = paths.iter().collect();
            if let Some(p) = valid.iter().find(|p| !asked.contains(p)) {
                return Err(bad(format!(
                    "it called {} valid, which was not asked",
                    c.dir.display(p)
                )));
            }
            Ok(valid)
        })
    }

    /// The closure of `paths` on the remote (QueryClosure; outputs of
    /// derivations not included).
    pub fn query_closure(
        &mut self,
        paths: &[StorePath],
    ) -> Result<BTreeSet<StorePath>, RemoteError> {
        self.op("querying a closure", |c| {
            wire::write_u64(&mut c.to, Cmd::QueryClosure as u64)?;
            wire::write_bool(&mut c.to, false)?;
            wire::write_paths(&mut c.to, &c.dir, paths.iter())?;
            c.to.flush()?;
            wire::read_paths(&mut c.from, &c.dir)
        })
    }

    /// What the remote knows of `paths` (the valid ones only).
    pub fn query_path_infos(
        &mut self,
        paths: &[StorePath],
    ) -> Result<Vec<WirePathInfo>, RemoteError> {
        if self.minor() < 4 {
            return Err(RemoteError::Protocol(format!(
                "the remote speaks serve protocol 2.{}; NAR hashes need 2.4 or later",
                self.minor()
            )));
        }
        self.op("querying path infos", |c| {
            wire::write_u64(&mut c.to, Cmd::QueryPathInfos as u64)?;
            wire::write_paths(&mut c.to, &c.dir, paths.iter())?;
            c.to.flush()?;
            let mut infos = Vec::new();
            loop {
                let path = wire::read_string(&mut c.from)?;
                if path.is_empty() {
                    break;
                }
                let path = wire::parse_path(&c.dir, &path)?;
                let deriver = wire::read_opt_path(&mut c.from, &c.dir)?;
                let references = wire::read_paths(&mut c.from, &c.dir)?;
                let download_size = wire::read_u64(&mut c.from)?;
                let nar_size = wire::read_u64(&mut c.from)?;
                let hash = wire::read_string(&mut c.from)?;
                let nar_hash = Hash::parse(&hash, Some(HashAlgo::Sha256)).map_err(|e| {
                    bad(format!(
                        "NAR hash {hash:?} of {}: {e}",
                        c.dir.display(&path)
                    ))
                })?;
                let ca = wire::read_string(&mut c.from)?;
                let sigs = wire::read_strings(&mut c.from)?;
                infos.push(WirePathInfo {
                    path,
                    deriver,
                    references,
                    download_size,
                    nar_size,
                    nar_hash,
                    ca,
                    sigs,
                });
            }
            Ok(infos)
        })
    }

    /// Send the paths of `paths_in_reference_order` (references before
    /// referrers; each valid in `store`) that the remote lacks. Each NAR
    /// is hashed while it is sent: a local path whose files no longer give
    /// its registered hash stops the copy (and the connection).
    pub fn copy_to(
        &mut self,
        store: &Store,
        paths_in_reference_order: &[StorePath],
    ) -> Result<(), RemoteError> {
        let present = self.query_valid_paths(paths_in_reference_order)?;
        for path in paths_in_reference_order {
            if present.contains(path) {
                continue;
            }
            let info = store
                .path_info(path)?
                .ok_or_else(|| StoreError::NotValid(store.print_path(path)))?;
            self.send_path(store, &info)?;
        }
        Ok(())
    }

    fn send_path(&mut self, store: &Store, info: &ValidPathInfo) -> Result<(), RemoteError> {
        let printed = store.print_path(&info.path);
        let real = store.real_path(&info.path);
        let mut nar_error = None;
        let context = format!("sending {printed}");
        let minor = self.minor();
        self.op(&context, |c| {
            let dir = c.dir.clone();
            let deriver = info
                .deriver
                .as_ref()
                .map(|d| dir.display(d))
                .unwrap_or_default();
            if minor >= 5 {
                wire::write_u64(&mut c.to, Cmd::AddToStoreNar as u64)?;
                wire::write_str(&mut c.to, printed.as_bytes())?;
                wire::write_str(&mut c.to, deriver.as_bytes())?;
                wire::write_str(&mut c.to, info.nar_hash.to_base16().as_bytes())?;
                wire::write_paths(&mut c.to, &dir, info.references.iter())?;
                wire::write_u64(&mut c.to, info.registration_time.max(0) as u64)?;
                wire::write_u64(&mut c.to, info.nar_size)?;
                wire::write_bool(&mut c.to, false)?; // ultimate
                wire::write_strings(&mut c.to, info.signatures.iter())?;
                wire::write_str(&mut c.to, info.ca.as_deref().unwrap_or("").as_bytes())?;
                nar_error = c.send_nar(&real, info)?;
                if nar_error.is_some() {
                    return Ok(0);
                }
            } else {
                wire::write_u64(&mut c.to, Cmd::ImportPaths as u64)?;
                wire::write_u64(&mut c.to, 1)?;
                nar_error = c.send_nar(&real, info)?;
                if nar_error.is_some() {
                    return Ok(0);
                }
                wire::write_u64(&mut c.to, wire::EXPORT_MAGIC)?;
                wire::write_str(&mut c.to, printed.as_bytes())?;
                wire::write_paths(&mut c.to, &dir, info.references.iter())?;
                wire::write_str(&mut c.to, deriver.as_bytes())?;
                wire::write_u64(&mut c.to, 0)?; // no legacy signature
                wire::write_u64(&mut c.to, 0)?; // no next path
            }
            c.to.flush()?;
            wire::read_u64(&mut c.from)
        })
        .and_then(|answer| {
            if let Some(e) = nar_error.take() {
                return Err(e);
            }
            if answer != 1 {
                return Err(RemoteError::Protocol(format!(
                    "it answered {answer} to adding {printed}"
                )));
            }
            Ok(())
        })
    }

    /// Dump the NAR of `real` into the connection, hashing it; a mismatch
    /// with `info` (or a failure to read the files) is returned as `Some`
    /// after breaking the connection, so that the remote never sees a
    /// complete, wrong path.
    fn send_nar(
        &mut self,
        real: &std::path::Path,
        info: &ValidPathInfo,
    ) -> io::Result<Option<RemoteError>> {
        let mut hashing = HashingWriter {
            inner: &mut self.to,
            hasher: Hasher::new(HashAlgo::Sha256),
            count: 0,
            write_error: None,
        };
        let dumped = kiln_store::nar::writer::dump_path(real, &mut hashing);
        let (hash, count) = (hashing.hasher.finish(), hashing.count);
        if let (Err(e), Some(kind)) = (&dumped, hashing.write_error) {
            // The remote went away (or refused and exited) mid-NAR.
            return Err(io::Error::new(kind, e.to_string()));
        }
        let problem = match dumped {
            Err(kiln_store::NarError::Io { source, .. })
                if matches!(
                    source.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(source);
            }
            Err(e) => Some(format!("reading {}: {e}", real.display())),
            Ok(_) if hash != info.nar_hash || count != info.nar_size => Some(format!(
                "{} has NAR hash {} and size {count} on disk, its registration says {} and {}: \
                 it is corrupt (run `kiln store verify --check-contents`)",
                real.display(),
                hash.to_typed_nix32(),
                info.nar_hash.to_typed_nix32(),
                info.nar_size
            )),
            Ok(_) => None,
        };
        if let Some(p) = problem {
            self.broken = true;
            let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).kill();
            return Ok(Some(RemoteError::Other(p)));
        }
        Ok(None)
    }

    /// Build `drv` (a derivation without input derivations: see
    /// [`basic_derivation`]) on the remote, whose store must hold its
    /// inputs (`copy_to` them first). The outputs stay on the remote:
    /// [`ServeClient::copy_from`] fetches them.
    pub fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: &Derivation,
        options: &BuildOptions,
    ) -> Result<RemoteBuildResult, RemoteError> {
        if !drv.input_drvs.is_empty() {
            return Err(RemoteError::Other(format!(
                "{} still names input derivations: resolve it with basic_derivation first",
                self.dir.display(drv_path)
            )));
        }
        let minor = self.minor();
        let printed = self.dir.display(drv_path);
        let idle = self.idle;
        let context = format!("building {printed}");
        let result = self.op(&context, |c| {
            wire::write_u64(&mut c.to, Cmd::BuildDerivation as u64)?;
            wire::write_str(&mut c.to, printed.as_bytes())?;
            wire::write_basic_derivation(&mut c.to, &c.dir, drv)?;
            c.write_build_settings(options, minor)?;
            c.to.flush()?;
            // The build may be silent for as long as it runs.
            c.watch.timeout_ms.store(
                if options.build_timeout > 0 && !idle.is_zero() {
                    (options.build_timeout * 1000).saturating_add(idle.as_millis() as u64)
                } else {
                    0
                },
                Ordering::Relaxed,
            );
            let status = wire::read_u64(&mut c.from);
            c.watch
                .timeout_ms
                .store(idle.as_millis() as u64, Ordering::Relaxed);
            let status = status?;
            let error_msg = wire::read_string(&mut c.from)?;
            let mut result = RemoteBuildResult {
                status,
                error_msg,
                times_built: 0,
                is_non_deterministic: false,
                start_time: 0,
                stop_time: 0,
                built_outputs: BTreeMap::new(),
            };
            if minor >= 3 {
                result.times_built = wire::read_u64(&mut c.from)?;
                result.is_non_deterministic = wire::read_bool(&mut c.from)?;
                result.start_time = wire::read_u64(&mut c.from)? as i64;
                result.stop_time = wire::read_u64(&mut c.from)? as i64;
            }
            if minor >= 6 {
                let n = wire::read_u64(&mut c.from)?;
                if n > wire::MAX_LIST {
                    return Err(bad(format!("{n} built outputs")));
                }
                for _ in 0..n {
                    let id = wire::read_string(&mut c.from)?;
                    let realisation = wire::read_string(&mut c.from)?;
                    result.built_outputs.insert(id, realisation);
                }
            }
            Ok(result)
        })?;
        Ok(result)
    }

    /// Build on the remote the derivations (`DRV!OUT,…` or paths) named
    /// by `paths`, whose `.drv` closures the remote must have (BuildPaths).
    /// `Ok(None)` on success, `Ok(Some((status, message)))` when a build failed.
    pub fn build_paths(
        &mut self,
        paths: &[String],
        options: &BuildOptions,
    ) -> Result<Option<(u64, String)>, RemoteError> {
        let minor = self.minor();
        let idle = self.idle;
        self.op("building paths", |c| {
            wire::write_u64(&mut c.to, Cmd::BuildPaths as u64)?;
            wire::write_strings(&mut c.to, paths.iter())?;
            c.write_build_settings(options, minor)?;
            c.to.flush()?;
            c.watch.timeout_ms.store(0, Ordering::Relaxed);
            let status = wire::read_u64(&mut c.from);
            c.watch
                .timeout_ms
                .store(idle.as_millis() as u64, Ordering::Relaxed);
            match status? {
                0 => Ok(None),
                n => Ok(Some((n, wire::read_string(&mut c.from)?))),
            }
        })
    }

    fn write_build_settings(&mut self, o: &BuildOptions, minor: u64) -> io::Result<()> {
        wire::write_u64(&mut self.to, o.max_silent_time)?;
        wire::write_u64(&mut self.to, o.build_timeout)?;
        if minor >= 2 {
            wire::write_u64(&mut self.to, o.max_log_size)?;
        }
        if minor >= 3 {
            wire::write_u64(&mut self.to, o.build_repeat)?;
            wire::write_bool(&mut self.to, o.enforce_determinism)?;
        }
        if minor >= 7 {
            wire::write_bool(&mut self.to, o.keep_failed)?;
        }
        Ok(())
    }

    /// Copy `paths` and their closure from the remote into `store`: the
    /// path infos are asked, each missing NAR is dumped, unpacked into a
    /// temp dir of the store and checked against its NAR hash and size
    /// while it streams, and the whole lot is installed in one
    /// [`Store::install`] batch. Nothing is registered if anything fails.
    pub fn copy_from(&mut self, store: &Store, paths: &[StorePath]) -> Result<(), RemoteError> {
        let closure = self.query_closure(paths)?;
        if let Some(p) = paths.iter().find(|p| !closure.contains(p)) {
            return Err(RemoteError::Refused(format!(
                "{} is not in the closure it sent for it (is it valid there?)",
                store.print_path(p)
            )));
        }
        let closure: Vec<StorePath> = closure.into_iter().collect();
        // Hold what is valid here already until the install is done.
        store.add_temp_roots(&closure)?;
        let valid = store.valid_among(&closure)?;
        let missing: Vec<StorePath> = closure
            .iter()
            .zip(valid)
            .filter(|(_, v)| !v)
            .map(|(p, _)| p.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let infos = self.query_path_infos(&missing)?;
        let mut by_path: BTreeMap<StorePath, WirePathInfo> = BTreeMap::new();
        let in_closure: BTreeSet<&StorePath> = closure.iter().collect();
        for info in infos {
            if !missing.contains(&info.path) {
                return Err(RemoteError::Refused(format!(
                    "it sent the path info of {}, which was not asked",
                    store.print_path(&info.path)
                )));
            }
            if let Some(r) = info.references.iter().find(|r| !in_closure.contains(r)) {
                return Err(RemoteError::Refused(format!(
                    "{} refers to {}, which is not in the closure it sent",
                    store.print_path(&info.path),
                    store.print_path(r)
                )));
            }
            by_path.insert(info.path.clone(), info);
        }
        if let Some(p) = missing.iter().find(|p| !by_path.contains_key(p)) {
            return Err(RemoteError::Refused(format!(
                "it sent no path info for {}, which is in the closure it sent",
                store.print_path(p)
            )));
        }
        let now = kiln_store::clock::unix_now();
        let mut batch = Vec::with_capacity(by_path.len());
        let mut temps = Vec::with_capacity(by_path.len());
        for (path, info) in by_path {
            let printed = store.print_path(&path);
            let context = format!("receiving {printed}");
            let received = self.op(&context, |c| {
                wire::write_u64(&mut c.to, Cmd::DumpStorePath as u64)?;
                wire::write_str(&mut c.to, printed.as_bytes())?;
                c.to.flush()?;
                match receive_nar(store, &mut c.from) {
                    Ok(r) => Ok(Ok(r)),
                    Err(ReceiveError::Io(e)) => Err(e),
                    Err(e) => Ok(Err(e)),
                }
            })?;
            let received = match received {
                Ok(r) => r,
                Err(e) => {
                    self.abandon();
                    return Err(RemoteError::Refused(format!("the NAR of {printed}: {e}")));
                }
            };
            if received.nar_hash != info.nar_hash || received.nar_size != info.nar_size {
                self.abandon();
                return Err(RemoteError::Refused(format!(
                    "the NAR of {printed} has hash {} and size {}, the remote's path info says {} and {}",
                    received.nar_hash.to_typed_nix32(),
                    received.nar_size,
                    info.nar_hash.to_typed_nix32(),
                    info.nar_size
                )));
            }
            batch.push(NewPath {
                info: ValidPathInfo {
                    path,
                    nar_hash: info.nar_hash,
                    nar_size: info.nar_size,
                    deriver: info.deriver,
                    references: info.references,
                    registration_time: now,
                    ca: (!info.ca.is_empty()).then_some(info.ca),
                    signatures: info.sigs,
                },
                content: Staged::Tree {
                    path: received.tree(),
                    canonical: false,
                },
            });
            temps.push(received);
        }
        store.install(batch, Locking::Take)?;
        drop(temps);
        Ok(())
    }

    /// After a refusal the stream is at an unknown place: stop the remote.
    fn abandon(&mut self) {
        self.broken = true;
        let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).kill();
    }

    /// Close the connection: the remote sees EOF and exits. Returns its
    /// exit status.
    pub fn close(mut self) -> Result<std::process::ExitStatus, RemoteError> {
        let _ = self.to.flush();
        drop(self.to.get_mut().inner.take());
        self.watch.stop.store(true, Ordering::Relaxed);
        let status = self.child.lock().unwrap_or_else(|p| p.into_inner()).wait();
        status.map_err(|source| RemoteError::Connection {
            context: format!("waiting for `{}`", self.program),
            source,
            stderr: self.stderr(),
        })
    }
}

impl Drop for ServeClient {
    fn drop(&mut self) {
        self.watch.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        drop(self.to.get_mut().inner.take());
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `drv` as the remote builds it: no input derivations, and as input
/// sources every path the builder uses (its sources and the used outputs
/// of its input derivations, read from `store`), as Nix's build hook sends it.
pub fn basic_derivation(store: &Store, drv: &Derivation) -> Result<Derivation, RemoteError> {
    let mut basic = drv.clone();
    basic.input_drvs = BTreeMap::new();
    for (input, wanted) in &drv.input_drvs {
        let input_drv = kiln_builder::plan::read_derivation(store, input)
            .map_err(|e| RemoteError::Other(e.to_string()))?;
        let outputs = kiln_builder::outputs::output_paths(&store.print_path(input), &input_drv)
            .map_err(|e| RemoteError::Other(e.to_string()))?;
        for name in wanted {
            let path = outputs.get(name).ok_or_else(|| {
                RemoteError::Other(format!("{} has no output {name}", store.print_path(input)))
            })?;
            basic.input_srcs.insert(path.clone());
        }
    }
    Ok(basic)
}

struct HashingWriter<'a, W> {
    inner: &'a mut W,
    hasher: Hasher,
    count: u64,
    /// The first error writing to the remote: the NAR writer wraps it in
    /// its own error, and the connection needs to know it was the pipe.
    write_error: Option<io::ErrorKind>,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.inner.write(buf) {
            Ok(n) => n,
            Err(e) => {
                self.write_error.get_or_insert(e.kind());
                return Err(e);
            }
        };
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
