//! Attacks on the host through a build, tried as a builder would (kiln
//! running as root when the tests do): what a build leaves behind must
//! carry no bit, capability or writable mode that means anything outside.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::kit::{DrvKit, Spec};

/// Every file below `dir` with a setuid, setgid or sticky bit, or writable
/// by group or others.
fn dangerous_modes(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.mode() & 0o7022 != 0 {
            found.push(format!("{} {:o}", p.display(), meta.mode() & 0o7777));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    found
}

#[test]
fn a_kept_failed_build_leaves_no_setuid_file_and_is_private() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "suid",
        "cp $builder /build/shell; chmod 4755 /build/shell; chmod 0777 /build; \
         mkdir $out; cp $builder $out/sh; chmod 6777 $out/sh; exit 1",
    ));
    let stderr = kit.build_fails(&drv, &["--keep-failed"]);
    let kept = stderr
        .lines()
        .find_map(|l| l.split("the build directory is kept at ").nth(1))
        .unwrap_or_else(|| panic!("no kept dir in:\n{stderr}"));
    let kept = Path::new(kept.trim());
    assert!(kept.join("build/shell").is_file(), "{stderr}");
    assert_eq!(dangerous_modes(kept), Vec::<String>::new());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(kept.parent().unwrap()), 0o700, "failed/ is private");
    // Owned by kiln's own user, whatever user the build ran as.
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert_eq!(
        std::fs::metadata(kept.join("build/shell")).unwrap().uid(),
        me
    );
}

#[test]
fn outputs_are_registered_without_setuid_bits() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "suid-out",
        "mkdir $out; cp $builder $out/sh; chmod 6755 $out/sh; chmod 1777 $out",
    ));
    kit.build_ok(&drv);
    assert_eq!(dangerous_modes(&kit.real(&drv)), Vec::<String>::new());
}
