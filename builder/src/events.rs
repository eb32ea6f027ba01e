//! What a realisation reports while it runs, for the CLI's progress view.
//!
//! The builder never prints; it calls an [`Observer`], from several build
//! threads at once.

/// Receives progress events. Every method has a do-nothing default.
pub trait Observer: Sync {
    /// The derivations that will be built, by full `.drv` path.
    fn planned(&self, _drvs: &[String]) {}
    /// A build starts (`name` is the derivation's name, e.g. `hello-1.0`).
    fn started(&self, _drv: &str, _name: &str) {}
    /// A complete line of a build's output.
    fn log_line(&self, _drv: &str, _name: &str, _line: &str) {}
    /// A derivation's outputs turned out valid when its lock was taken:
    /// another process built it meanwhile.
    fn built_elsewhere(&self, _drv: &str, _name: &str) {}
    /// A build ended (successfully or not).
    fn finished(&self, _drv: &str, _name: &str, _ok: bool) {}
    /// Polled while builds run: true stops the run as a failure does
    /// without `--keep-going` (running builds are killed, their temp dirs
    /// removed, nothing new starts). The CLI says so when its stderr or
    /// stdout was closed.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}
