//! The seccomp filters every sandboxed build runs under (bwrap
//! `--add-seccomp-fd`), as Nix's, and a little more:
//!
//! | system calls | when | result |
//! |---|---|---|
//! | `chmod`, `fchmod`, `fchmodat`, `fchmodat2` | the mode has the setuid or setgid bit | `EPERM` |
//! | `setxattr`, `lsetxattr`, `fsetxattr`, `setxattrat` | always | `ENOTSUP` |
//! | `keyctl`, `add_key`, `request_key` | always (the kernel keyrings are the host's) | `ENOSYS` |
//! | any x32 system call (number with bit 30 set) | always (it would bypass the rules above) | `ENOSYS` |
//! | any system call of another architecture (i386) | always (same reason) | the process is killed |
//!
//! Nothing a build legitimately needs is in the table: outputs never carry
//! s-bits or xattrs (canonicalisation would strip them anyway), and a
//! 32-bit program cannot run in an `x86_64-linux` build. The filters are
//! compiled once per run by seccompiler and handed to each bwrap through
//! memfds.

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::os::fd::OwnedFd;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

use crate::error::BuildError;

/// The compiled filters, as the bytes bwrap reads.
#[derive(Debug, Clone)]
pub struct Filters {
    programs: Vec<Vec<u8>>,
}

impl Filters {
    /// Compile the filters of the table above.
    pub fn compile() -> Result<Filters, BuildError> {
        let no_s_bits = |mode_arg: u8| -> Result<Vec<SeccompRule>, BuildError> {
            [libc::S_ISUID, libc::S_ISGID]
                .into_iter()
                .map(|bit| {
                    let cond = SeccompCondition::new(
                        mode_arg,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::MaskedEq(u64::from(bit)),
                        u64::from(bit),
                    )
                    .map_err(compile_error)?;
                    SeccompRule::new(vec![cond]).map_err(compile_error)
                })
                .collect()
        };
        let eperm = BTreeMap::from([
            (libc::SYS_chmod, no_s_bits(1)?),
            (libc::SYS_fchmod, no_s_bits(1)?),
            (libc::SYS_fchmodat, no_s_bits(2)?),
            (libc::SYS_fchmodat2, no_s_bits(2)?),
        ]);
        // An empty rule list matches the call whatever its arguments.
        let always = |calls: &[i64]| calls.iter().map(|&c| (c, Vec::new())).collect();
        let xattrs = always(&[
            libc::SYS_setxattr,
            libc::SYS_lsetxattr,
            libc::SYS_fsetxattr,
            SYS_SETXATTRAT,
        ]);
        let keys = always(&[libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_request_key]);
        let mut programs = Vec::new();
        for (rules, errno) in [
            (eperm, libc::EPERM),
            (xattrs, libc::ENOTSUP),
            (keys, libc::ENOSYS),
        ] {
            let filter = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                TargetArch::x86_64,
            )
            .map_err(compile_error)?;
            let program: Vec<sock_filter> = filter.try_into().map_err(compile_error)?;
            programs.push(to_bytes(&program));
        }
        programs.push(to_bytes(&no_x32()));
        Ok(Filters { programs })
    }

    /// One memfd per filter, positioned at the start, close-on-exec (the
    /// child clears the flag of exactly these).
    pub fn memfds(&self) -> Result<Vec<OwnedFd>, BuildError> {
        self.programs
            .iter()
            .map(|bytes| {
                let fd = rustix::fs::memfd_create("kiln-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
                    .map_err(|e| sandbox_error(format!("memfd_create: {e}")))?;
                let mut file = std::fs::File::from(fd);
                file.write_all(bytes)
                    .and_then(|_| file.rewind())
                    .map_err(|e| sandbox_error(format!("writing a seccomp filter: {e}")))?;
                Ok(OwnedFd::from(file))
            })
            .collect()
    }
}

/// `setxattrat(2)`, Linux 6.13 (not yet in libc).
const SYS_SETXATTRAT: i64 = 463;

/// x32 system calls are numbered from bit 30 under the x86_64 audit
/// architecture, so rules keyed by x86_64 numbers do not see them.
fn no_x32() -> Vec<sock_filter> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // Load the system call number (offset 0 of struct seccomp_data).
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// The kernel's `struct sock_filter` layout, native endian.
fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    bytes
}

fn compile_error(e: seccompiler::BackendError) -> BuildError {
    sandbox_error(format!("compiling the seccomp filter: {e}"))
}

fn sandbox_error(message: String) -> BuildError {
    BuildError::Sandbox { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_is_whole_instructions() {
        let filters = Filters::compile().unwrap();
        assert_eq!(filters.programs.len(), 4);
        for program in &filters.programs {
            assert!(!program.is_empty() && program.len() % 8 == 0);
        }
    }
}
