//! What the cache tests share: a closure with references, keys, a real
//! nginx with WebDAV PUT in a private directory, Nix on a private store.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::{TestEnv, which};

/// A closure in `env`'s store: a `.drv` referring to a text file that
/// refers to another, and a tree with an executable and a symlink.
/// Returns (the .drv, the tree).
pub fn closure(env: &TestEnv, store_dir: Option<&str>) -> (String, String) {
    let mut cmd = env.kiln();
    if let Some(dir) = store_dir {
        cmd.env("KILN_STORE_DIR", dir);
    }
    let out = cmd
        .args([
            "instantiate",
            "-E",
            r#"derivation { name = "x"; system = "x86_64-linux"; builder = builtins.toFile "b" "${builtins.toFile "a" "hello"}"; }"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drv = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let tree = env.work().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/run"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        tree.join("bin/run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(tree.join("data"), vec![7u8; 300_000]).unwrap();
    let _ = std::fs::remove_file(tree.join("link"));
    std::os::unix::fs::symlink("bin/run", tree.join("link")).unwrap();
    let mut cmd = env.kiln();
    if let Some(dir) = store_dir {
        cmd.env("KILN_STORE_DIR", dir);
    }
    let out = cmd
        .args(["store", "add", tree.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        drv,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

/// A key pair NAME.sec / NAME.pub in `env`'s work dir; the public key.
pub fn key(env: &TestEnv, name: &str) -> String {
    env.ok(&["key", "generate", name]);
    std::fs::read_to_string(env.work().join(format!("{name}.pub")))
        .unwrap()
        .trim()
        .to_string()
}

/// Run kiln, return (success, stderr).
pub fn run(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = env.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "kiln {args:?} panicked:\n{stderr}"
    );
    (out.status.success(), stderr)
}

/// Whether `path` (logical) is valid in `env`'s store.
pub fn valid(env: &TestEnv, path: &str) -> bool {
    env.run(&["store", "path-info", path]).status.success()
}

/// The text of the narinfo of `path` in the cache directory `dir`.
pub fn narinfo_file(dir: &Path, path: &str) -> PathBuf {
    let base = path.rsplit('/').next().unwrap();
    dir.join(format!("{}.narinfo", &base[..32]))
}

/// The value of `Key:` in a narinfo.
pub fn field(narinfo: &str, key: &str) -> String {
    narinfo
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in\n{narinfo}"))
        .to_string()
}

/// Whether the machine has a program; under CI its absence fails.
pub fn need(program: &str) -> bool {
    if which(program).is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{program} is missing under CI (.ci/run installs it)");
    }
    eprintln!("skipped: {program} is not installed");
    false
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in the foreground on 127.0.0.1, serving `root` with WebDAV PUT;
/// its own config, pid, logs and temp files in a private directory.
/// Killed when dropped.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub root: PathBuf,
    dir: PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path) -> Nginx {
        let root = dir.join("www");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let d = dir.display();
            let conf = format!(
                "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
                 fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    client_max_body_size 0;\n\
                 location / {{ dav_methods PUT; create_full_put_path on; dav_access user:rw group:r all:r; }}\n  }}\n}}\n",
                root = root.display()
            );
            std::fs::write(dir.join("nginx.conf"), conf).unwrap();
            let child = Command::new(which("nginx").unwrap())
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-p")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx");
            let mut nginx = Nginx {
                child,
                port,
                root: root.clone(),
                dir: dir.to_path_buf(),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = nginx.child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return nginx;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
            let _ = nginx.child.kill();
        }
        panic!("nginx did not start:\n{last}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` from Nix 2.8 on a private state rooted at `root` (logical
/// `/nix/store`): no daemon, its own config, state, logs, cache and home.
pub fn nix_command(root: &Path, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("NIX_REMOTE", "")
        .env("NIX_CONF_DIR", root.join("etc"))
        .env("NIX_STATE_DIR", root.join("nix/var/nix"))
        .env("NIX_LOG_DIR", root.join("nix/var/log/nix"))
        .env("XDG_CACHE_HOME", root.join("cache"))
        .env("HOME", root.join("home"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("home")).unwrap();
    cmd
}

/// A Nix 2.8 command on a private store rooted at `root`, no default
/// substituters, stdin closed.
pub fn nix(root: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = nix_command(root, args[0]);
    cmd.args(&args[1..]).stdin(Stdio::null());
    cmd.output().expect("run nix")
}

pub fn nix_ok(root: &Path, args: &[&str]) -> String {
    let out = nix(root, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
