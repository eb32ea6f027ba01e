//! The sandbox: no network (except fixed outputs), only the input
//! closure visible, read-only inputs, a fixed identity and environment,
//! and no process outliving the build.

use std::collections::BTreeMap;

use kiln_store::{FileIngestionMethod, Hash, HashAlgo};

use crate::kit::{DrvKit, STORE_DIR, Server, Spec, process_running, read, require_bwrap};

#[test]
fn the_sandbox_has_no_network() {
    if !require_bwrap() {
        return;
    }
    let server = Server::start(vec![("/", "200 OK", b"reached".to_vec())]);
    let port = server.port().to_string();
    let mut kit = DrvKit::new();
    // The build succeeds only if the connection fails.
    let drv = kit.write(Spec {
        env: &[("port", &port)],
        ..Spec::new(
            "no-net",
            "if echo hi | nc -w 2 127.0.0.1 $port; then echo CONNECTED; exit 1; fi; \
             if wget -q -O- http://127.0.0.1:$port/; then echo CONNECTED; exit 1; fi; \
             echo isolated > $out",
        )
    });
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv)), "isolated\n");
    assert_eq!(server.accepted(), 0, "the build reached the host's server");
}

#[test]
fn the_sandbox_shows_only_the_input_closure_and_no_host_dirs() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    // A valid path that is not an input must not be visible.
    let other_src = kit.env.write("other.txt", "not an input");
    let other = kit.store.add_path(&other_src, "other").unwrap();
    let home = kit.env.home().display().to_string();
    let project = env!("CARGO_MANIFEST_DIR");
    let other_path = kit.path(&other);
    let drv = kit.write(Spec {
        env: &[
            ("hosthome", &home),
            ("project", project),
            ("other", &other_path),
        ],
        ..Spec::new(
            "visible",
            "mkdir $out; ls /kiln/store > $out/store; ls /etc > $out/etc; ls / > $out/root; \
             for p in $hosthome $project $other /root /usr /home; do \
               if [ -e $p ]; then echo $p >> $out/leaks; fi; done; true",
        )
    });
    kit.build_ok(&drv);
    let out = kit.real(&drv);
    assert!(
        !out.join("leaks").exists(),
        "visible: {}",
        read(&out.join("leaks"))
    );
    let store_listing = read(&out.join("store"));
    let mut seen: Vec<&str> = store_listing.lines().collect();
    seen.sort();
    let mut expected = vec![kit.busybox.to_string(), kit.out(&drv, "out").to_string()];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(read(&out.join("etc")), "group\nhosts\npasswd\n");
}

#[test]
fn inputs_are_read_only() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let bb = kit.path(&kit.busybox.clone());
    let drv = kit.write(Spec {
        env: &[("bb", &bb)],
        ..Spec::new(
            "ro",
            "if touch $bb/bin/new 2>/dev/null; then exit 1; fi; \
             if rm -f $bb/bin/busybox; then :; fi; \
             if [ ! -x $bb/bin/busybox ]; then exit 2; fi; \
             if echo x >> $bb/bin/busybox; then exit 3; fi; echo ok > $out",
        )
    });
    kit.build_ok(&drv);
    assert_eq!(read(&kit.real(&drv)), "ok\n");
}

#[test]
fn builds_run_as_an_unprivileged_user_with_a_fixed_identity() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "ident",
        "mkdir $out; id -u > $out/uid; id -g > $out/gid; id -un > $out/user; \
         hostname > $out/hostname; cat /etc/passwd > $out/passwd; pwd > $out/pwd",
    ));
    kit.build_ok(&drv);
    let out = kit.real(&drv);
    assert_eq!(read(&out.join("uid")), "1000\n");
    assert_eq!(read(&out.join("gid")), "100\n");
    assert_eq!(read(&out.join("user")), "nixbld\n");
    assert_eq!(read(&out.join("hostname")), "localhost\n");
    assert_eq!(read(&out.join("pwd")), "/build\n");
    assert!(read(&out.join("passwd")).contains("nixbld:x:1000:100:"));
}

#[test]
fn the_environment_is_as_designed() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec {
        env: &[
            ("greeting", "hi there"),
            ("passAsFile", "big"),
            ("big", "a big value"),
        ],
        outputs: &["out", "doc"],
        ..Spec::new("envy", "env > $out; cat $bigPath > $doc")
    });
    kit.build_ok(&drv);
    let env: BTreeMap<String, String> = read(&kit.real(&drv))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = kit.path(&kit.out(&drv, "out"));
    let doc = kit.path(&kit.out(&drv, "doc"));
    for (k, v) in [
        ("HOME", "/homeless-shelter"),
        ("PATH", "/path-not-set"),
        ("TMPDIR", "/build"),
        ("TEMPDIR", "/build"),
        ("TMP", "/build"),
        ("TEMP", "/build"),
        ("NIX_BUILD_TOP", "/build"),
        ("NIX_STORE", STORE_DIR),
        ("NIX_LOG_FD", "2"),
        ("TERM", "xterm-256color"),
        ("greeting", "hi there"),
        ("name", "envy"),
        ("out", out.as_str()),
        ("doc", doc.as_str()),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(env.contains_key("NIX_BUILD_CORES"));
    assert!(!env.contains_key("big"));
    assert!(env["bigPath"].starts_with("/build/.attr-"));
    assert!(!env.contains_key("USER") && !env.contains_key("CARGO"));
    assert_eq!(
        read(&kit.store.real_path(&kit.out(&drv, "doc"))),
        "a big value"
    );
}

#[test]
fn no_process_survives_the_build() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec::new(
        "daemon",
        "sleep 4242 & (setsid sleep 4243 &) ; nohup sleep 4244 >/dev/null 2>&1 & echo started > $out",
    ));
    kit.build_ok(&drv);
    for marker in ["sleep 4242", "sleep 4243", "sleep 4244"] {
        assert!(!process_running(marker), "{marker} survived the build");
    }
}

#[test]
fn fixed_output_derivations_may_use_the_network() {
    if !require_bwrap() {
        return;
    }
    // An HTTP server on the host's loopback, which a fixed-output build
    // reaches as 10.0.2.2 through its own network (slirp4netns).
    let server = Server::start(vec![("/payload", "200 OK", b"payload\n".to_vec())]);
    let port = server.port().to_string();
    let mut kit = DrvKit::new();
    let hash = Hash::digest(HashAlgo::Sha256, b"payload\n");
    let fetch = kit.write(Spec {
        env: &[("port", &port)],
        fixed: Some((FileIngestionMethod::Flat, hash)),
        ..Spec::new(
            "fetch",
            "cat /etc/resolv.conf >&2; wget -q -O $out http://10.0.2.2:$port/payload",
        )
    });
    kit.build_ok(&fetch);
    assert_eq!(server.accepted(), 1);
    assert_eq!(read(&kit.real(&fetch)), "payload\n");
}

/// kiln run by an ordinary user builds in the same sandbox: the closure
/// view is assembled in a user namespace of its own (see
/// `builder/src/sandbox/view.rs`), and the outputs are that user's.
/// Through `setpriv` when the tests run as root.
#[test]
fn an_ordinary_user_builds_in_the_same_sandbox() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let input = kit.write(Spec::new(
        "nr-input",
        "mkdir $out; echo from-input > $out/file",
    ));
    let input_out = kit.path(&kit.out(&input, "out"));
    let drv = kit.write(Spec {
        inputs: &[&input],
        env: &[("input", &input_out)],
        ..Spec::new(
            "nr",
            "mkdir $out; ls /kiln/store > $out/store; id -u > $out/uid; \
             cat $input/file > $out/copied; \
             if echo x > $input/file; then echo WROTE > $out/wrote; fi",
        )
    });
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let (mut cmd, user) = if me == 0 {
        let Some(setpriv) = crate::kit::which("setpriv") else {
            eprintln!("skipped: running as root without setpriv to drop privileges");
            return;
        };
        let status = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(kit.env.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let mut cmd = std::process::Command::new(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_kiln"));
        (cmd, 65534)
    } else {
        (std::process::Command::new(env!("CARGO_BIN_EXE_kiln")), me)
    };
    for var in crate::kit::KILN_ENV_VARS {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("HOME", kit.env.home())
        .arg("--root")
        .arg(kit.env.root())
        .args(["build", "--no-out-link", &kit.path(&drv)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build as uid {user} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let real = kit.real(&drv);
    let mut listing: Vec<String> = read(&real.join("store"))
        .lines()
        .map(String::from)
        .collect();
    listing.sort();
    let mut expected = vec![
        kit.busybox.to_string(),
        kit.out(&input, "out").to_string(),
        kit.out(&drv, "out").to_string(),
    ];
    expected.sort();
    assert_eq!(listing, expected);
    assert_eq!(read(&real.join("uid")), "1000\n");
    assert_eq!(read(&real.join("copied")), "from-input\n");
    assert!(!real.join("wrote").exists(), "an input was writable");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&real).unwrap().uid(), user);
}

/// Two fixed-output builds, or one and a host daemon, must not meet on an
/// abstract unix socket (the namespace of those is the network
/// namespace): through one, a build could pass another a file descriptor
/// of its output. The host listens on one; the build tries to connect with
/// a one-call program (`kit::elf`), which first proves it can on the host.
#[test]
fn a_fixed_output_build_cannot_reach_the_hosts_abstract_sockets() {
    use crate::kit::elf::{Arg, syscall_program};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::fs::PermissionsExt;
    if !require_bwrap() {
        return;
    }
    let name = format!("kiln-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    // struct sockaddr_un: AF_UNIX, then a NUL and the abstract name.
    let mut sockaddr = (libc::AF_UNIX as u16).to_le_bytes().to_vec();
    sockaddr.push(0);
    sockaddr.extend_from_slice(name.as_bytes());
    // socket(AF_UNIX, SOCK_STREAM, 0) is fd 3; connect(3, addr, len).
    let program = [syscall_program(&[
        (41, vec![Arg::Int(1), Arg::Int(1), Arg::Int(0)]),
        (
            42,
            vec![
                Arg::Int(3),
                Arg::Bytes(&sockaddr),
                Arg::Int(sockaddr.len() as u64),
            ],
        ),
    ])];
    let mut kit = DrvKit::new();
    let tools = kit.env.work().join("connect");
    std::fs::create_dir_all(&tools).unwrap();
    let exe = tools.join("connect");
    std::fs::write(&exe, &program[0]).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let on_host = std::process::Command::new(&exe).status().unwrap();
    assert_eq!(
        on_host.code(),
        Some(0),
        "the program cannot connect on the host"
    );
    listener.accept().unwrap();

    let tools = kit.store.add_path(&tools, "connect").unwrap();
    let tools_path = kit.path(&tools);
    let hash = Hash::digest(HashAlgo::Sha256, b"isolated\n");
    let drv = kit.write(Spec {
        env: &[("tools", &tools_path)],
        srcs: &[&tools],
        fixed: Some((FileIngestionMethod::Flat, hash)),
        ..Spec::new(
            "abstract",
            "$tools/connect; code=$?; \
             if [ $code = 0 ]; then echo CONNECTED; exit 1; fi; echo isolated > $out",
        )
    });
    kit.build_ok(&drv);
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the build reached the host's socket"
    );
}
