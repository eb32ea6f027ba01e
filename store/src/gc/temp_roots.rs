//! Temporary roots: the paths a running kiln process uses.
//!
//! A path that a process is building, installing, importing or has just
//! produced by an evaluation is not referenced by any permanent root yet
//! (a `result` link is made only after the build registers the output).
//! Such a process records the path in its own *temp roots file*,
//! `STATE/temproots/<pid>-<n>`, before it checks whether the path is valid
//! and before it writes anything; the collector keeps every path named in
//! the file of a live process.
//!
//! Two locks make this race-free:
//!
//! - `STATE/gc.lock`: a process appends to its file under a shared `flock`
//!   of it; the collector holds it exclusively while it reads the roots,
//!   decides what is dead and invalidates it. So a root is either in a
//!   file when the collector reads it, or it is added after the collector
//!   is done deciding (and then the process finds the path invalid and
//!   makes it again).
//! - The file itself: its owner holds an exclusive `flock` on it as long as
//!   the [`crate::store::Store`] lives (the kernel drops it when the
//!   process dies, even by SIGKILL). If the collector can lock a file, its
//!   owner is dead and the file is deleted. Files are created under the
//!   shared `gc.lock`, so the collector never sees one that is not locked
//!   yet.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::FlockOperation;

use crate::store::StoreError;

/// `STATE/gc.lock`.
pub(crate) fn gc_lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("gc.lock")
}

/// `STATE/temproots`.
pub(crate) fn temp_roots_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("temproots")
}

/// This process's temp roots for one open store (created on first use).
#[derive(Default)]
pub(crate) struct TempRoots {
    held: Mutex<Option<Held>>,
}

struct Held {
    /// `STATE/gc.lock`, kept open; locked shared only while appending.
    gc_lock: File,
    /// Our roots file (append-only), locked exclusively while we live.
    file: File,
    path: PathBuf,
    /// What is in the file already.
    added: HashSet<String>,
}

impl TempRoots {
    /// Record `paths` (full logical paths) as roots of this process,
    /// waiting while a collector decides what is dead.
    pub(crate) fn add(&self, state_dir: &Path, paths: &[String]) -> Result<(), StoreError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let fresh: Vec<&String> = match held.as_ref() {
            Some(h) => paths.iter().filter(|p| !h.added.contains(*p)).collect(),
            None => paths.iter().collect(),
        };
        if fresh.is_empty() {
            return Ok(());
        }
        let lock_path = gc_lock_path(state_dir);
        let gc_lock = match held.as_ref() {
            Some(h) => h.gc_lock.try_clone(),
            None => open_gc_lock(state_dir),
        }
        .map_err(StoreError::io("opening", &lock_path))?;
        let lock_err = StoreError::io("locking", &lock_path);
        // Threads of this process are serialised by the mutex, so the one
        // open file description's shared lock is taken and dropped by one
        // thread at a time.
        flock(&gc_lock, FlockOperation::LockShared).map_err(lock_err)?;
        let result = (|| {
            if held.is_none() {
                *held = Some(Held::create(state_dir, gc_lock.try_clone()?)?);
            }
            let h = held.as_mut().expect("created above");
            let mut text = String::new();
            for path in &fresh {
                text.push_str(path);
                text.push('\n');
            }
            // One write(2) with O_APPEND: the collector (which reads only
            // under the exclusive gc.lock) never sees half of it.
            h.file.write_all(text.as_bytes())?;
            h.added.extend(fresh.iter().map(|p| (*p).clone()));
            Ok::<_, io::Error>(())
        })();
        let unlocked = flock(&gc_lock, FlockOperation::Unlock);
        let dir = temp_roots_dir(state_dir);
        result.map_err(StoreError::io("recording temporary GC roots in", &dir))?;
        unlocked.map_err(StoreError::io("unlocking", &lock_path))
    }
}

impl Held {
    /// Create our file (called under the shared gc.lock).
    fn create(state_dir: &Path, gc_lock: File) -> io::Result<Held> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = temp_roots_dir(state_dir);
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // A file of this name belongs to a dead process whose pid we got.
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)?;
        flock(&file, FlockOperation::LockExclusive)?;
        Ok(Held {
            gc_lock,
            file,
            path,
            added: HashSet::new(),
        })
    }
}

impl Drop for TempRoots {
    fn drop(&mut self) {
        let held = self.held.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = held.take() {
            // Our roots end with the store handle; a collector that reads
            // the file meanwhile merely keeps them once more.
            let _ = fs::remove_file(&h.path);
        }
    }
}

fn open_gc_lock(state_dir: &Path) -> io::Result<File> {
    fs::create_dir_all(state_dir)?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_CLOEXEC)
        .open(gc_lock_path(state_dir))
}

pub(crate) fn flock(file: &File, op: FlockOperation) -> io::Result<()> {
    loop {
        match rustix::fs::flock(file, op) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The exclusive `gc.lock` of a collector: no process adds a temp root
/// while it is held.
pub(crate) struct GcLock {
    _file: File,
}

impl GcLock {
    /// Wait for the lock (for a running collector, and for processes in
    /// the middle of adding a temp root).
    pub(crate) fn exclusive(state_dir: &Path) -> Result<GcLock, StoreError> {
        let path = gc_lock_path(state_dir);
        let file = open_gc_lock(state_dir).map_err(StoreError::io("opening", &path))?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                tracing::info!("waiting for another garbage collector to finish");
                flock(&file, FlockOperation::LockExclusive)
                    .map_err(StoreError::io("locking", &path))?;
            }
            Err(e) => return Err(StoreError::io("locking", &path)(e.into())),
        }
        Ok(GcLock { _file: file })
    }
}

/// The temp roots of one live process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRoots {
    pub pid: u32,
    /// Full logical paths, in the order recorded.
    pub paths: Vec<String>,
}

/// The temp roots of every live process. With `remove_dead`, the files of
/// dead processes are deleted (a collector does that, under [`GcLock`]);
/// otherwise they are skipped.
pub(crate) fn read_temp_roots(
    state_dir: &Path,
    remove_dead: bool,
) -> Result<Vec<ProcessRoots>, StoreError> {
    let dir = temp_roots_dir(state_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("reading", &dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io("reading", &dir))?;
        let path = entry.path();
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("opening", &path)(e)),
        };
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                // Nobody holds it: its process is gone.
                if remove_dead {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => return Err(StoreError::io("locking", &path)(e.into())),
        }
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).map_err(StoreError::io("reading", &path))?;
        found.push(ProcessRoots {
            pid,
            paths: text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    }
    found.sort_by_key(|p| p.pid);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_of_a_live_store_are_read_and_vanish_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let roots = TempRoots::default();
        roots
            .add(
                dir.path(),
                &["/kiln/store/a".into(), "/kiln/store/b".into()],
            )
            .unwrap();
        roots.add(dir.path(), &["/kiln/store/a".into()]).unwrap();
        let found = read_temp_roots(dir.path(), true).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, std::process::id());
        assert_eq!(found[0].paths, ["/kiln/store/a", "/kiln/store/b"]);
        drop(roots);
        assert!(read_temp_roots(dir.path(), true).unwrap().is_empty());
    }

    #[test]
    fn an_unlocked_file_is_a_dead_process_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stale = temp_roots_dir(dir.path()).join("999999999-0");
        fs::create_dir_all(stale.parent().unwrap()).unwrap();
        fs::write(&stale, "/kiln/store/x\n").unwrap();
        assert!(read_temp_roots(dir.path(), false).unwrap().is_empty());
        assert!(stale.exists(), "listing leaves it");
        assert!(read_temp_roots(dir.path(), true).unwrap().is_empty());
        assert!(!stale.exists(), "a collector removes it");
    }

    #[test]
    fn adding_waits_while_a_collector_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_path_buf();
        let gc = GcLock::exclusive(&state).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let adder = {
            let state = state.clone();
            std::thread::spawn(move || {
                let roots = TempRoots::default();
                roots.add(&state, &["/kiln/store/p".into()]).unwrap();
                tx.send(()).unwrap();
                // Keep the roots alive until the test has looked.
                std::thread::sleep(std::time::Duration::from_millis(300));
                drop(roots);
            })
        };
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "a temp root was added while the collector held gc.lock"
        );
        assert!(read_temp_roots(&state, true).unwrap().is_empty());
        drop(gc);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let found = read_temp_roots(&state, true).unwrap();
        assert_eq!(found[0].paths, ["/kiln/store/p"]);
        adder.join().unwrap();
    }
}
