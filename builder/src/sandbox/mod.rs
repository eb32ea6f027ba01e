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
//! kiln binds the closure itself, in the forked child, before it becomes
//! bwrap ([`view`]); bwrap gets the assembled view in a handful of binds.
//!
//! Namespaces: `--unshare-all` (user, ipc, pid, net, uts, cgroup) so there is
//! no network but a private loopback; fixed-output derivations, the one
//! exception, get a network namespace of their own connected by
//! slirp4netns ([`network`]). The builder
//! runs as uid 1000 / gid 100 in its own user namespace and session; on the
//! host that is kiln's own user, or when kiln is root a build user of its own
//! ([`build_user`]), never root. The builder
//! is pid 1 of the pid namespace (`--as-pid-1`): when it exits every process
//! it started dies with the namespace, and `--die-with-parent` kills the
//! sandbox if kiln itself dies.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BuildError;

pub mod build_user;
pub mod network;
mod probe;
pub mod seccomp;
pub mod view;

pub use probe::{probe_bwrap, reap_orphans};
use view::{Identity, View, ViewPaths};

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
    /// `ROOT<store dir>`: every host path above lies inside it.
    pub physical_store_dir: PathBuf,
    /// When kiln runs as root: the build user's uid and gid.
    pub build_user: Option<(u32, u32)>,
    /// Fixed-output derivations only: a network of their own
    /// ([`network`]).
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

/// Write the synthesized `/etc` files into `dir/etc`, and the resolver
/// file of fixed-output builds into `dir/net`, readable by build users
/// (nothing in them is secret).
pub fn write_etc(dir: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let write = |dir: &Path, files: &[(&str, String)]| -> Result<(), BuildError> {
        std::fs::create_dir_all(dir).map_err(|e| BuildError::io(dir, e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| BuildError::io(dir, e))?;
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(|e| BuildError::io(&path, e))?;
        }
        Ok(())
    };
    write(dir, &[])?;
    write(&dir.join("etc"), &etc_files())?;
    write(
        &dir.join("net"),
        &[("resolv.conf", network::RESOLV_CONF.to_string())],
    )
}

/// The descriptors bwrap reads its seccomp filters and network handshake
/// from.
#[derive(Debug, Clone, Default)]
pub struct BwrapFds {
    pub seccomp: Vec<i32>,
    /// `--block-fd`, fixed-output builds only.
    pub network: Option<i32>,
}

/// The bwrap command of one build, and for a fixed-output build kiln's
/// side of the network handshake, to run once bwrap is started.
pub struct SandboxCommand {
    pub command: Command,
    pub network: Option<network::KilnEnds>,
    pub identity: Identity,
}

impl SandboxSpec {
    /// The bwrap argument list (without the program name); the seccomp
    /// filters are read from `fds.seccomp`, the network handshake
    /// ([`network`]) uses `fds.info` and `fds.block`.
    pub fn bwrap_args(&self, fds: &BwrapFds) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(64 + 3 * self.inputs.len());
        let mut push = |parts: &[&std::ffi::OsStr]| a.extend(parts.iter().map(|p| p.into()));
        if self.network {
            // Everything but the network: a fixed-output build's network
            // namespace is made by kiln before bwrap starts ([`network`]).
            push(&[
                "--unshare-ipc".as_ref(),
                "--unshare-pid".as_ref(),
                "--unshare-uts".as_ref(),
                "--unshare-cgroup-try".as_ref(),
            ]);
        } else {
            push(&["--unshare-all".as_ref()]);
        }
        push(&[
            // Explicit, so a host without user namespaces fails loudly instead
            // of bwrap silently skipping the user namespace.
            "--unshare-user".as_ref(),
            "--die-with-parent".as_ref(),
            "--new-session".as_ref(),
            // The builder itself is pid 1 of the pid namespace, as in Nix's
            // sandbox: when it exits the namespace ends and the kernel kills
            // every process it left. There is no init of bwrap's in between
            // that could be stopped and keep the sandbox alive.
            "--as-pid-1".as_ref(),
            "--uid".as_ref(),
            BUILD_UID.to_string().as_ref(),
            "--gid".as_ref(),
            BUILD_GID.to_string().as_ref(),
            "--hostname".as_ref(),
            "localhost".as_ref(),
            // No user namespace inside: a nested one would make the
            // builder root of it, with file capabilities to set.
            "--disable-userns".as_ref(),
        ]);
        for fd in &fds.seccomp {
            push(&["--add-seccomp-fd".as_ref(), fd.to_string().as_ref()]);
        }
        if let Some(block) = fds.network {
            push(&["--block-fd".as_ref(), block.to_string().as_ref()]);
        }
        let view = ViewPaths::for_temp_dir(self.temp_dir());
        // The store dir with the closure already bound in it ([`view`]).
        push(&[
            "--bind".as_ref(),
            view.store().as_os_str(),
            self.store_dir.as_ref(),
        ]);
        for (i, extra) in self.extra.iter().enumerate() {
            push(&[
                "--ro-bind".as_ref(),
                view.extra(i).as_os_str(),
                extra.inside.as_ref(),
            ]);
        }
        push(&[
            "--bind".as_ref(),
            view.build().as_os_str(),
            BUILD_TOP.as_ref(),
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
        ]);
        if !self.network {
            // The directory holds exactly the synthesized files: one mount
            // instead of one per file.
            push(&[
                "--ro-bind".as_ref(),
                view.etc().as_os_str(),
                "/etc".as_ref(),
            ]);
        } else {
            // slirp4netns's resolver next to the synthesized files, so
            // `/etc` is built file by file.
            for (name, _) in etc_files() {
                let file = view.etc().join(name);
                let inside = format!("/etc/{name}");
                push(&["--ro-bind".as_ref(), file.as_os_str(), inside.as_ref()]);
            }
            let resolv = view.net().join("resolv.conf");
            push(&[
                "--ro-bind".as_ref(),
                resolv.as_os_str(),
                "/etc/resolv.conf".as_ref(),
                "--ro-bind-try".as_ref(),
                "/etc/services".as_ref(),
                "/etc/services".as_ref(),
            ]);
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
    pub fn command(
        &self,
        bwrap: &Path,
        filters: &seccomp::Filters,
    ) -> Result<SandboxCommand, BuildError> {
        use std::os::fd::AsRawFd;
        let identity = Identity::current(self.build_user);
        let view = View::prepare(self, &self.physical_store_dir, identity)?;
        let mut inherited = filters.memfds()?;
        let mut fds = BwrapFds {
            seccomp: inherited.iter().map(|fd| fd.as_raw_fd()).collect(),
            network: None,
        };
        let network = if self.network {
            let (bwrap_ends, kiln_ends) = network::handshake()?;
            fds.network = Some(bwrap_ends.block_read.as_raw_fd());
            inherited.push(bwrap_ends.block_read);
            Some(kiln_ends)
        } else {
            None
        };
        let mut cmd = Command::new(bwrap);
        cmd.args(self.bwrap_args(&fds))
            .env_clear()
            .envs(&self.env)
            .current_dir("/")
            .process_group(0);
        // SAFETY: between fork and exec only async-signal-safe calls
        // (system calls on bytes prepared before the fork).
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                // Opened close-on-exec so that no other child inherits
                // them; this one, bwrap, must.
                for fd in &inherited {
                    if libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                view.enter()?;
                // After `enter`: a change of uid clears the death signal.
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
        Ok(SandboxCommand {
            command: cmd,
            network,
            identity,
        })
    }

    /// The overlay's work directory next to the scratch store (the upper
    /// layer, see [`view`]); created with the build's temp dir.
    pub fn overlay_work_dir(&self) -> PathBuf {
        self.temp_dir().join("overlay-work")
    }

    /// The build's temp dir (the scratch store's parent).
    pub fn temp_dir(&self) -> &Path {
        self.scratch_store.parent().unwrap_or(&self.scratch_store)
    }
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
            scratch_store: "/r/kiln/store/.tmp-kiln-1/store".into(),
            build_dir: "/r/kiln/store/.tmp-kiln-1/build".into(),
            etc_dir: "/r/kiln/store/.tmp-kiln-0".into(),
            physical_store_dir: "/r/kiln/store".into(),
            build_user: None,
            network,
            extra: Vec::new(),
            builder: "/kiln/store/aaaa-in/bin/sh".into(),
            args: vec!["-c".into(), "true".into()],
            env: BTreeMap::new(),
        }
    }

    fn joined(spec: &SandboxSpec) -> String {
        spec.bwrap_args(&BwrapFds {
            seccomp: vec![7],
            network: spec.network.then_some(8),
        })
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
    }

    #[test]
    fn every_build_gets_the_seccomp_filters_and_no_nested_user_namespace() {
        let args = joined(&spec(false));
        assert!(args.contains("--add-seccomp-fd 7"));
        assert!(args.contains("--disable-userns"));
    }

    #[test]
    fn no_network_unless_fixed_output() {
        let args = joined(&spec(false));
        assert!(args.contains("--unshare-all"));
        assert!(!args.contains("--share-net"));
        assert!(!args.contains("resolv.conf"));
        assert!(!args.contains("--block-fd"));
        let args = joined(&spec(true));
        assert!(!args.contains("--share-net"), "{args}");
        assert!(args.contains("--block-fd 8"));
        assert!(!args.contains("--unshare-all") && !args.contains("--unshare-net"));
        assert!(args.contains(&format!(
            "--ro-bind {VIEW}/net/resolv.conf /etc/resolv.conf"
        )));
    }

    const VIEW: &str = "/tmp/kiln-sandbox/r/kiln/store/.tmp-kiln-1";

    #[test]
    fn bwrap_binds_the_assembled_view_not_each_input() {
        let args = joined(&spec(false));
        assert!(args.contains(&format!("--bind {VIEW}/store /kiln/store")));
        assert!(!args.contains("aaaa-in /kiln/store/aaaa-in"), "{args}");
        assert!(args.contains(&format!("--bind {VIEW}/build /build")));
        assert!(args.ends_with("-- /kiln/store/aaaa-in/bin/sh -c true"));
    }

    #[test]
    fn declared_sandbox_paths_are_read_only_binds() {
        let mut spec = spec(false);
        spec.extra.push(crate::sandbox_paths::SandboxPath {
            inside: "/bin/sh".into(),
            physical: "/r/kiln/store/aaaa-in/bin/busybox".into(),
        });
        assert!(joined(&spec).contains(&format!("--ro-bind {VIEW}/extra-0 /bin/sh")));
    }

    #[test]
    fn etc_is_the_synthesized_directory_read_only() {
        let args = joined(&spec(false));
        assert!(args.contains(&format!("--ro-bind {VIEW}/etc /etc")));
        assert!(!args.contains("/etc/passwd"));
        // With the network, slirp4netns's resolver joins the synthesized
        // files; nothing of the host's /etc but its services list.
        let args = joined(&spec(true));
        assert!(!args.contains(&format!("--ro-bind {VIEW}/etc /etc ")));
        assert!(args.contains(&format!("--ro-bind {VIEW}/etc/passwd /etc/passwd")));
        assert!(args.contains(&format!("--ro-bind {VIEW}/etc/hosts /etc/hosts")));
        assert!(!args.contains("--ro-bind-try /etc/hosts"));
    }
}
