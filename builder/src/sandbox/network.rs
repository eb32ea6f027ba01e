//! The network of a fixed-output build: a network namespace of its own,
//! connected to the outside by slirp4netns (a user-space TCP/IP stack that
//! makes the build's connections from kiln's side), instead of the host's
//! namespace. Why: processes in one network namespace share abstract unix
//! sockets, over which two builds (or a build and a host daemon) can pass
//! file descriptors; in its own namespace a build reaches other hosts, and
//! the host's loopback through 10.0.2.2, but no socket of another build.
//!
//! The order of events, so the builder never starts without its network:
//! the forked child makes the network namespace (with `lo` up) together
//! with the view's mount namespace ([`super::view`]), and bwrap, which
//! keeps it, waits on `--block-fd` before it runs the builder; kiln starts
//! slirp4netns on bwrap's pid, waits for its `--ready-fd`, then unblocks
//! bwrap. slirp4netns ends when kiln closes its `--exit-fd` after the
//! build. (The namespace is kiln's own rather than bwrap's so that it
//! belongs to a user namespace that does not change under slirp4netns.)
//! Inside, `tap0` has 10.0.2.100/24, the gateway is 10.0.2.2 and the
//! resolver 10.0.2.3 (slirp4netns forwards it to the host's).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::view::Identity;
use crate::error::BuildError;

/// What `/etc/resolv.conf` says inside: slirp4netns's resolver.
pub const RESOLV_CONF: &str = "nameserver 10.0.2.3\n";

/// The bwrap side of the handshake: the fd bwrap inherits.
pub struct BwrapEnds {
    pub block_read: OwnedFd,
}

/// kiln's side of the handshake.
pub struct KilnEnds {
    block_write: File,
}

/// The two pipes of the handshake, close-on-exec (the sandbox's child
/// clears the flag of its ends only).
pub fn handshake() -> Result<(BwrapEnds, KilnEnds), BuildError> {
    let (block_read, block_write) = pipe()?;
    Ok((
        BwrapEnds { block_read },
        KilnEnds {
            block_write: File::from(block_write),
        },
    ))
}

/// A running slirp4netns; dropping it stops it.
pub struct Slirp {
    child: Child,
    exit_write: Option<OwnedFd>,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        // Closing the exit fd tells slirp4netns to end.
        self.exit_write.take();
        if self.child.wait().is_err() {
            let _ = self.child.kill();
        }
    }
}

impl KilnEnds {
    /// Connect the sandbox started as `bwrap_pid` to the network, then let
    /// its builder start. The bwrap ends must already be closed in kiln.
    pub fn connect(self, bwrap_pid: u32, identity: Identity) -> Result<Slirp, BuildError> {
        let KilnEnds { mut block_write } = self;
        let slirp4netns = find_slirp4netns()?;
        let (ready_read, ready_write) = pipe()?;
        let (exit_read, exit_write) = pipe()?;
        let mut cmd = Command::new(&slirp4netns);
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--enable-sandbox",
            &format!("--ready-fd={}", ready_write.as_raw_fd()),
            &format!("--exit-fd={}", exit_read.as_raw_fd()),
        ]);
        if let Identity::Unprivileged { .. } = identity {
            // Not root: act from the user namespace kiln made for the view,
            // where kiln's user is root and owns the network namespace.
            cmd.arg(format!("--userns-path=/proc/{bwrap_pid}/ns/user"));
        }
        cmd.arg(bwrap_pid.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let inherit: [RawFd; 2] = [ready_write.as_raw_fd(), exit_read.as_raw_fd()];
        // SAFETY: fcntl on two fds this process owns, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for fd in inherit {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| sandbox_error(format!("starting {}: {e}", slirp4netns.display())))?;
        drop(cmd);
        drop(ready_write);
        drop(exit_read);
        let mut slirp = Slirp {
            child,
            exit_write: Some(exit_write),
        };
        let mut ready = [0u8; 1];
        let ok = File::from(ready_read).read(&mut ready).unwrap_or(0) == 1;
        if !ok {
            let mut stderr = String::new();
            let err = slirp.child.stderr.take();
            // Stop it first: its stderr ends when it does.
            drop(slirp);
            if let Some(mut err) = err {
                let _ = err.read_to_string(&mut stderr);
            }
            let hint = if stderr.contains("/dev/net/tun") {
                "\nslirp4netns needs /dev/net/tun; most systems let every user open it \
                 (`chmod 0666 /dev/net/tun`), or run kiln as root"
            } else {
                ""
            };
            return Err(sandbox_error(format!(
                "slirp4netns could not connect the fixed-output build to the network: {}{hint}",
                stderr.trim()
            )));
        }
        block_write
            .write_all(b"1")
            .map_err(|e| sandbox_error(format!("unblocking bwrap: {e}")))?;
        Ok(slirp)
    }
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd), BuildError> {
    let (read, write) = std::io::pipe().map_err(|e| sandbox_error(format!("pipe: {e}")))?;
    Ok((OwnedFd::from(read), OwnedFd::from(write)))
}

fn find_slirp4netns() -> Result<PathBuf, BuildError> {
    super::probe::find_program("slirp4netns").ok_or_else(|| {
        sandbox_error(
            "fixed-output builds get their network through slirp4netns, which is not \
             installed; install it, e.g. `apt-get install slirp4netns`"
                .to_string(),
        )
    })
}

fn sandbox_error(message: String) -> BuildError {
    BuildError::Sandbox { message }
}
