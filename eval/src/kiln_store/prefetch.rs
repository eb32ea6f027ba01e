//! Asking the database which queued text files are valid already, on a
//! second thread while evaluation goes on.
//!
//! A warm `kiln instantiate` of a large package set writes nothing: every
//! `.drv` is valid. The one database question it must still ask, once per
//! derivation, used to run at the flush on the evaluation thread. Here the
//! paths are sent to a worker in batches as they are queued (one message
//! and one wake-up per batch, not per path); it answers each batch in one
//! read transaction and the flush collects the answers, in the order the
//! paths were asked.
//!
//! The answer is a hint, as it was before: a path that becomes valid in
//! between is written again with the same bytes (an atomic rename) and
//! registered again in the flush's transaction.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use kiln_store::StorePath;
use kiln_store::store::{Store, StoreError};

use crate::store::StoreError as EvalStoreError;

/// Paths sent to the worker at once.
const BATCH: usize = 256;

pub(super) struct ValidityPrefetch {
    batch: Vec<StorePath>,
    sender: Sender<Vec<StorePath>>,
    worker: JoinHandle<Result<Vec<bool>, StoreError>>,
}

impl ValidityPrefetch {
    /// Start a worker for `store`; `None` if no thread can be started (the
    /// flush then asks the database itself).
    pub(super) fn start(store: Arc<Store>) -> Option<ValidityPrefetch> {
        let (sender, receiver) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("kiln-validity".into())
            .spawn(move || answer(&store, &receiver))
            .ok()?;
        Some(ValidityPrefetch {
            batch: Vec::with_capacity(BATCH),
            sender,
            worker,
        })
    }

    /// Queue one store path.
    pub(super) fn ask(&mut self, path: StorePath) {
        self.batch.push(path);
        if self.batch.len() == BATCH {
            self.send_batch();
        }
    }

    fn send_batch(&mut self) {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        // A worker that stopped early (a database error) reports it at
        // `finish`; sending to it then fails, which is fine.
        let _ = self.sender.send(batch);
    }

    /// Whether each path asked is valid, in the order asked.
    pub(super) fn finish(mut self) -> Result<Vec<bool>, EvalStoreError> {
        if !self.batch.is_empty() {
            self.send_batch();
        }
        drop(self.sender);
        match self.worker.join() {
            Ok(answers) => Ok(answers?),
            Err(_) => Err(EvalStoreError::WorkerPanicked),
        }
    }
}

/// The worker: answer batches until the sender is dropped.
fn answer(store: &Store, receiver: &Receiver<Vec<StorePath>>) -> Result<Vec<bool>, StoreError> {
    let mut answers = Vec::new();
    while let Ok(batch) = receiver.recv() {
        // Held against a collector before asking: a path found valid here
        // is not written again at the flush. A `.drv` registered but
        // deleted by hand counts as not valid, so the flush writes it back.
        store.add_temp_roots(&batch)?;
        let valid = store.present_among(&batch)?;
        answers.extend(valid);
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::StoreDir;
    use kiln_store::store::StoreConfig;

    #[test]
    fn answers_in_the_order_asked() {
        let root = tempfile::tempdir().expect("temp root");
        let store = Store::open(StoreConfig {
            root: root.path().to_path_buf(),
            store_dir: StoreDir::new("/nix/store").expect("dir"),
        })
        .expect("open store");
        let source = root.path().join("file");
        std::fs::write(&source, "x").expect("write");
        let added = store.add_path(&source, "file").expect("add");
        let valid = added;
        let missing = StorePath::from_base_name("00000000000000000000000000000000-missing")
            .expect("a store path");
        let mut prefetch = ValidityPrefetch::start(Arc::new(store)).expect("worker");
        let asked: Vec<StorePath> = (0..1500)
            .map(|i| {
                if i % 3 == 0 {
                    valid.clone()
                } else {
                    missing.clone()
                }
            })
            .collect();
        for path in &asked {
            prefetch.ask(path.clone());
        }
        let answers = prefetch.finish().expect("answers");
        let expected: Vec<bool> = (0..1500).map(|i| i % 3 == 0).collect();
        assert_eq!(answers, expected);
    }
}
