//! Removing finished builds' scratch directories off the critical path.
//!
//! Deleting a build's temp dir (its scratch store with the sandbox's mount
//! points, `/build`, `/etc`) costs several metadata operations; in a chain
//! of builds that time would be paid between every two builds. A
//! background thread does it instead, and [`Cleaner::finish`] waits for it
//! before the run ends. If kiln dies first, the next kiln removes the stale
//! temp dirs (their liveness locks are gone).

use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use kiln_store::store::temp::TempDir;

pub struct Cleaner {
    tx: Mutex<Option<Sender<TempDir>>>,
    worker: Option<JoinHandle<()>>,
}

impl Cleaner {
    pub fn new() -> Cleaner {
        let (tx, rx) = channel::<TempDir>();
        let worker = std::thread::Builder::new()
            .name("kiln-cleanup".into())
            .spawn(move || {
                // Dropping a TempDir removes it.
                for temp in rx {
                    drop(temp);
                }
            })
            .ok();
        Cleaner {
            tx: Mutex::new(Some(tx)),
            worker,
        }
    }

    /// Remove `temp` soon (right now if the worker could not start).
    pub fn discard(&self, temp: TempDir) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) if self.worker.is_some() => {
                if let Err(returned) = tx.send(temp) {
                    drop(returned.0);
                }
            }
            _ => drop(temp),
        }
    }

    /// Wait until everything discarded is removed.
    pub fn finish(mut self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Default for Cleaner {
    fn default() -> Self {
        Cleaner::new()
    }
}
