//! Attacks on the host through a build, tried as a builder would (kiln
//! running as root when the tests do): what a build leaves behind must
//! carry no bit, capability or writable mode that means anything outside.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::kit::{DrvKit, Spec, read};

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

/// Replace the file of the registered `.drv` at `drv` with `forged`'s
/// ATerm, as someone with write access to the store (or a corrupt disk)
/// would: the build must not trust what the file now says.
fn tamper(kit: &DrvKit, drv: &kiln_store::StorePath, forged: &kiln_store::derivation::Derivation) {
    let file = kit.store.real_path(drv);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&file, forged.to_aterm(kit.store.store_dir())).unwrap();
}

/// A forged derivation naming another derivation's output as its own.
fn forge_claiming(
    kit: &mut DrvKit,
) -> (
    kiln_store::StorePath,
    kiln_store::StorePath,
    kiln_store::derivation::Derivation,
) {
    use kiln_store::derivation::DerivationOutput;
    let victim = kit.write(Spec::new("victim", "echo genuine > $out"));
    let victim_out = kit.out(&victim, "out");
    let honest = kit.write(Spec::new("claimer", "echo poisoned > $out"));
    let mut forged = kit.drvs[&honest].clone();
    forged.outputs.insert(
        "out".into(),
        DerivationOutput::InputAddressed {
            path: victim_out.clone(),
        },
    );
    forged
        .env
        .insert("out".into(), kit.store.print_path(&victim_out));
    (victim, honest, forged)
}

/// A `.drv` naming another derivation's output: building it would let its
/// builder decide what that path holds. kiln recomputes the output paths
/// from the `.drv`'s contents and refuses it.
#[test]
fn a_drv_naming_another_derivations_output_is_refused_before_building() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let (victim, honest, forged) = forge_claiming(&mut kit);
    let victim_out = kit.out(&victim, "out");
    tamper(&kit, &honest, &forged);

    let stderr = kit.build_fails(&honest, &[]);
    assert!(
        stderr.contains(&format!(
            "derivation '{}' has incorrect output '{}', should be '{}'",
            kit.path(&honest),
            kit.path(&victim_out),
            kit.path(&kit.out(&honest, "out"))
        )),
        "{stderr}"
    );
    assert!(!kit.store.real_path(&victim_out).exists());

    let built = kit.build_ok(&victim);
    assert_eq!(built.trim(), kit.path(&victim_out));
    let content = std::fs::read_to_string(kit.store.real_path(&victim_out)).unwrap();
    assert_eq!(content, "genuine\n");
}

/// The variable named after an output must be that output's path: a build
/// told to write elsewhere is refused before it starts.
#[test]
fn a_drv_whose_out_variable_points_elsewhere_is_refused_before_building() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let victim = kit.write(Spec::new("victim", "echo genuine > $out"));
    let victim_out = kit.path(&kit.out(&victim, "out"));
    let honest = kit.write(Spec::new("forged", "echo poisoned > $out"));
    let mut forged = kit.drvs[&honest].clone();
    forged.env.insert("out".into(), victim_out.clone());
    tamper(&kit, &honest, &forged);

    let stderr = kit.build_fails(&honest, &[]);
    assert!(
        stderr.contains("has incorrect environment variable 'out', should be '"),
        "{stderr}"
    );
}

/// The same forgery never becomes valid: registering it (the store API,
/// or `kiln store add` of a file named `.drv`) is refused and writes
/// nothing.
#[test]
fn a_forged_drv_is_refused_at_registration() {
    let mut kit = DrvKit::new();
    let (_victim, _honest, forged) = forge_claiming(&mut kit);

    let err = kit.store.write_derivation(&forged, "forged").unwrap_err();
    assert!(err.to_string().contains("has incorrect output"), "{err}");

    let file = kit.env.root().join("forged.drv");
    std::fs::write(&file, forged.to_aterm(kit.store.store_dir())).unwrap();
    let out = kit.env.run(&["store", "add", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("has incorrect output"), "{stderr}");
    assert!(out.stdout.is_empty());
    let store_dir = kit.store.real_path(&kit.busybox);
    let leftovers: Vec<String> = std::fs::read_dir(store_dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with("-forged.drv"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
    kit.assert_store_consistent();
}

/// The host owner of each output file while its build runs, seen from
/// the host in the builds' scratch stores (before kiln resets owners).
fn owners_while_building(kit: &DrvKit, outs: &[String]) -> Vec<u32> {
    let store_dir = kit.store.physical_store_dir().to_path_buf();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut owners = vec![None; outs.len()];
    while owners.iter().any(Option::is_none) {
        assert!(
            std::time::Instant::now() < deadline,
            "outputs never appeared"
        );
        for entry in std::fs::read_dir(&store_dir).unwrap().flatten() {
            for (i, out) in outs.iter().enumerate() {
                let file = entry.path().join("store").join(out);
                if let Ok(meta) = std::fs::symlink_metadata(&file) {
                    owners[i].get_or_insert(meta.uid());
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    owners.into_iter().map(Option::unwrap).collect()
}

#[test]
fn builds_never_run_as_host_root_and_concurrent_builds_get_their_own_uid() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    // Two builds that overlap in time, and one that needs both.
    let script = "echo > $out; sleep 3";
    let a = kit.write(Spec::new("uid-a", script));
    let b = kit.write(Spec::new("uid-b", script));
    let both = kit.write(Spec {
        inputs: &[&a, &b],
        ..Spec::new("uid-both", "echo > $out")
    });
    let both_path = kit.path(&both);
    let mut child = kit
        .env
        .kiln()
        .args(["build", &both_path, "--no-out-link", "-j", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let outs = [
        kit.out(&a, "out").to_string(),
        kit.out(&b, "out").to_string(),
    ];
    let owners = owners_while_building(&kit, &outs);
    assert!(child.wait().unwrap().success());
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if me == 0 {
        assert!(
            owners.iter().all(|&uid| uid != 0),
            "a build ran as host root: {owners:?}"
        );
        assert_ne!(owners[0], owners[1], "two concurrent builds shared a uid");
    } else {
        assert_eq!(owners, vec![me, me], "builds run as kiln's own user");
    }
    // Registered, the outputs belong to kiln's user again.
    assert_eq!(std::fs::metadata(kit.real(&a)).unwrap().uid(), me);
}

/// Each call a build must not make, tried for real in the sandbox by a
/// one-call program (see `kit::elf`), with the errno seccomp gives it.
#[test]
fn the_seccomp_filter_refuses_s_bits_xattrs_keyrings_and_x32_calls() {
    use crate::kit::elf::{Arg, syscall_program};
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    // The programs first prove themselves on the host: chmod of a missing
    // file is ENOENT.
    let tools = kit.env.work().join("calls");
    std::fs::create_dir_all(&tools).unwrap();
    let programs: [(&str, Vec<u8>); 6] = [
        (
            "probe",
            syscall_program(&[(90, vec![Arg::Bytes(b"/nonexistent"), Arg::Int(0)])]),
        ),
        (
            "chmod-suid",
            syscall_program(&[(90, vec![Arg::Bytes(b"f"), Arg::Int(0o4755)])]),
        ),
        (
            "chmod-plain",
            syscall_program(&[(90, vec![Arg::Bytes(b"f"), Arg::Int(0o755)])]),
        ),
        (
            "setxattr",
            syscall_program(&[(
                188,
                vec![
                    Arg::Bytes(b"f"),
                    Arg::Bytes(b"user.kiln"),
                    Arg::Bytes(b"v"),
                    Arg::Int(1),
                    Arg::Int(0),
                ],
            )]),
        ),
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1)
        (
            "keyctl",
            syscall_program(&[(250, vec![Arg::Int(0), Arg::Int(-3i64 as u64), Arg::Int(1)])]),
        ),
        // chmod through the x32 numbering.
        (
            "x32-chmod",
            syscall_program(&[(0x4000_0000 | 90, vec![Arg::Bytes(b"f"), Arg::Int(0o4755)])]),
        ),
    ];
    for (name, program) in &programs {
        let path = tools.join(name);
        std::fs::write(&path, program).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let probe = std::process::Command::new(tools.join("probe"))
        .status()
        .unwrap();
    assert_eq!(
        probe.code(),
        Some(libc::ENOENT),
        "the probe program is broken"
    );
    let calls = kit.store.add_path(&tools, "calls").unwrap();
    let calls_path = kit.path(&calls);
    let drv = kit.write(Spec {
        env: &[("calls", &calls_path)],
        srcs: &[&calls],
        ..Spec::new(
            "seccomp",
            "mkdir $out; echo x > f; \
             for c in chmod-suid chmod-plain setxattr keyctl x32-chmod; do \
               $calls/$c; echo $c $? >> $out/results; done; \
             if unshare -U true 2>/dev/null; then echo nested >> $out/results; fi; \
             ls -l f >> $out/results",
        )
    });
    let out = kit.build_ok(&drv);
    let results = std::fs::read_to_string(kit.real(&drv).join("results")).unwrap();
    let expected = format!(
        "chmod-suid {}\nchmod-plain 0\nsetxattr {}\nkeyctl {}\nx32-chmod {}\n",
        libc::EPERM,
        libc::ENOTSUP,
        libc::ENOSYS,
        libc::ENOSYS
    );
    assert!(results.starts_with(&expected), "{out}\n{results}");
    assert!(
        !results.contains("nested"),
        "a nested user namespace was created"
    );
    assert!(results.contains("-rwxr-xr-x"), "{results}");
}

/// The builder is pid 1 of its sandbox: no init of bwrap's sits between it
/// and the namespace, so nothing in the sandbox can stop a pid 1 and keep
/// the sandbox alive after its builder (a stopped init would hold the log
/// pipe open and `kiln build` would wait forever). When the builder exits,
/// what it left running, even ignoring every signal it can, dies with it.
#[test]
fn the_builder_is_the_sandboxs_pid_1_and_nothing_outlives_it() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "pid-1",
        "echo $$ > $out; \
         (trap '' TERM HUP INT; exec sleep 1234.5) > /dev/null 2>&1 & \
         (trap '' TERM HUP INT; while :; do sleep 1; done) &",
    ));
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv)), "1\n");
    assert!(!crate::kit::process_running("sleep 1234.5"));
}
