//! The bubblewrap command line for one build.
//!
//! What the builder sees (the file system of the sandbox, from an empty root):
//!
//! | logical path           | host source                          | mode |
//! |------------------------|--------------------------------------|------|
//! | `<store dir>`          | a scratch directory of this build    | rw   |
//! | `<store dir>/<input>`  | `ROOT<store dir>/<input>` (closure)  | ro   |
//! | `/build`               | the build directory                  | rw   |
//! | `/etc` (`passwd`, `group`, `hosts`) | synthesized files  | ro   |
//! | `/dev`, `/proc`        | fresh devtmpfs subset, procfs        |      |
//! | declared `__sandboxPaths` (`/bin/sh`) | an input path          | ro   |
//!
//! Outputs are written by the builder straight to their logical paths inside
//! the scratch store directory; after the build they are taken from there and
//! moved into the real store. Nothing else of the host is visible: not the
//! user's home, not the project, not the host's `/etc`.
//!
//! Namespaces: `--unshare-all` (user, ipc, pid, net, uts, cgroup) so there is
//! no network but a private loopback; fixed-output derivations get
//! `--share-net` and the host's resolver files, the one exception. The builder
//! runs as uid 1000 / gid 100 in its own user namespace and session, and bwrap
//! is pid 1 of the pid namespace: when the builder exits every process it
//! started dies with the namespace, and `--die-with-parent` kills the sandbox
//! if kiln itself dies.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BuildError;

/// The unprivileged user id the builder runs as.
pub const BUILD_UID: u32 = 1000;
/// The group id the builder runs as.
pub const BUILD_GID: u32 = 100;
/// The working directory of every build, inside the sandbox.
pub const BUILD_TOP: &str = "/build";

/// One store path made visible to the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInput {
    /// Where the path really is on the host (`ROOT<store dir>/<base name>`).
    pub physical: PathBuf,
    /// Where the builder sees it (`<store dir>/<base name>`).
    pub logical: String,
}

/// Everything needed to start one sandboxed build.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// The logical store directory, e.g. `/kiln/store`.
    pub store_dir: String,
    /// The input closure; nothing else of the store is visible.
    pub inputs: Vec<SandboxInput>,
    /// Host directory mounted read-write at the store directory; the
    /// builder writes its outputs here.
    pub scratch_store: PathBuf,
    /// Host directory mounted read-write at `/build`.
    pub build_dir: PathBuf,
    /// Host directory holding the synthesized `passwd`, `group`, `hosts`.
    pub etc_dir: PathBuf,
    /// Fixed-output derivations only: share the host's network.
    pub network: bool,
    /// Extra read-only binds the derivation declared (`/bin/sh`), see
    /// [`crate::sandbox_paths`].
    pub extra: Vec<crate::sandbox_paths::SandboxPath>,
    /// The program to run (a logical path inside the sandbox).
    pub builder: String,
    pub args: Vec<String>,
    /// The complete environment of the builder.
    pub env: BTreeMap<String, String>,
}

/// The contents of the synthesized `/etc` files.
pub fn etc_files() -> [(&'static str, String); 3] {
    [
        (
            "passwd",
            format!(
                "root:x:0:0:Nix build user:{BUILD_TOP}:/noshell\n\
                 nixbld:x:{BUILD_UID}:{BUILD_GID}:Nix build user:{BUILD_TOP}:/noshell\n\
                 nobody:x:65534:65534:Nobody:/:/noshell\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\nnixbld:!:{BUILD_GID}:\nnogroup:x:65534:\n"),
        ),
        ("hosts", "127.0.0.1 localhost\n::1 localhost\n".to_string()),
    ]
}

/// Write the synthesized `/etc` files into `dir`.
pub fn write_etc(dir: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|e| BuildError::io(dir, e))?;
    for (name, contents) in etc_files() {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|e| BuildError::io(&path, e))?;
    }
    Ok(())
}

impl SandboxSpec {
    /// The bwrap argument list (without the program name).
    pub fn bwrap_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(64 + 3 * self.inputs.len());
        let mut push = |parts: &[&std::ffi::OsStr]| a.extend(parts.iter().map(|p| p.into()));
        push(&[
            "--unshare-all".as_ref(),
            // Explicit, so a host without user namespaces fails loudly instead
            // of bwrap silently skipping the user namespace.
            "--unshare-user".as_ref(),
            "--die-with-parent".as_ref(),
            "--new-session".as_ref(),
            "--uid".as_ref(),
            BUILD_UID.to_string().as_ref(),
            "--gid".as_ref(),
            BUILD_GID.to_string().as_ref(),
            "--hostname".as_ref(),
            "localhost".as_ref(),
        ]);
        if self.network {
            push(&["--share-net".as_ref()]);
        }
        push(&[
            "--bind".as_ref(),
            self.scratch_store.as_os_str(),
            self.store_dir.as_ref(),
        ]);
        for input in &self.inputs {
            match std::fs::read_link(&input.physical) {
                // A store path that is itself a symlink: recreate the link,
                // since bind-mounting would follow it on the host.
                Ok(target) => push(&[
                    "--symlink".as_ref(),
                    target.as_os_str(),
                    input.logical.as_ref(),
                ]),
                Err(_) => push(&[
                    "--ro-bind".as_ref(),
                    input.physical.as_os_str(),
                    input.logical.as_ref(),
                ]),
            }
        }
        for extra in &self.extra {
            push(&[
                "--ro-bind".as_ref(),
                extra.physical.as_os_str(),
                extra.inside.as_ref(),
            ]);
        }
        push(&[
            "--bind".as_ref(),
            self.build_dir.as_os_str(),
            BUILD_TOP.as_ref(),
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
        ]);
        if !self.network {
            // The directory holds exactly the synthesized files: one mount
            // instead of one per file (each bind costs bwrap a mount, a
            // remount and a scan of the mount table, in every build).
            push(&[
                "--ro-bind".as_ref(),
                self.etc_dir.as_os_str(),
                "/etc".as_ref(),
            ]);
        } else {
            // The host's resolver files are mounted next to the synthesized
            // ones, so `/etc` is built file by file.
            for (name, _) in etc_files() {
                if name == "hosts" {
                    continue;
                }
                let host = self.etc_dir.join(name);
                let inside = format!("/etc/{name}");
                push(&["--ro-bind".as_ref(), host.as_os_str(), inside.as_ref()]);
            }
            // Name resolution for fetchers: the host's resolver files.
            // Not nsswitch.conf: static binaries would then try to load NSS
            // modules that the sandbox does not have.
            for file in ["/etc/resolv.conf", "/etc/hosts", "/etc/services"] {
                push(&["--ro-bind-try".as_ref(), file.as_ref(), file.as_ref()]);
            }
            // TLS certificates, if the host has them.
            for dir in ["/etc/ssl/certs", "/etc/pki/tls/certs"] {
                push(&["--ro-bind-try".as_ref(), dir.as_ref(), dir.as_ref()]);
            }
        }
        push(&[
            "--chdir".as_ref(),
            BUILD_TOP.as_ref(),
            "--".as_ref(),
            self.builder.as_ref(),
        ]);
        a.extend(self.args.iter().map(OsString::from));
        a
    }

    /// The command that runs the build: bwrap with a cleared environment
    /// (bwrap passes its own environment on, so the builder sees exactly
    /// `self.env`), in its own process group so a timeout can kill it whole.
    ///
    /// bwrap's `--die-with-parent` only ties the sandbox to bwrap itself;
    /// bwrap is tied to kiln here: it gets SIGKILL when the kiln thread
    /// that started it ends (kiln killed included), and exits at once if
    /// kiln is already gone by the time it starts.
    pub fn command(&self, bwrap: &Path) -> Command {
        let mut cmd = Command::new(bwrap);
        cmd.args(self.bwrap_args())
            .env_clear()
            .envs(&self.env)
            .current_dir("/")
            .process_group(0);
        // SAFETY: between fork and exec only async-signal-safe calls
        // (getpid, prctl, getppid, _exit) on values captured before fork.
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        cmd
    }
}

/// Kill sandboxes that a killed kiln left behind.
///
/// If kiln dies while bwrap is still setting a sandbox up, bwrap's inner
/// process can miss its parent's death and wait forever (it never starts
/// the builder). Such an orphan is a bwrap process whose command line binds
/// a temp dir of this store and whose parent is gone (it was reparented to
/// pid 1). Best effort: errors reading /proc are ignored. Returns how many
/// were killed.
pub fn reap_orphans(physical_store_dir: &Path) -> usize {
    let marker = format!("{}/.tmp-kiln-", physical_store_dir.display());
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

/// Find bwrap and check that it can create the namespaces a build needs.
/// The error says what to install or enable.
pub fn probe_bwrap() -> Result<PathBuf, BuildError> {
    let bwrap = find_program("bwrap").ok_or(BuildError::NoBwrap)?;
    let out = Command::new(&bwrap)
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

fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: bool) -> SandboxSpec {
        SandboxSpec {
            store_dir: "/kiln/store".into(),
            inputs: vec![SandboxInput {
                physical: "/r/kiln/store/aaaa-in".into(),
                logical: "/kiln/store/aaaa-in".into(),
            }],
            scratch_store: "/s/store".into(),
            build_dir: "/s/build".into(),
            etc_dir: "/s/etc".into(),
            network,
            extra: Vec::new(),
            builder: "/kiln/store/aaaa-in/bin/sh".into(),
            args: vec!["-c".into(), "true".into()],
            env: BTreeMap::new(),
        }
    }

    fn joined(spec: &SandboxSpec) -> String {
        spec.bwrap_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn no_network_unless_fixed_output() {
        let args = joined(&spec(false));
        assert!(args.contains("--unshare-all"));
        assert!(!args.contains("--share-net"));
        assert!(!args.contains("resolv.conf"));
        let args = joined(&spec(true));
        assert!(args.contains("--share-net"));
        assert!(args.contains("--ro-bind-try /etc/resolv.conf /etc/resolv.conf"));
    }

    #[test]
    fn inputs_are_read_only_at_their_logical_paths() {
        let args = joined(&spec(false));
        assert!(args.contains(
            "--bind /s/store /kiln/store --ro-bind /r/kiln/store/aaaa-in /kiln/store/aaaa-in"
        ));
        assert!(args.contains("--bind /s/build /build"));
        assert!(args.ends_with("-- /kiln/store/aaaa-in/bin/sh -c true"));
    }

    #[test]
    fn declared_sandbox_paths_are_read_only_binds() {
        let mut spec = spec(false);
        spec.extra.push(crate::sandbox_paths::SandboxPath {
            inside: "/bin/sh".into(),
            physical: "/r/kiln/store/aaaa-in/bin/busybox".into(),
        });
        assert!(joined(&spec).contains("--ro-bind /r/kiln/store/aaaa-in/bin/busybox /bin/sh"));
    }

    #[test]
    fn etc_is_the_synthesized_directory_read_only() {
        let args = joined(&spec(false));
        assert!(args.contains("--ro-bind /s/etc /etc"));
        assert!(!args.contains("/etc/passwd"));
        // With the network, the host's resolver files join the synthesized
        // passwd and group (not hosts).
        let args = joined(&spec(true));
        assert!(!args.contains("--ro-bind /s/etc /etc "));
        assert!(args.contains("--ro-bind /s/etc/passwd /etc/passwd"));
        assert!(args.contains("--ro-bind /s/etc/group /etc/group"));
        assert!(!args.contains("/s/etc/hosts"));
        assert!(args.contains("--ro-bind-try /etc/hosts /etc/hosts"));
    }
}
