//! A fresh root and HOME per test, a clean environment, and a command
//! builder for the `kiln` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every environment variable kiln reads; cleared for each test.
pub const KILN_ENV_VARS: &[&str] = &[
    "KILN_ROOT",
    "KILN_STORE_DIR",
    "KILN_LOG",
    "KILN_PATH",
    "NIX_PATH",
];

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("kiln-e2e-")
            .tempdir()
            .expect("create temp dir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        TestEnv { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A scratch directory for the test's own input files.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Write a file under `work/`, creating parent directories.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A `kiln` command on this test's root, in `work/`.
    pub fn kiln(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        for var in KILN_ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home())
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("KILN_ROOT", self.root())
            .current_dir(self.work());
        cmd
    }

    /// Run `kiln ARGS…` and return its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.kiln().args(args).output().expect("run kiln")
    }

    /// Run `kiln ARGS…`, assert exit 0, and return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run `kiln ARGS…`, assert the exit code, and return stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "kiln {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
        assert!(
            !stderr.contains("panicked"),
            "kiln {args:?} panicked:\n{stderr}"
        );
        stderr
    }

    /// `kiln store verify` succeeds: the store is consistent.
    pub fn assert_store_consistent(&self) {
        let out = self.run(&["store", "verify", "--check-contents"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "store verify failed:\n{stderr}");
    }
}

/// Whether the sandbox can run here. Under CI a missing bwrap is a failure:
/// the sandbox is the product, and `.ci/run` installs it.
pub fn require_bwrap() -> bool {
    if which("bwrap").is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("bwrap is missing under CI: .ci/run must install bubblewrap");
    }
    eprintln!("skipped: bwrap not installed");
    false
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether a process whose command line contains `marker` runs on the host.
/// Whether a running process's command line (arguments joined by spaces)
/// starts with `command`: `sleep 2.71` is the builder's `sleep`, not the
/// bwrap whose arguments hold the whole build script (that one exists from
/// before the builder starts, while the sandbox is still being set up).
pub fn command_running(command: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .starts_with(command)
            })
            .unwrap_or(false)
    })
}

pub fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
            .unwrap_or(false)
    })
}
