//! Nix's `nix-store --serve` protocol (serve protocol 2.7, as Nix 2.8
//! speaks it): what kiln and Nix machines use to copy closures to each
//! other and build remotely over ssh.
//!
//! ```text
//! wire.rs     the encoding: u64, padded strings, lists, BasicDerivation, export format
//! receive.rs  a NAR from the wire into a store temp dir, hashed and counted
//! client.rs   ServeClient: a spawned command (ssh … serve) as a remote store
//! server.rs   serve(): `kiln store serve --stdio`, the remote side
//! ```
//!
//! The handshake: the client sends [`SERVE_MAGIC_1`] and its version, the
//! server answers [`SERVE_MAGIC_2`] and its own; each side then speaks the
//! lower minor version. Commands are a u64 ([`Command`]) and their
//! arguments; a server that cannot carry one out writes the error to its
//! stderr and exits, as `nix-store --serve` does.

pub mod client;
pub mod receive;
pub mod server;
pub mod wire;

use kiln_store::store::StoreError;

pub use client::{BuildOptions, RemoteBuildResult, ServeClient, basic_derivation};
pub use server::{ServeOptions, serve};

pub const SERVE_MAGIC_1: u64 = 0x390c_9deb;
pub const SERVE_MAGIC_2: u64 = 0x5452_eecb;
/// Major 2, minor 7: what Nix 2.8's `nix-store --serve` announces.
pub const SERVE_PROTOCOL_VERSION: u64 = 0x207;

/// The minor part of a protocol version.
pub fn minor(version: u64) -> u64 {
    version & 0xff
}

/// A command of the serve protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Command {
    QueryValidPaths = 1,
    QueryPathInfos = 2,
    DumpStorePath = 3,
    ImportPaths = 4,
    ExportPaths = 5,
    BuildPaths = 6,
    QueryClosure = 7,
    BuildDerivation = 8,
    AddToStoreNar = 9,
}

impl Command {
    pub fn from_u64(n: u64) -> Option<Command> {
        use Command::*;
        Some(match n {
            1 => QueryValidPaths,
            2 => QueryPathInfos,
            3 => DumpStorePath,
            4 => ImportPaths,
            5 => ExportPaths,
            6 => BuildPaths,
            7 => QueryClosure,
            8 => BuildDerivation,
            9 => AddToStoreNar,
            _ => return None,
        })
    }
}

/// Nix's `BuildResult::Status` values.
pub mod status {
    pub const BUILT: u64 = 0;
    pub const SUBSTITUTED: u64 = 1;
    pub const ALREADY_VALID: u64 = 2;
    pub const PERMANENT_FAILURE: u64 = 3;
    pub const INPUT_REJECTED: u64 = 4;
    pub const OUTPUT_REJECTED: u64 = 5;
    pub const TRANSIENT_FAILURE: u64 = 6;
    pub const CACHED_FAILURE: u64 = 7;
    pub const TIMED_OUT: u64 = 8;
    pub const MISC_FAILURE: u64 = 9;
    pub const DEPENDENCY_FAILED: u64 = 10;
    pub const LOG_LIMIT_EXCEEDED: u64 = 11;
    pub const NOT_DETERMINISTIC: u64 = 12;
    pub const RESOLVES_TO_ALREADY_VALID: u64 = 13;
    pub const NO_SUBSTITUTERS: u64 = 14;

    /// Nix's name of a status, for messages.
    pub fn name(status: u64) -> &'static str {
        match status {
            BUILT => "Built",
            SUBSTITUTED => "Substituted",
            ALREADY_VALID => "AlreadyValid",
            PERMANENT_FAILURE => "PermanentFailure",
            INPUT_REJECTED => "InputRejected",
            OUTPUT_REJECTED => "OutputRejected",
            TRANSIENT_FAILURE => "TransientFailure",
            CACHED_FAILURE => "CachedFailure",
            TIMED_OUT => "TimedOut",
            MISC_FAILURE => "MiscFailure",
            DEPENDENCY_FAILED => "DependencyFailed",
            LOG_LIMIT_EXCEEDED => "LogLimitExceeded",
            NOT_DETERMINISTIC => "NotDeterministic",
            RESOLVES_TO_ALREADY_VALID => "ResolvesToAlreadyValid",
            NO_SUBSTITUTERS => "NoSubstituters",
            _ => "unknown status",
        }
    }

    /// Whether the outputs are there (built, substituted or valid already).
    pub fn success(status: u64) -> bool {
        matches!(
            status,
            BUILT | SUBSTITUTED | ALREADY_VALID | RESOLVES_TO_ALREADY_VALID
        )
    }
}

/// What went wrong talking to a remote store.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed (EOF, broken pipe, garbage): the remote is
    /// unusable from now on. `stderr` is the end of what it printed.
    #[error("{context}: {source}{}", stderr_note(stderr))]
    Connection {
        context: String,
        #[source]
        source: std::io::Error,
        stderr: String,
    },
    #[error(
        "{context}: no answer from the remote for {seconds} s; stopped it{}",
        stderr_note(stderr)
    )]
    Timeout {
        context: String,
        seconds: u64,
        stderr: String,
    },
    #[error("the remote does not speak the serve protocol: {0}")]
    Protocol(String),
    /// The remote sent something kiln refuses (wrong hash, a bad NAR, a
    /// path not asked for, …). Nothing of it was registered.
    #[error("refused what the remote sent: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

fn stderr_note(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!("\nthe remote said:\n{s}")
    }
}
