//! Starting a program so it sees the store at its logical path, and
//! waiting for it.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use kiln_store::store::Store;

use crate::error::ShellError;
use crate::view::{MountPlan, store_visible};

/// How the store's paths are reached.
pub enum View {
    /// The logical store dir is the physical one here.
    Direct,
    /// A user + mount namespace binds the physical store at the logical
    /// path (see [`crate::view`]).
    Namespace(Arc<MountPlan>),
}

impl View {
    /// What a process started from `cwd` needs on this host.
    pub fn for_store(store: &Store, cwd: &Path) -> Result<View, ShellError> {
        let logical = Path::new(store.store_dir().as_str());
        let physical = store.physical_store_dir();
        if store_visible(logical, physical) {
            return Ok(View::Direct);
        }
        let scratch = scratch_dir(store);
        std::fs::create_dir_all(&scratch).map_err(ShellError::io("creating", &scratch))?;
        let plan = MountPlan::new(logical, physical, &scratch, cwd).map_err(|e| {
            ShellError::Other(format!(
                "preparing the view of the store at {}: {e}",
                logical.display()
            ))
        })?;
        Ok(View::Namespace(Arc::new(plan)))
    }

    /// Set `cmd` up to run in this view (from `cwd`).
    pub fn apply(&self, cmd: &mut Command, cwd: &Path) {
        cmd.current_dir(cwd);
        if let View::Namespace(plan) = self {
            let plan = plan.clone();
            // SAFETY: the closure runs in the forked child before exec and
            // only makes system calls on arguments prepared beforehand.
            unsafe {
                cmd.pre_exec(move || plan.enter());
            }
        }
    }
}

/// `STATE/ns`: the mount point of the new root in a namespace, empty on
/// the host, shared by every process.
fn scratch_dir(store: &Store) -> PathBuf {
    store.state_dir().join("ns")
}

/// Run `cmd` to its end with terminal signals left to it (the parent
/// ignores Ctrl-C and Ctrl-\ meanwhile, as a shell does); its exit code,
/// or 128 + the signal that ended it.
pub fn run_to_end(cmd: &mut Command, what: &str) -> Result<u8, ShellError> {
    let mut child = cmd.spawn().map_err(|e| spawn_error(what, e))?;
    let old = ignore_terminal_signals();
    let status = child.wait();
    restore_signals(old);
    let status = status.map_err(|e| ShellError::Other(format!("waiting for {what}: {e}")))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => 1,
    })
}

fn spawn_error(what: &str, err: std::io::Error) -> ShellError {
    let hint = match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOSPC) | Some(libc::EINVAL) => {
            "; user namespaces may be disabled here (sysctl kernel.unprivileged_userns_clone, \
             user.max_user_namespaces): ask an administrator to run `kiln setup` for this store"
        }
        Some(libc::ENOENT) => "; no such program",
        _ => "",
    };
    ShellError::Other(format!("cannot start {what}: {err}{hint}"))
}

type Handlers = [(libc::c_int, libc::sighandler_t); 2];

fn ignore_terminal_signals() -> Handlers {
    let mut old = [
        (libc::SIGINT, libc::SIG_DFL),
        (libc::SIGQUIT, libc::SIG_DFL),
    ];
    for (sig, handler) in old.iter_mut() {
        // SAFETY: installing SIG_IGN is always sound.
        *handler = unsafe { libc::signal(*sig, libc::SIG_IGN) };
    }
    old
}

fn restore_signals(old: Handlers) {
    for (sig, handler) in old {
        if handler != libc::SIG_ERR {
            // SAFETY: restoring the disposition that was installed before.
            unsafe { libc::signal(sig, handler) };
        }
    }
}
