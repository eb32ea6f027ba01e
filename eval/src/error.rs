//! Evaluation errors.
//!
//! An [`EvalError`] is a kind (what went wrong, no location), the span of
//! the expression that failed, and a trace of what was being evaluated
//! ("while evaluating the attribute 'x'"), innermost first, added as the
//! error travels up. Every kind has a stable code (`E001`…) that tests and
//! users can match on. `throw`, failed assertions and missing search-path
//! entries are *catchable* by `builtins.tryEval`; everything else is fatal.

use std::fmt;
use std::sync::Arc;

use crate::span::Span;
use crate::store::StoreError;

pub type EvalResult<T> = Result<T, EvalError>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("{0}")]
    Throw(String),
    #[error("evaluation aborted with the following error message: '{0}'")]
    Abort(String),
    #[error("assertion '{0}' failed")]
    AssertionFailed(String),
    #[error("value is {got} while {expected} was expected")]
    TypeError {
        expected: &'static str,
        got: &'static str,
    },
    #[error("attribute '{name}' missing{}{}", suggest(.suggestions), fetcher_hint(.name))]
    MissingAttribute {
        name: String,
        suggestions: Vec<String>,
    },
    /// A name of a `-A` path that is missing (Nix's wording, which scripts
    /// such as nixpkgs' module tests match).
    #[error("attribute '{name}' in selection path '{path}' not found{}", suggest(.suggestions))]
    MissingInSelectionPath {
        name: String,
        path: String,
        suggestions: Vec<String>,
    },
    #[error("undefined variable '{name}'{hint}", name = .0, hint = fetcher_hint(.0))]
    UndefinedVariable(String),
    #[error("infinite recursion encountered")]
    InfiniteRecursion,
    #[error("stack overflow (possible infinite recursion)")]
    StackOverflow,
    #[error("division by zero")]
    DivisionByZero,
    #[error("integer overflow in {0}")]
    IntegerOverflow(&'static str),
    #[error("{function} called without required argument '{name}'")]
    MissingArgument { function: String, name: String },
    #[error("{function} called with unexpected argument '{name}'")]
    UnexpectedArgument { function: String, name: String },
    #[error("cannot coerce {0} to a string")]
    NotCoercibleToString(&'static str),
    #[error("file '{0}' was not found in the search path (add it with -I, KILN_PATH or NIX_PATH)")]
    SearchPathNotFound(String),
    #[error("{0}")]
    Io(String),
    /// The store side failed (see [`crate::store::StoreError`]).
    #[error("{0}")]
    Store(StoreFailure),
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    InvalidValue(String),
}

/// A [`StoreError`] in an [`ErrorKind`]: shared, so errors stay cheap to
/// clone; two are equal when they are the same failure.
#[derive(Debug, Clone)]
pub struct StoreFailure(pub Arc<StoreError>);

impl PartialEq for StoreFailure {
    fn eq(&self, other: &StoreFailure) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<StoreError> for EvalError {
    fn from(e: StoreError) -> EvalError {
        EvalError::new(ErrorKind::Store(StoreFailure(Arc::new(e))), None)
    }
}

/// What to do instead of Nix's fetchers, which kiln leaves out on
/// purpose: evaluation has no network.
fn fetcher_hint(name: &str) -> &'static str {
    const FETCHERS: &[&str] = &[
        "fetchurl",
        "fetchTarball",
        "fetchGit",
        "fetchMercurial",
        "fetchTree",
        "__fetchurl",
    ];
    if FETCHERS.contains(&name) {
        "; kiln does not download during evaluation: write a fixed-output \
         derivation (one with `outputHash`); only its builder gets the network"
    } else {
        ""
    }
}

fn suggest(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("; did you mean '{one}'?"),
        many => {
            let quoted: Vec<String> = many.iter().map(|n| format!("'{n}'")).collect();
            format!("; did you mean one of {}?", quoted.join(", "))
        }
    }
}

impl ErrorKind {
    /// The stable code of this kind.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Throw(_) => "E001",
            ErrorKind::Abort(_) => "E002",
            ErrorKind::AssertionFailed(_) => "E003",
            ErrorKind::TypeError { .. } => "E004",
            ErrorKind::MissingAttribute { .. } | ErrorKind::MissingInSelectionPath { .. } => "E005",
            ErrorKind::UndefinedVariable(_) => "E006",
            ErrorKind::InfiniteRecursion => "E007",
            ErrorKind::StackOverflow => "E008",
            ErrorKind::DivisionByZero => "E009",
            ErrorKind::IntegerOverflow(_) => "E010",
            ErrorKind::MissingArgument { .. } => "E011",
            ErrorKind::UnexpectedArgument { .. } => "E012",
            ErrorKind::NotCoercibleToString(_) => "E013",
            ErrorKind::SearchPathNotFound(_) => "E014",
            // A store error was an I/O error before it had a type: same code.
            ErrorKind::Io(_) | ErrorKind::Store(_) => "E015",
            ErrorKind::Parse(_) => "E016",
            ErrorKind::InvalidValue(_) => "E017",
        }
    }

    /// Whether `builtins.tryEval` catches this kind.
    pub fn is_catchable(&self) -> bool {
        matches!(
            self,
            ErrorKind::Throw(_) | ErrorKind::AssertionFailed(_) | ErrorKind::SearchPathNotFound(_)
        )
    }
}

/// One "while …" line of an error trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceFrame {
    pub message: String,
    pub span: Option<Span>,
    /// A frame of kiln's own machinery ("while calling the builtin
    /// 'getAttr'") rather than of what the user wrote; the short trace
    /// folds these.
    pub builtin: bool,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    span: Option<Span>,
    /// Related places, shown after the error's own (a parse error's
    /// "first defined here").
    labels: Vec<(Span, String)>,
    trace: Vec<TraceFrame>,
}

/// An evaluation error (boxed so `Result`s stay small on the hot path).
#[derive(Debug, Clone)]
pub struct EvalError(Box<Inner>);

/// The most "while …" lines kept; deep recursion would otherwise produce
/// thousands of identical frames.
const MAX_TRACE: usize = 64;

impl EvalError {
    pub fn new(kind: ErrorKind, span: Option<Span>) -> EvalError {
        EvalError(Box::new(Inner {
            kind,
            span,
            labels: Vec::new(),
            trace: Vec::new(),
        }))
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    pub fn span(&self) -> Option<Span> {
        self.0.span
    }

    /// Related places (see [`EvalError::with_label`]).
    pub fn labels(&self) -> &[(Span, String)] {
        &self.0.labels
    }

    /// Add a related place with its text ("first defined here").
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> EvalError {
        self.0.labels.push((span, text.into()));
        self
    }

    pub fn trace(&self) -> &[TraceFrame] {
        &self.0.trace
    }

    /// Give the error a position if it has none yet.
    pub fn at(mut self, span: Span) -> EvalError {
        if self.0.span.is_none() {
            self.0.span = Some(span);
        }
        self
    }

    /// Add a "while …" frame (outer frames are added later, so the trace
    /// reads innermost first).
    pub fn context(self, message: impl Into<String>, span: Option<Span>) -> EvalError {
        self.push_frame(message.into(), span, false)
    }

    /// Add the frame of a call of builtin `name` (folded in short traces).
    pub fn builtin_context(self, name: &str, span: Option<Span>) -> EvalError {
        self.push_frame(format!("while calling the builtin '{name}'"), span, true)
    }

    fn push_frame(mut self, message: String, span: Option<Span>, builtin: bool) -> EvalError {
        if self.0.trace.len() < MAX_TRACE {
            self.0.trace.push(TraceFrame {
                message,
                span,
                builtin,
            });
        }
        self
    }

    pub fn is_catchable(&self) -> bool {
        self.0.kind.is_catchable()
    }

    /// The trace as a user wants to read it: a frame repeated in a row
    /// (same message, same place) is one group with a count, and so is a
    /// cycle of up to [`TRACE_CYCLE`] frames (mutual recursion: `f` calls
    /// `g` calls `f` …) repeated in a row.
    pub fn condensed_trace(&self) -> Vec<TraceGroup> {
        condense(&self.0.trace)
    }
}

/// The longest cycle of frames [`EvalError::condensed_trace`] folds.
pub const TRACE_CYCLE: usize = 4;

/// Frames of a trace that repeat: `frames` (one, or a cycle) happened
/// `times` times in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceGroup {
    pub frames: Vec<TraceFrame>,
    pub times: usize,
}

fn condense(trace: &[TraceFrame]) -> Vec<TraceGroup> {
    let same = |a: &TraceFrame, b: &TraceFrame| a.message == b.message && a.span == b.span;
    // How many times the block of `k` frames at `i` repeats in a row.
    let repeats = |i: usize, k: usize| {
        let mut times = 1;
        while i + (times + 1) * k <= trace.len()
            && (0..k).all(|j| same(&trace[i + j], &trace[i + times * k + j]))
        {
            times += 1;
        }
        times
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < trace.len() {
        // The block covering the most frames; the shortest among equals.
        let (k, times) = (1..=TRACE_CYCLE.min(trace.len() - i))
            .map(|k| (k, repeats(i, k)))
            .filter(|&(k, times)| k == 1 || times > 1)
            .max_by_key(|&(k, times)| (if times > 1 { k * times } else { 1 }, usize::MAX - k))
            .expect("k = 1 always qualifies");
        out.push(TraceGroup {
            frames: trace[i..i + k].to_vec(),
            times,
        });
        i += k * times;
    }
    out
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.kind)
    }
}

impl std::error::Error for EvalError {}

impl From<ErrorKind> for EvalError {
    fn from(kind: ErrorKind) -> EvalError {
        EvalError::new(kind, None)
    }
}

/// Shorthand for an error result without a position.
pub fn fail<T>(kind: ErrorKind) -> EvalResult<T> {
    Err(EvalError::new(kind, None))
}

/// The names closest to `wanted` among `candidates`, for "did you mean".
pub fn closest_names<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.len() / 3).max(1) + 1;
    let mut scored: Vec<(usize, &str)> = candidates
        .map(|c| (edit_distance(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_owned())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            let cost = usize::from(ca != b[j]);
            row[j + 1] = (prev + cost).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetchers_explain_what_to_do_instead() {
        let undefined = ErrorKind::UndefinedVariable("fetchTarball".into()).to_string();
        assert!(undefined.contains("fixed-output derivation"), "{undefined}");
        let missing = ErrorKind::MissingAttribute {
            name: "fetchurl".into(),
            suggestions: Vec::new(),
        }
        .to_string();
        assert!(missing.contains("outputHash"), "{missing}");
        let other = ErrorKind::UndefinedVariable("fetchSomething".into()).to_string();
        assert_eq!(other, "undefined variable 'fetchSomething'");
    }

    #[test]
    fn traces_condense_repeats_and_cycles() {
        let frame = |m: &str| TraceFrame {
            message: m.into(),
            span: None,
            builtin: false,
        };
        let names = |groups: &[TraceGroup]| -> Vec<(String, usize)> {
            groups
                .iter()
                .map(|g| {
                    let m: Vec<&str> = g.frames.iter().map(|f| f.message.as_str()).collect();
                    (m.join(","), g.times)
                })
                .collect()
        };
        let trace: Vec<TraceFrame> = ["t", "a", "a", "a", "f", "g", "f", "g", "f", "g", "x"]
            .into_iter()
            .map(frame)
            .collect();
        assert_eq!(
            names(&condense(&trace)),
            [
                ("t".into(), 1),
                ("a".into(), 3),
                ("f,g".into(), 3),
                ("x".into(), 1)
            ]
        );
        assert!(condense(&[]).is_empty());
        // A cycle seen once is no cycle.
        let once: Vec<TraceFrame> = ["f", "g", "h"].into_iter().map(frame).collect();
        assert_eq!(condense(&once).len(), 3);
    }

    #[test]
    fn suggestions_pick_near_names() {
        let names = ["version", "src", "name", "buildInputs"];
        assert_eq!(closest_names("verison", names.into_iter()), ["version"]);
        assert!(closest_names("zzzzzz", names.into_iter()).is_empty());
    }

    #[test]
    fn codes_are_distinct_and_catchability_is_right() {
        assert!(ErrorKind::Throw("x".into()).is_catchable());
        assert!(!ErrorKind::Abort("x".into()).is_catchable());
        assert_ne!(
            ErrorKind::DivisionByZero.code(),
            ErrorKind::InfiniteRecursion.code()
        );
    }
}
