//! `kiln shell` and `kiln run`: the builder's environment in a shell
//! (`--run`, `--command`, `--pure`, `--sandbox`, `--print-env`, on a
//! pseudo-terminal), the evaluation cache, the shell's GC root, and
//! programs run from a `--root` store and by an ordinary user with the
//! default root (the store seen at its logical path in a namespace).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::kit::{Pty, Server, TestEnv, read, require_bwrap, which};

/// A project: busybox-built derivations in a `default.nix`, evaluated
/// from files (so the cache has files to key on).
const PROJECT: &str = r##"{ greeting ? "hello there" }:
let
  bb = "${./busybox}/bin/busybox";
  sh = script: [ "sh" "-c" script ];
in rec {
  stdenv = derivation {
    name = "fake-stdenv";
    system = "x86_64-linux";
    builder = bb;
    setup = ./setup.sh;
    args = sh "$bb mkdir -p $out; $bb cp $setup $out/setup";
    inherit bb;
  };
  tool = derivation {
    name = "tool-1.0";
    system = "x86_64-linux";
    builder = bb;
    script = ./tool.sh;
    inherit bb;
    args = sh ''
      $bb mkdir -p $out/bin $out/include $out/lib
      { echo "#!$bb sh"; $bb cat $script; } > $out/bin/tool
      $bb chmod +x $out/bin/tool
      echo '#define TOOL 1' > $out/include/tool.h
    '';
  };
  app = builtins.trace "evaluating app" (derivation {
    name = "app-1.0";
    system = "x86_64-linux";
    builder = bb;
    args = sh "tool hi > $out";
    buildInputs = [ tool ];
    inherit greeting;
    shellHook = "echo hook-ran; hooked=yes";
  });
  withStdenv = derivation {
    name = "with-stdenv";
    system = "x86_64-linux";
    builder = bb;
    args = sh "exit 1";
    inherit stdenv;
    buildInputs = [ tool ];
  };
  multi = (derivation {
    name = "multi-2.0";
    system = "x86_64-linux";
    builder = bb;
    inherit bb;
    args = sh ''
      $bb mkdir -p $out/bin
      for p in first second; do
        printf '#!%s sh\necho this-is-%s\n' $bb $p > $out/bin/$p
        $bb chmod +x $out/bin/$p
      done
    '';
  }) // { meta.mainProgram = "second"; };
}
"##;

const TOOL: &str = r#"echo tool-says "$@"
if [ "$1" = fail ]; then exit 7; fi
if [ "$1" = cat ]; then busybox cat "$2"; fi
if [ "$1" = id ]; then busybox id -u; fi
exit 0
"#;

const SETUP: &str = r#"export SETUP_SOURCED=1
buildPhase() { echo build-phase-ran; }
genericBuild() { echo generic-build-ran; buildPhase; }
"#;

fn project(env: &TestEnv) {
    let bb = env.work().join("busybox/bin");
    std::fs::create_dir_all(&bb).unwrap();
    std::fs::copy("/bin/busybox", bb.join("busybox")).unwrap();
    env.write("default.nix", PROJECT);
    env.write("tool.sh", TOOL);
    env.write("setup.sh", SETUP);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shell_run(env: &TestEnv, args: &[&str], cmd: &str) -> Output {
    let mut all = vec!["shell"];
    all.extend_from_slice(args);
    all.extend(["--run", cmd]);
    env.run(&all)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn run_builds_then_runs_from_a_root_store() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let secret = env.write("host-file", "from-the-host\n");
    // The logical store dir (/kiln/store) is not this store's on this host
    // (it may be another store's, or missing): a namespace shows this one.
    let out = env
        .kiln()
        .args(["run", "-A", "tool", "--", "cat"])
        .arg(&secret)
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.starts_with("tool-says cat "), "{stdout}");
    assert!(
        stdout.contains("from-the-host"),
        "host files are visible: {stdout}"
    );
    assert!(text(&out.stderr).contains("building"), "it built first");
    // The exit status is the program's.
    let out = env.run(&["run", "-A", "tool", "--", "fail"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    // The same user (as for the caller).
    let out = env.run(&["run", "-A", "tool", "--", "id"]);
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert!(ok(&out).contains(&format!("\n{me}\n")));
    // meta.mainProgram chooses; a result link and a file in it run too.
    assert_eq!(ok(&env.run(&["run", "-A", "multi"])), "this-is-second\n");
    env.ok(&["build", "-A", "multi"]);
    assert_eq!(ok(&env.run(&["run", "./result"])), "this-is-second\n");
    assert_eq!(
        ok(&env.run(&["run", "./result/bin/first"])),
        "this-is-first\n"
    );
    // A store dir with no directory at all on the host: the namespace
    // makes it on a tmpfs root that mirrors the host's.
    let missing = format!("/kiln-e2e-run-{}/store", std::process::id());
    let out = env
        .kiln()
        .args(["--store-dir", &missing, "run", "-A", "tool", "--", "cat"])
        .arg(&secret)
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("from-the-host"), "{stdout}");
    let out = env.run(&[
        "--store-dir",
        &missing,
        "shell",
        "-A",
        "app",
        "--run",
        "pwd; tool m",
    ]);
    let stdout = ok(&out);
    assert!(
        stdout.contains(&format!("{}\ntool-says m\n", env.work().display())),
        "the working directory is kept: {stdout}"
    );
    assert!(
        !Path::new(&missing).exists(),
        "{missing} appeared on the host"
    );
    env.ok(&[
        "--store-dir",
        &missing,
        "build",
        "-A",
        "multi",
        "-o",
        "missing-result",
    ]);
    // Directly, the program's interpreter is not there: what kiln run fixes.
    let direct = Command::new(env.work().join("missing-result/bin/first")).output();
    assert!(direct.is_err(), "{direct:?}");
    // A package without the program says what it has.
    let err = env.fails(&["run", "-A", "stdenv"], 2);
    assert!(err.contains("no bin/fake-stdenv"), "{err}");
}

#[test]
fn a_shell_has_the_builders_environment() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let out = shell_run(
        &env,
        &["-A", "app"],
        r#"echo "greeting=$greeting"; tool x; echo "hooked=$hooked"; echo "cpath=$CPATH";
           mkdir -p "$out" && echo made > "$out/file" && echo out-writable;
           echo tmp > "$NIX_BUILD_TOP/t" && echo top-writable; echo "in=$IN_NIX_SHELL"; exit 3"#,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        "hook-ran\n",
        "greeting=hello there\n",
        "tool-says x\n",
        "hooked=yes\n",
        "out-writable\n",
        "top-writable\n",
        "in=impure\n",
    ] {
        assert!(stdout.contains(want), "{want:?} in:\n{stdout}");
    }
    assert!(stdout.contains("-tool-1.0/include"), "{stdout}");
    assert_eq!(read(&env.work().join("outputs/out/file")), "made\n");
    // --argstr reaches the function.
    let out = shell_run(
        &env,
        &["-A", "app", "--argstr", "greeting", "hi"],
        "echo \"$greeting\"",
    );
    assert!(ok(&out).ends_with("hi\n"));
    // With a stdenv, its setup is sourced: phases run by hand.
    let out = shell_run(
        &env,
        &["-A", "withStdenv"],
        "echo \"s=$SETUP_SOURCED\"; genericBuild",
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains("s=1\ngeneric-build-ran\nbuild-phase-ran\n"),
        "{stdout}"
    );
    // A missing file says what to do.
    let err = env.fails(&["shell", "nope.nix"], 2);
    assert!(err.contains("nope.nix: no such file"), "{err}");
}

#[test]
fn pure_keeps_only_the_short_list() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let script = r#"echo "foo=${FOO:-unset} home=$HOME path=$PATH"; tool p"#;
    let out = env
        .kiln()
        .env("FOO", "bar")
        .args(["shell", "-A", "app", "--pure", "--run", script])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("foo=unset"), "{stdout}");
    assert!(
        stdout.contains(&format!("home={}", env.home().display())),
        "{stdout}"
    );
    assert!(
        !stdout.contains("/usr/bin"),
        "the host PATH is gone: {stdout}"
    );
    assert!(stdout.contains("tool-says p"), "{stdout}");
    let out = env
        .kiln()
        .env("FOO", "bar")
        .args(["shell", "-A", "app", "--run", "echo foo=$FOO"])
        .output()
        .unwrap();
    assert!(ok(&out).contains("foo=bar"));
}

#[test]
fn a_warm_start_does_not_evaluate() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let first = shell_run(&env, &["-A", "app"], "echo $greeting");
    assert!(
        text(&first.stderr).contains("evaluating app"),
        "{}",
        text(&first.stderr)
    );
    let warm = shell_run(&env, &["-A", "app"], "echo $greeting");
    assert!(ok(&warm).ends_with("hello there\n"));
    assert!(
        !text(&warm.stderr).contains("evaluating app"),
        "{}",
        text(&warm.stderr)
    );
    // Another argument is another key.
    let other = shell_run(
        &env,
        &["-A", "app", "--argstr", "greeting", "yo"],
        "echo $greeting",
    );
    assert!(text(&other.stderr).contains("evaluating app"));
    assert!(ok(&other).ends_with("yo\n"));
    // A file evaluation read changes: evaluated again (a touch alone is not
    // a change of contents, and a changed input tree is one).
    let file = env.work().join("default.nix");
    std::fs::write(&file, PROJECT.replace("hello there", "changed")).unwrap();
    let changed = shell_run(&env, &["-A", "app"], "echo $greeting");
    assert!(text(&changed.stderr).contains("evaluating app"));
    assert!(ok(&changed).ends_with("changed\n"));
    std::fs::write(&file, PROJECT.replace("hello there", "changed")).unwrap();
    let touched = shell_run(&env, &["-A", "app"], "echo $greeting");
    assert!(!text(&touched.stderr).contains("evaluating app"));
    env.write("tool.sh", format!("{TOOL}\n# edited\n"));
    let edited = shell_run(&env, &["-A", "app"], "true");
    assert!(text(&edited.stderr).contains("evaluating app"));
    assert!(
        text(&edited.stderr).contains("building"),
        "tool.sh changed: tool is rebuilt"
    );
    // --no-cache evaluates anyway.
    let out = env.run(&["shell", "-A", "app", "--no-cache", "--run", "true"]);
    assert!(text(&out.stderr).contains("evaluating app"));
}

/// The shell's root keeps its inputs through a collection: the second
/// start builds nothing. It is tied to the project file: gone with it, or
/// with --drop-root.
#[test]
fn gc_keeps_a_shells_inputs_until_the_project_goes() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let first = shell_run(&env, &["-A", "app"], "command -v tool");
    let tool_bin = ok(&first).lines().last().unwrap().to_owned();
    assert!(text(&first.stderr).contains("building"));
    let tool_out = PathBuf::from(tool_bin.trim_end_matches("/bin/tool"));
    let real = |p: &Path| env.root().join(p.strip_prefix("/").unwrap());
    // Something else dies, so the collection does run.
    let multi = env.ok(&["build", "-A", "multi", "--no-out-link"]);
    env.ok(&["store", "gc"]);
    assert!(
        !real(Path::new(multi.trim())).exists(),
        "the collection ran"
    );
    assert!(real(&tool_out).exists(), "the shell's input was collected");
    let again = shell_run(&env, &["-A", "app"], "tool again");
    assert!(ok(&again).contains("tool-says again"));
    assert!(
        !text(&again.stderr).contains("building"),
        "{}",
        text(&again.stderr)
    );
    let roots = env.ok(&["store", "roots"]);
    assert!(roots.contains("tool-1.0"), "{roots}");

    // --drop-root lets the next collection take them.
    env.ok(&["shell", "-A", "app", "--drop-root"]);
    env.ok(&["store", "gc"]);
    assert!(!real(&tool_out).exists(), "dropped, yet still there");

    // Back, and then the project file goes: the root is stale.
    let back = shell_run(&env, &["-A", "app"], "tool back");
    assert!(ok(&back).contains("tool-says back"));
    assert!(real(&tool_out).exists());
    std::fs::rename(env.work().join("default.nix"), env.work().join("moved.nix")).unwrap();
    env.ok(&["store", "gc"]);
    assert!(
        !real(&tool_out).exists(),
        "the project is gone, the inputs stay"
    );
}

#[test]
fn print_env_is_sourceable() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let script = env.ok(&["shell", "-A", "app", "--print-env"]);
    assert!(script.contains("export greeting='hello there'"), "{script}");
    assert!(!script.contains("export TMPDIR="), "{script}");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{script}\necho \"got=$greeting hooked=$hooked\""))
        .output()
        .unwrap();
    assert!(ok(&out).contains("hook-ran\ngot=hello there hooked=yes\n"));
}

#[test]
fn a_sandboxed_shell_sees_the_closure_and_the_project_only() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let hidden = env.home().join("private");
    std::fs::write(&hidden, "secret").unwrap();
    let server = Server::start(vec![]);
    let url = server.url("/x");
    let script = format!(
        "busybox ls /kiln/store; busybox cat {} 2>/dev/null || echo no-home; \
         echo w > written && echo project-writable; tool s; \
         busybox wget -q -O /dev/null {url} 2>&1; echo wget=$?",
        hidden.display()
    );
    let out = shell_run(&env, &["-A", "app", "--sandbox"], &script);
    let stdout = ok(&out);
    let listing: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("-busybox") || l.contains("-tool-") || l.contains("-app-"))
        .collect();
    assert_eq!(listing.len(), 2, "busybox and tool only: {stdout}");
    assert!(stdout.contains("no-home\n"), "{stdout}");
    assert!(stdout.contains("project-writable\n"), "{stdout}");
    assert!(stdout.contains("tool-says s\n"), "{stdout}");
    assert!(
        !stdout.contains("wget=0"),
        "reached the host's network: {stdout}"
    );
    assert_eq!(server.accepted(), 0);
    assert_eq!(read(&env.work().join("written")), "w\n");
    let out = shell_run(&env, &["-A", "app", "--sandbox", "--network"], &script);
    let stdout = ok(&out);
    assert!(server.accepted() >= 1, "--network: {stdout}");
}

/// Type into an interactive shell on a pseudo-terminal; `--command` runs
/// first and the shell stays.
#[test]
fn an_interactive_shell_on_a_terminal() {
    if !require_bwrap() {
        return;
    }
    if which("bash").is_none() {
        eprintln!("skipped: no bash");
        return;
    }
    let env = TestEnv::new();
    project(&env);
    // Built once outside the terminal.
    ok(&shell_run(&env, &["-A", "app"], "true"));
    let mut command = env.kiln();
    command
        .env("TERM", "dumb")
        .args(["shell", "-A", "app", "--command", "echo started-$greeting"]);
    let (mut pty, mut child) = Pty::spawn(command, "[kiln-shell:app-1.0]");
    let at = pty.expect(0, "started-hello there");
    let at = pty.line(at, "tool typed-here\r");
    let at = pty.expect(at, "tool-says typed-here");
    let at = pty.line(at, "echo $((6 * 7))\r");
    let at = pty.expect(at, "42");
    pty.line(at, "exit 4\r");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the shell did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(4));
}

/// An ordinary user with the default root (`~/.local/share/kiln/root`):
/// build, `kiln run`, and a shell, all with the store at its logical path
/// in a namespace, as that user. Through `setpriv` when tests run as root.
#[test]
fn an_ordinary_user_with_the_default_root_runs_what_it_built() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let user = |args: &[&str]| -> Output {
        let mut cmd = if me == 0 {
            let setpriv = which("setpriv").expect("setpriv");
            let mut cmd = Command::new(setpriv);
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(env!("CARGO_BIN_EXE_kiln"));
            cmd
        } else {
            Command::new(env!("CARGO_BIN_EXE_kiln"))
        };
        for var in crate::kit::KILN_ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.env("HOME", env.home())
            .env_remove("XDG_DATA_HOME")
            .current_dir(env.work())
            .args(args)
            .output()
            .unwrap()
    };
    if me == 0 {
        if which("setpriv").is_none() {
            eprintln!("skipped: running as root without setpriv");
            return;
        }
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(env.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let uid = if me == 0 { 65534 } else { me };
    let built = user(&["build", "-A", "tool"]);
    ok(&built);
    let default_root = env.home().join(".local/share/kiln/root/kiln/store");
    assert!(default_root.is_dir(), "the store is under the default root");
    let out = user(&["run", "-A", "tool", "--", "id"]);
    let stdout = ok(&out);
    assert!(
        stdout.contains(&format!("tool-says id\n{uid}\n")),
        "{stdout}"
    );
    let out = user(&["run", "./result", "--", "cat", "default.nix"]);
    assert!(ok(&out).contains("greeting ? \"hello there\""));
    let out = user(&[
        "shell",
        "-A",
        "app",
        "--run",
        "tool in-shell; busybox id -u",
    ]);
    let stdout = ok(&out);
    assert!(
        stdout.contains(&format!("tool-says in-shell\n{uid}\n")),
        "{stdout}"
    );
    // The same with a store dir that does not exist on the host at all.
    let missing = format!("/kiln-e2e-user-{}/store", std::process::id());
    let out = user(&["--store-dir", &missing, "run", "-A", "tool", "--", "id"]);
    let stdout = ok(&out);
    assert!(
        stdout.contains(&format!("tool-says id\n{uid}\n")),
        "{stdout}"
    );
    let out = user(&[
        "--store-dir",
        &missing,
        "shell",
        "-A",
        "app",
        "--run",
        "tool s; busybox cat default.nix",
    ]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("tool-says s\n") && stdout.contains("greeting ? "),
        "{stdout}"
    );
    assert!(!Path::new(&missing).exists());
}

/// `kiln setup` (root only) makes a root's store visible system-wide, on a
/// store dir of this test's own so nothing else on the machine sees it.
#[test]
fn setup_makes_the_store_visible_and_undo_removes_it() {
    if !require_bwrap() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let env = TestEnv::new();
        let err = env.fails(&["setup"], 2);
        assert!(err.contains("run it as root"), "{err}");
        eprintln!("skipped: kiln setup itself needs root");
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let top = format!("/kiln-e2e-setup-{}", std::process::id());
    let store_dir = format!("{top}/store");
    let with_dir = |args: &[&str]| {
        let mut all = vec!["--store-dir", store_dir.as_str()];
        all.extend_from_slice(args);
        env.run(&all)
    };
    ok(&with_dir(&["build", "-A", "multi"]));
    let program = env.work().join("result/bin/first");
    assert!(Command::new(&program).output().is_err());
    let out = with_dir(&["setup"]);
    ok(&out);
    assert!(
        text(&out.stderr).contains("a symlink"),
        "{}",
        text(&out.stderr)
    );
    let direct = Command::new(&program).output().unwrap();
    assert_eq!(ok(&direct), "this-is-first\n");
    // Twice is fine.
    ok(&with_dir(&["setup"]));
    let out = with_dir(&["setup", "--undo"]);
    ok(&out);
    assert!(!Path::new(&top).exists(), "undo leaves {top} behind");
    // The bind mount, and its undo.
    ok(&with_dir(&["setup", "--bind"]));
    let direct = Command::new(&program).output().unwrap();
    assert_eq!(ok(&direct), "this-is-first\n");
    ok(&with_dir(&["setup", "--undo"]));
    assert!(!Path::new(&top).exists(), "undo leaves {top} behind");
}

/// `-p` takes packages from a set (`-f`); no FILE means `shell.nix`, else
/// `default.nix`.
#[test]
fn packages_and_the_default_files() {
    if !require_bwrap() {
        return;
    }
    let env = TestEnv::new();
    project(&env);
    let out = shell_run(
        &env,
        &["-p", "tool", "multi", "-f", "default.nix"],
        "tool p; second",
    );
    assert_eq!(ok(&out), "tool-says p\nthis-is-second\n");
    let err = env.fails(
        &["shell", "-p", "nope", "-f", "default.nix", "--run", "true"],
        2,
    );
    assert!(err.contains("nope"), "{err}");
    let err = env.fails(&["shell", "-p", "a;b", "-f", "default.nix"], 2);
    assert!(err.contains("not a package name"), "{err}");
    // default.nix is a set of several: one must be chosen.
    let err = env.fails(&["shell", "--run", "true"], 2);
    assert!(err.contains("choose it with -A ATTR"), "{err}");
    // `<name>` is a search path lookup, for run and shell.
    let include = format!("proj={}", env.work().join("default.nix").display());
    let out = env.run(&[
        "run",
        "<proj>",
        "-I",
        &include,
        "-A",
        "tool",
        "--",
        "via-lookup",
    ]);
    assert_eq!(ok(&out), "tool-says via-lookup\n");
    let out = shell_run(
        &env,
        &["<proj>", "-I", &include, "-A", "app"],
        "echo $greeting",
    );
    assert!(ok(&out).ends_with("hello there\n"));
    env.write(
        "shell.nix",
        "(import ./default.nix { greeting = \"from-shell-nix\"; }).app\n",
    );
    let out = shell_run(&env, &[], "echo $greeting");
    assert!(ok(&out).ends_with("from-shell-nix\n"));
}
