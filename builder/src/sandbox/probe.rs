//! Before and around builds: finding bwrap and checking that it works, and
//! killing sandboxes a killed kiln left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BUILD_GID, BUILD_UID};
use crate::error::BuildError;

/// Kill sandboxes that a killed kiln left behind.
///
/// If kiln dies while bwrap is still setting a sandbox up, bwrap's inner
/// process can miss its parent's death and wait forever (it never starts
/// the builder). Such an orphan is a bwrap process whose command line binds
/// a temp dir of this store and whose parent is gone (it was reparented to
/// pid 1). Best effort: errors reading /proc are ignored. Returns how many
/// were killed.
pub fn reap_orphans(physical_store_dir: &Path) -> usize {
    // Every bwrap of this store binds views named after its temp dirs.
    let marker = format!(
        "{}{}/.tmp-kiln-",
        super::view::VIEW_BASE,
        physical_store_dir.display()
    );
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|b| *b == 0);
        let is_bwrap = args.next().is_some_and(|a| a.ends_with(b"bwrap"));
        if !is_bwrap || !args.any(|a| a.starts_with(marker.as_bytes())) {
            continue;
        }
        let orphaned = std::fs::read_to_string(entry.path().join("status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("PPid:"))
                    .map(|p| p.trim() == "1")
            })
            .unwrap_or(false);
        if orphaned {
            // SAFETY: kill(2) on a pid read from /proc; at worst ESRCH.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}

/// Find bwrap and check that it can create the namespaces a build needs,
/// as the user builds run as (a build user when kiln is root). The error
/// says what to install or enable.
pub fn probe_bwrap(build_user: Option<(u32, u32)>) -> Result<PathBuf, BuildError> {
    use std::os::unix::process::CommandExt;
    let bwrap = find_program("bwrap").ok_or(BuildError::NoBwrap)?;
    let mut cmd = Command::new(&bwrap);
    if let Some((uid, gid)) = build_user {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd
        .args([
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--uid",
            &BUILD_UID.to_string(),
            "--gid",
            &BUILD_GID.to_string(),
            "--ro-bind",
            "/",
            "/",
            "--",
            "/bin/true",
        ])
        .env_clear()
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(bwrap),
        // Some hosts have no /bin/true; a clean exit of bwrap's own setup is
        // what matters, and its diagnostics start with "bwrap:".
        Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("bwrap:") => Ok(bwrap),
        Ok(out) => Err(BuildError::NoUserNamespaces(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )),
        Err(e) => Err(BuildError::io(&bwrap, e)),
    }
}

pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
