//! What can go wrong, and whose fault it is.

use kiln_builder::BuildError;
use kiln_eval::EvalFailure;
use kiln_store::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The evaluation failed (rendered with its source lines).
    #[error("{0}")]
    Eval(EvalFailure),
    #[error("{action}: {source}")]
    Store {
        action: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{0}")]
    Build(Box<BuildError>),
    /// Builds failed; the caller has shown which.
    #[error("{0} build(s) failed")]
    BuildsFailed(usize),
    #[error("no derivation found: the expression must give one (use -A ATTR to choose)")]
    NoDerivation,
    #[error(
        "the expression gives {} derivations, a shell or `kiln run` takes one: choose it with -A ATTR ({})",
        .0.len(),
        .0.join(", ")
    )]
    ManyDerivations(Vec<String>),
    /// The user's input is wrong (exit code 2), with what to do instead.
    #[error("{0}")]
    Usage(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl ShellError {
    pub fn store(action: impl Into<String>, source: StoreError) -> ShellError {
        ShellError::Store {
            action: action.into(),
            source: Box::new(source),
        }
    }

    pub fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ShellError {
        let path = path.display().to_string();
        move |source| ShellError::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the user's input is at fault (the CLI's exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            ShellError::Usage(_) | ShellError::NoDerivation | ShellError::ManyDerivations(_) => {
                true
            }
            ShellError::Store { source, .. } => source.is_bad_input(),
            _ => false,
        }
    }
}

impl From<BuildError> for ShellError {
    fn from(err: BuildError) -> ShellError {
        ShellError::Build(Box::new(err))
    }
}
