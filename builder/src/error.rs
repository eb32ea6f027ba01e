//! Errors of realisation. Each variant names the derivation or file at
//! fault and carries what a user needs to act on it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "bubblewrap (bwrap) is not installed; kiln builds every derivation in a \
         bwrap sandbox. Install it, e.g. `apt-get install bubblewrap`"
    )]
    NoBwrap,

    #[error(
        "bubblewrap cannot create the sandbox's namespaces: {0}\n\
         Enable unprivileged user namespaces, e.g. \
         `sysctl -w kernel.unprivileged_userns_clone=1` and \
         `sysctl -w user.max_user_namespaces=15000` (on Ubuntu 24.04 also \
         `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`)"
    )]
    NoUserNamespaces(String),

    #[error("could not start bwrap for {drv}: {source}")]
    Spawn {
        drv: String,
        #[source]
        source: std::io::Error,
    },

    /// Setting up a sandbox failed before the builder started.
    #[error("cannot set up the sandbox: {message}")]
    Sandbox { message: String },

    #[error("builder for '{drv}' failed: {outcome}")]
    BuilderFailed {
        drv: String,
        /// How it ended ("builder exited with status 1", a signal, a timeout).
        outcome: String,
        /// It was stopped by `--timeout` or `--max-silent-time`.
        timed_out: bool,
        /// The last lines of its log.
        log_tail: Vec<String>,
        /// The build directory, kept with `--keep-failed`.
        kept: Option<PathBuf>,
    },

    #[error("builder for '{drv}' did not produce output '{output}' ({path})")]
    MissingOutput {
        drv: String,
        output: String,
        path: String,
    },

    #[error("{0}")]
    HashMismatch(Box<HashMismatch>),

    #[error(
        "fixed-output derivation '{drv}' refers to the store path {reference}, which is not allowed"
    )]
    FixedOutputReferences { drv: String, reference: String },

    #[error("output '{output}' of '{drv}' is not allowed to refer to {reference} ({attr})")]
    ReferenceRule {
        drv: String,
        output: String,
        attr: &'static str,
        reference: String,
    },

    #[error("{source}\nthe build directory is kept at {}", dir.display())]
    KeptBuildDir {
        #[source]
        source: Box<BuildError>,
        dir: PathBuf,
    },

    #[error("derivation '{drv}': bad __sandboxPaths item '{item}': {why}")]
    SandboxPath {
        drv: String,
        item: String,
        why: String,
    },

    #[error("cannot build '{drv}': {what} are not supported yet")]
    Unsupported { drv: String, what: &'static str },

    #[error("build log {} is corrupt at byte {offset}", path.display())]
    LogCorrupt { path: PathBuf, offset: u64 },

    /// An error of the store (database, NAR, formats), with what kiln was
    /// doing when it happened.
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A `.drv` that is malformed or names paths its contents do not give
    /// (see `kiln_store::derivation::check`).
    #[error(transparent)]
    Derivation(#[from] kiln_store::derivation::DerivationError),

    #[error("{0}")]
    Other(String),
}

/// What a failed build counts as for Nix 2.8's exit code (`nix-build`
/// exits 100 for a failed build, +1 when one timed out, +2 for a hash
/// mismatch): see [`BuildError::failure_kind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureKind {
    /// The derivation's build failed (its builder, its outputs).
    pub build: bool,
    /// It was stopped by `--timeout` or `--max-silent-time`.
    pub timed_out: bool,
    /// A fixed output had another hash than declared.
    pub hash_mismatch: bool,
}

impl BuildError {
    /// How Nix counts this failure: a failure of the build itself, or
    /// (all `false`) of kiln, the store or the sandbox around it.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            BuildError::BuilderFailed { timed_out, .. } => FailureKind {
                build: true,
                timed_out: *timed_out,
                hash_mismatch: false,
            },
            BuildError::HashMismatch(_) => FailureKind {
                build: true,
                timed_out: false,
                hash_mismatch: true,
            },
            BuildError::MissingOutput { .. }
            | BuildError::FixedOutputReferences { .. }
            | BuildError::ReferenceRule { .. } => FailureKind {
                build: true,
                ..FailureKind::default()
            },
            BuildError::KeptBuildDir { source, .. } => source.failure_kind(),
            _ => FailureKind::default(),
        }
    }

    pub fn store(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BuildError {
        BuildError::Store {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> BuildError {
        BuildError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A fixed output whose contents do not have the declared hash.
#[derive(Debug)]
pub struct HashMismatch {
    pub drv: String,
    pub path: String,
    pub expected: kiln_store::Hash,
    pub actual: kiln_store::Hash,
}

impl std::fmt::Display for HashMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hash mismatch in fixed-output derivation '{}':\n  path:      {}\n  \
             specified: {}\n             {}\n  got:       {}\n             {}",
            self.drv,
            self.path,
            self.expected.to_sri(),
            self.expected.to_typed_nix32(),
            self.actual.to_sri(),
            self.actual.to_typed_nix32()
        )
    }
}
