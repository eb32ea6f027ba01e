//! The remote side: [`serve`] answers the serve protocol on a pair of
//! streams (`kiln store serve --stdio`: stdin and stdout, over ssh).
//!
//! Everything received enters the store through [`Store::install`]: NARs
//! are unpacked into a temp dir of the store while they are hashed and
//! counted (AddToStoreNar: against the NAR hash and size sent; ImportPaths:
//! the hash is computed, the export format carries none), every `.drv` is
//! checked by the install. Builds run in kiln's sandbox through
//! `kiln_builder`, their inputs and outputs held by temp GC roots. Without
//! `write`, ImportPaths, AddToStoreNar, BuildPaths and BuildDerivation are
//! refused as `nix-store --serve` refuses them: the error goes to stderr
//! and the server stops. Nothing but the protocol is written to the output.

use std::collections::BTreeSet;
use std::io::{self, BufReader, BufWriter, Read, Write};

use kiln_builder::{Failure, RealiseOptions};
use kiln_store::store::{Locking, NewPath, Staged, Store, StoreError, ValidPathInfo};
use kiln_store::{Hash, HashAlgo, StorePath};

use super::receive::{ReceiveError, Received, receive_nar};
use super::wire;
use super::{Command, SERVE_MAGIC_1, SERVE_MAGIC_2, SERVE_PROTOCOL_VERSION, status};

/// How the server runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Allow the commands that write to the store (`--write`).
    pub write: bool,
    /// `NIX_BUILD_CORES` of each build.
    pub cores: u32,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The client went away or sent something that is not the protocol.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A write command without `--write`.
    #[error("{0} is not allowed (run with --write)")]
    NotAllowed(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the client sent is refused (nothing of it was registered).
    #[error("{0}")]
    Refused(String),
}

fn io_err(context: &str) -> impl FnOnce(io::Error) -> ServeError + '_ {
    move |source| ServeError::Io {
        context: context.to_string(),
        source,
    }
}

/// Serve `store` on `input`/`output` until the client closes `input`.
pub fn serve(
    store: &Store,
    input: impl Read,
    output: impl Write,
    options: &ServeOptions,
) -> Result<(), ServeError> {
    let mut server = Server {
        store,
        from: BufReader::with_capacity(1 << 16, input),
        to: BufWriter::with_capacity(1 << 16, output),
        options,
        client_version: 0,
    };
    server.run()
}

struct Server<'a, R: Read, W: Write> {
    store: &'a Store,
    from: BufReader<R>,
    to: BufWriter<W>,
    options: &'a ServeOptions,
    client_version: u64,
}

/// Build settings as sent (Nix's names).
struct Settings {
    max_silent_time: u64,
    build_timeout: u64,
}

impl<R: Read, W: Write> Server<'_, R, W> {
    fn run(&mut self) -> Result<(), ServeError> {
        let magic = wire::read_u64(&mut self.from).map_err(io_err("reading the greeting"))?;
        if magic != SERVE_MAGIC_1 {
            return Err(ServeError::Refused("protocol mismatch".to_string()));
        }
        wire::write_u64(&mut self.to, SERVE_MAGIC_2).map_err(io_err("greeting"))?;
        wire::write_u64(&mut self.to, SERVE_PROTOCOL_VERSION).map_err(io_err("greeting"))?;
        self.to.flush().map_err(io_err("greeting"))?;
        self.client_version =
            wire::read_u64(&mut self.from).map_err(io_err("reading the client's version"))?;
        loop {
            let cmd = match wire::read_u64(&mut self.from) {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(io_err("reading a command")(e)),
            };
            let cmd = Command::from_u64(cmd)
                .ok_or_else(|| ServeError::Refused(format!("unknown serve command {cmd}")))?;
            self.command(cmd)?;
            self.to.flush().map_err(io_err("answering"))?;
        }
    }

    fn minor(&self) -> u64 {
        super::minor(self.client_version).min(super::minor(SERVE_PROTOCOL_VERSION))
    }

    fn command(&mut self, cmd: Command) -> Result<(), ServeError> {
        let dir = self.store.store_dir().clone();
        let ctx = format!("{cmd:?}");
        let e = |e| io_err(&ctx)(e);
        match cmd {
            Command::QueryValidPaths => {
                let lock = wire::read_bool(&mut self.from).map_err(e)?;
                let _substitute = wire::read_bool(&mut self.from).map_err(e)?;
                let paths: Vec<StorePath> = wire::read_paths(&mut self.from, &dir)
                    .map_err(e)?
                    .into_iter()
                    .collect();
                if lock && self.options.write {
                    self.store.add_temp_roots(&paths)?;
                }
                let valid = self.store.valid_among(&paths)?;
                let valid: BTreeSet<&StorePath> = paths
                    .iter()
                    .zip(valid)
                    .filter(|(_, v)| *v)
                    .map(|(p, _)| p)
                    .collect();
                wire::write_paths(&mut self.to, &dir, valid.into_iter()).map_err(e)?;
            }
            Command::QueryPathInfos => {
                let paths = wire::read_paths(&mut self.from, &dir).map_err(e)?;
                for path in paths {
                    let Some(info) = self.store.path_info(&path)? else {
                        continue;
                    };
                    self.write_info(&info).map_err(e)?;
                }
                wire::write_str(&mut self.to, b"").map_err(e)?;
            }
            Command::DumpStorePath => {
                let path = wire::read_path(&mut self.from, &dir).map_err(e)?;
                self.require_valid(&path)?;
                kiln_store::nar::writer::dump_path(&self.store.real_path(&path), &mut self.to)
                    .map_err(|err| {
                        ServeError::Refused(format!("dumping {}: {err}", dir.display(&path)))
                    })?;
            }
            Command::ImportPaths => {
                if !self.options.write {
                    return Err(ServeError::NotAllowed("importing paths"));
                }
                self.import_paths()?;
                wire::write_u64(&mut self.to, 1).map_err(e)?;
            }
            Command::ExportPaths => {
                let _sign = wire::read_u64(&mut self.from).map_err(e)?;
                let paths = wire::read_paths(&mut self.from, &dir).map_err(e)?;
                for p in &paths {
                    self.require_valid(p)?;
                }
                for path in self.store.topo_sort(&paths)? {
                    let info = self
                        .store
                        .path_info(&path)?
                        .ok_or_else(|| StoreError::NotValid(self.store.print_path(&path)))?;
                    wire::write_u64(&mut self.to, 1).map_err(e)?;
                    kiln_store::nar::writer::dump_path(&self.store.real_path(&path), &mut self.to)
                        .map_err(|err| {
                            ServeError::Refused(format!("dumping {}: {err}", dir.display(&path)))
                        })?;
                    wire::write_u64(&mut self.to, wire::EXPORT_MAGIC).map_err(e)?;
                    wire::write_str(&mut self.to, dir.display(&path).as_bytes()).map_err(e)?;
                    wire::write_paths(&mut self.to, &dir, info.references.iter()).map_err(e)?;
                    let deriver = info
                        .deriver
                        .as_ref()
                        .map(|d| dir.display(d))
                        .unwrap_or_default();
                    wire::write_str(&mut self.to, deriver.as_bytes()).map_err(e)?;
                    wire::write_u64(&mut self.to, 0).map_err(e)?;
                }
                wire::write_u64(&mut self.to, 0).map_err(e)?;
            }
            Command::BuildPaths => {
                if !self.options.write {
                    return Err(ServeError::NotAllowed("building paths"));
                }
                let specs = wire::read_strings(&mut self.from).map_err(e)?;
                let settings = self.read_settings().map_err(e)?;
                match self.build_paths(&specs, &settings) {
                    Ok(()) => wire::write_u64(&mut self.to, 0).map_err(e)?,
                    Err(message) => {
                        wire::write_u64(&mut self.to, 1).map_err(e)?;
                        wire::write_str(&mut self.to, message.as_bytes()).map_err(e)?;
                    }
                }
            }
            Command::QueryClosure => {
                let include_outputs = wire::read_bool(&mut self.from).map_err(e)?;
                let paths: Vec<StorePath> = wire::read_paths(&mut self.from, &dir)
                    .map_err(e)?
                    .into_iter()
                    .collect();
                for p in &paths {
                    self.require_valid(p)?;
                }
                let mut closure = self.store.closure(&paths)?;
                if include_outputs {
                    let drvs: Vec<StorePath> = closure
                        .iter()
                        .filter(|p| p.name().ends_with(".drv"))
                        .cloned()
                        .collect();
                    let mut outputs = Vec::new();
                    for d in drvs {
                        for (_, out) in self.store.derivation_outputs(&d)? {
                            outputs.push(out);
                        }
                    }
                    let valid = self.store.valid_among(&outputs)?;
                    let outputs: Vec<StorePath> = outputs
                        .into_iter()
                        .zip(valid)
                        .filter(|(_, v)| *v)
                        .map(|(p, _)| p)
                        .collect();
                    closure.extend(self.store.closure(&outputs)?);
                }
                wire::write_paths(&mut self.to, &dir, closure.iter()).map_err(e)?;
            }
            Command::BuildDerivation => {
                if !self.options.write {
                    return Err(ServeError::NotAllowed("building paths"));
                }
                let drv_path = wire::read_path(&mut self.from, &dir).map_err(e)?;
                if !drv_path.name().ends_with(".drv") {
                    return Err(ServeError::Refused(format!(
                        "{} is not a derivation path",
                        dir.display(&drv_path)
                    )));
                }
                let drv = wire::read_basic_derivation(&mut self.from, &dir).map_err(e)?;
                let settings = self.read_settings().map_err(e)?;
                let result = self.build_derivation(&drv_path, drv, &settings);
                let minor = self.minor();
                wire::write_u64(&mut self.to, result.0).map_err(e)?;
                wire::write_str(&mut self.to, result.1.as_bytes()).map_err(e)?;
                if minor >= 3 {
                    let built = result.0 == status::BUILT;
                    wire::write_u64(&mut self.to, built as u64).map_err(e)?;
                    wire::write_bool(&mut self.to, false).map_err(e)?;
                    wire::write_u64(&mut self.to, result.2 as u64).map_err(e)?;
                    wire::write_u64(&mut self.to, result.3 as u64).map_err(e)?;
                }
                if minor >= 6 {
                    // Realisations are for content-addressed derivations,
                    // which kiln does not build; none.
                    wire::write_u64(&mut self.to, 0).map_err(e)?;
                }
            }
            Command::AddToStoreNar => {
                if !self.options.write {
                    return Err(ServeError::NotAllowed("importing paths"));
                }
                self.add_to_store_nar()?;
                wire::write_u64(&mut self.to, 1).map_err(e)?;
            }
        }
        Ok(())
    }

    fn require_valid(&self, path: &StorePath) -> Result<(), ServeError> {
        if !self.store.is_valid(path)? {
            return Err(StoreError::NotValid(self.store.print_path(path)).into());
        }
        Ok(())
    }

    fn write_info(&mut self, info: &ValidPathInfo) -> io::Result<()> {
        let dir = self.store.store_dir();
        wire::write_str(&mut self.to, dir.display(&info.path).as_bytes())?;
        let deriver = info
            .deriver
            .as_ref()
            .map(|d| dir.display(d))
            .unwrap_or_default();
        wire::write_str(&mut self.to, deriver.as_bytes())?;
        wire::write_paths(&mut self.to, dir, info.references.iter())?;
        wire::write_u64(&mut self.to, info.nar_size)?; // "download size"
        wire::write_u64(&mut self.to, info.nar_size)?;
        if self.minor() >= 4 {
            wire::write_str(&mut self.to, info.nar_hash.to_typed_nix32().as_bytes())?;
            wire::write_str(&mut self.to, info.ca.as_deref().unwrap_or("").as_bytes())?;
            wire::write_strings(&mut self.to, info.signatures.iter())?;
        }
        Ok(())
    }

    fn read_settings(&mut self) -> io::Result<Settings> {
        let max_silent_time = wire::read_u64(&mut self.from)?;
        let build_timeout = wire::read_u64(&mut self.from)?;
        let minor = self.minor();
        if minor >= 2 {
            let _max_log_size = wire::read_u64(&mut self.from)?;
        }
        if minor >= 3 {
            let _build_repeat = wire::read_u64(&mut self.from)?;
            let _enforce_determinism = wire::read_u64(&mut self.from)?;
        }
        if minor >= 7 {
            let _keep_failed = wire::read_u64(&mut self.from)?;
        }
        Ok(Settings {
            max_silent_time,
            build_timeout,
        })
    }

    fn realise_options(&self, settings: &Settings) -> RealiseOptions {
        let secs = |n: u64| (n > 0).then(|| std::time::Duration::from_secs(n));
        RealiseOptions {
            jobs: 1,
            cores: self.options.cores.max(1),
            limits: kiln_builder::supervise::Limits {
                timeout: secs(settings.build_timeout),
                max_silent: secs(settings.max_silent_time),
            },
            ..RealiseOptions::default()
        }
    }

    /// BuildPaths: `DRV!OUT,…`, `DRV` or a path that must be valid.
    fn build_paths(&mut self, specs: &[String], settings: &Settings) -> Result<(), String> {
        let dir = self.store.store_dir().clone();
        let mut drvs = Vec::new();
        for spec in specs {
            let base = spec.split('!').next().unwrap_or(spec);
            let path = dir.parse_path(base).map_err(|e| format!("{spec:?}: {e}"))?;
            if path.name().ends_with(".drv") {
                drvs.push(path);
            } else if !self.store.is_valid(&path).map_err(|e| e.to_string())? {
                return Err(format!(
                    "path '{}' is not valid and kiln's server does not substitute",
                    dir.display(&path)
                ));
            }
        }
        let options = self.realise_options(settings);
        let realised =
            kiln_builder::realise(self.store, &drvs, &options, &kiln_builder::events::Silent)
                .map_err(|e| e.to_string())?;
        failure_message(&realised).map_or(Ok(()), Err)
    }

    /// BuildDerivation: (status, message, start, stop).
    fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: kiln_store::Derivation,
        settings: &Settings,
    ) -> (u64, String, i64, i64) {
        let options = self.realise_options(settings);
        let start = kiln_store::clock::unix_now();
        let result = kiln_builder::realise_basic(
            self.store,
            drv_path,
            drv,
            &options,
            &kiln_builder::events::Silent,
        );
        let stop = kiln_store::clock::unix_now();
        match result {
            Ok(r) if r.ok() && r.built == 0 => (status::ALREADY_VALID, String::new(), start, stop),
            Ok(r) => match failure_message(&r) {
                None => (status::BUILT, String::new(), start, stop),
                Some(m) => {
                    let timed_out = m.contains("timed out") || m.contains("silent");
                    let s = if timed_out {
                        status::TIMED_OUT
                    } else {
                        status::PERMANENT_FAILURE
                    };
                    (s, m, start, stop)
                }
            },
            Err(e) => (status::MISC_FAILURE, e.to_string(), start, stop),
        }
    }

    /// ImportPaths: the export format, installed as one batch.
    fn import_paths(&mut self) -> Result<(), ServeError> {
        let dir = self.store.store_dir().clone();
        let ctx = "reading ImportPaths";
        let mut batch = Vec::new();
        let mut temps: Vec<Received> = Vec::new();
        let now = kiln_store::clock::unix_now();
        loop {
            match wire::read_u64(&mut self.from).map_err(io_err(ctx))? {
                0 => break,
                1 => {}
                n => {
                    return Err(ServeError::Refused(format!(
                        "input doesn't look like something created by 'nix-store --export' (got {n})"
                    )));
                }
            }
            let received = self.receive()?;
            let magic = wire::read_u64(&mut self.from).map_err(io_err(ctx))?;
            if magic != wire::EXPORT_MAGIC {
                return Err(ServeError::Refused(
                    "Nix archive cannot be imported; wrong format".to_string(),
                ));
            }
            let path = wire::read_path(&mut self.from, &dir).map_err(io_err(ctx))?;
            let references = wire::read_paths(&mut self.from, &dir).map_err(io_err(ctx))?;
            let deriver = wire::read_opt_path(&mut self.from, &dir).map_err(io_err(ctx))?;
            if wire::read_u64(&mut self.from).map_err(io_err(ctx))? == 1 {
                let _legacy_signature = wire::read_string(&mut self.from).map_err(io_err(ctx))?;
            }
            batch.push(NewPath {
                info: ValidPathInfo {
                    path,
                    nar_hash: received.nar_hash,
                    nar_size: received.nar_size,
                    deriver,
                    references,
                    registration_time: now,
                    ca: None,
                    signatures: Vec::new(),
                },
                content: Staged::Tree {
                    path: received.tree(),
                    canonical: false,
                },
            });
            temps.push(received);
        }
        self.store.install(batch, Locking::Take)?;
        drop(temps);
        Ok(())
    }

    /// AddToStoreNar: one path with its metadata, its NAR checked against
    /// the hash and size sent.
    fn add_to_store_nar(&mut self) -> Result<(), ServeError> {
        let dir = self.store.store_dir().clone();
        let ctx = "reading AddToStoreNar";
        let path = wire::read_path(&mut self.from, &dir).map_err(io_err(ctx))?;
        let deriver = wire::read_opt_path(&mut self.from, &dir).map_err(io_err(ctx))?;
        let hash = wire::read_string(&mut self.from).map_err(io_err(ctx))?;
        let nar_hash = Hash::parse(&hash, Some(HashAlgo::Sha256))
            .map_err(|err| ServeError::Refused(format!("NAR hash {hash:?}: {err}")))?;
        let references = wire::read_paths(&mut self.from, &dir).map_err(io_err(ctx))?;
        let registration_time = wire::read_u64(&mut self.from).map_err(io_err(ctx))?;
        let nar_size = wire::read_u64(&mut self.from).map_err(io_err(ctx))?;
        let _ultimate = wire::read_u64(&mut self.from).map_err(io_err(ctx))?;
        let signatures = wire::read_strings(&mut self.from).map_err(io_err(ctx))?;
        let ca = wire::read_string(&mut self.from).map_err(io_err(ctx))?;
        if nar_size == 0 {
            return Err(ServeError::Refused(
                "narInfo is too old and missing the narSize field".to_string(),
            ));
        }
        let printed = dir.display(&path);
        let received = {
            let mut limited = (&mut self.from).take(nar_size);
            let r = receive_nar(self.store, &mut limited);
            r.map_err(|err| match err {
                ReceiveError::Io(source) => ServeError::Io {
                    context: format!("receiving the NAR of {printed}"),
                    source,
                },
                other => ServeError::Refused(format!("the NAR of {printed}: {other}")),
            })?
        };
        if received.nar_hash != nar_hash || received.nar_size != nar_size {
            return Err(ServeError::Refused(format!(
                "hash mismatch importing path '{printed}': the NAR has hash {} and size {}, the client said {} and {nar_size}",
                received.nar_hash.to_typed_nix32(),
                received.nar_size,
                nar_hash.to_typed_nix32()
            )));
        }
        let info = ValidPathInfo {
            path,
            nar_hash,
            nar_size,
            deriver,
            references,
            registration_time: registration_time.min(i64::MAX as u64) as i64,
            ca: (!ca.is_empty()).then_some(ca),
            signatures,
        };
        self.store.install(
            vec![NewPath {
                info,
                content: Staged::Tree {
                    path: received.tree(),
                    canonical: false,
                },
            }],
            Locking::Take,
        )?;
        drop(received);
        Ok(())
    }

    fn receive(&mut self) -> Result<Received, ServeError> {
        receive_nar(self.store, &mut self.from).map_err(|err| match err {
            ReceiveError::Io(source) => ServeError::Io {
                context: "receiving a NAR".to_string(),
                source,
            },
            other => ServeError::Refused(other.to_string()),
        })
    }
}

/// The failures of a run, one line each, or `None`.
fn failure_message(r: &kiln_builder::Realised) -> Option<String> {
    if r.ok() {
        return None;
    }
    Some(
        r.failures
            .iter()
            .map(|(drv, f)| match f {
                Failure::Build(e) => format!("builder for '{drv}' failed: {e}"),
                Failure::Dependency(d) => format!("{drv}: dependency {d} failed"),
                Failure::NotStarted => format!("{drv}: not started"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
