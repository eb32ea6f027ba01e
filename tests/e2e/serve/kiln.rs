//! A kiln client and a kiln server (a second root) over pipes.

use kiln_remote::serve::{BuildOptions, RemoteError, basic_derivation};
use kiln_store::StorePath;

use super::{connect, kiln_serve, open};
use crate::kit::{DrvKit, STORE_DIR, Spec, TestEnv};

/// The closure of `paths` in reference order.
fn ordered(store: &kiln_store::store::Store, paths: &[StorePath]) -> Vec<StorePath> {
    store.topo_sort(&store.closure(paths).unwrap()).unwrap()
}

#[test]
fn copy_a_closure_build_remotely_and_copy_the_outputs_back() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let a = kit.write(Spec::new(
        "dep",
        "mkdir $out; echo dep > $out/data; ln -s data $out/link",
    ));
    let dep = kit.path(&kit.out(&a, "out"));
    let script = format!("mkdir $out; cat {dep}/data > $out/copy; echo {dep} > $out/ref");
    let b = kit.write(Spec {
        inputs: &[&a],
        ..Spec::new("top", &script)
    });
    kit.build_ok(&a);
    let remote = TestEnv::new();
    let mut client = connect(kiln_serve(&remote.root(), STORE_DIR, true), STORE_DIR);
    // The inputs the build needs, sent in reference order.
    let drv = kit.drvs[&b].clone();
    let basic = basic_derivation(&kit.store, &drv).unwrap();
    assert!(basic.input_srcs.contains(&kit.out(&a, "out")));
    let inputs: Vec<StorePath> = basic.input_srcs.iter().cloned().collect();
    let order = ordered(&kit.store, &inputs);
    assert_eq!(client.query_valid_paths(&order).unwrap().len(), 0);
    client.copy_to(&kit.store, &order).unwrap();
    assert_eq!(
        client.query_valid_paths(&order).unwrap(),
        order.iter().cloned().collect()
    );
    // A second copy sends nothing (and still succeeds).
    client.copy_to(&kit.store, &order).unwrap();
    let result = client
        .build_derivation(&b, &basic, &BuildOptions::default())
        .unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(result.status_name(), "Built");
    assert_eq!(result.times_built, 1);
    assert!(result.stop_time >= result.start_time && result.start_time > 0);
    // Built again: valid already.
    let again = client
        .build_derivation(&b, &basic, &BuildOptions::default())
        .unwrap();
    assert_eq!(again.status_name(), "AlreadyValid");
    // Back into the local store, where the output is missing.
    let out = kit.out(&b, "out");
    assert!(!kit.store.is_valid(&out).unwrap());
    client
        .copy_from(&kit.store, std::slice::from_ref(&out))
        .unwrap();
    let remote_info = open(&remote.root(), STORE_DIR)
        .path_info(&out)
        .unwrap()
        .unwrap();
    let fetched = kit.store.path_info(&out).unwrap().unwrap();
    assert_eq!(fetched.nar_hash, remote_info.nar_hash);
    assert_eq!(fetched.references, remote_info.references);
    assert_eq!(fetched.deriver, Some(b.clone()));
    assert!(client.close().unwrap().success());
    // The same NAR hash as a build here.
    let local = DrvKit::sandboxed().unwrap();
    let mut local = local;
    let a2 = local.write(Spec::new(
        "dep",
        "mkdir $out; echo dep > $out/data; ln -s data $out/link",
    ));
    let b2 = local.write(Spec {
        inputs: &[&a2],
        ..Spec::new("top", &script)
    });
    assert_eq!(b2, b);
    local.build_ok(&b2);
    let built = local.store.path_info(&out).unwrap().unwrap();
    assert_eq!(built.nar_hash, fetched.nar_hash);
    assert_eq!(built.nar_size, fetched.nar_size);
    kit.assert_store_consistent();
}

#[test]
fn a_failed_remote_build_reports_its_status_and_message() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let b = kit.write(Spec::new("fails", "echo nope >&2; exit 3"));
    let remote = TestEnv::new();
    let mut client = connect(kiln_serve(&remote.root(), STORE_DIR, true), STORE_DIR);
    client.copy_to(&kit.store, &[kit.busybox.clone()]).unwrap();
    let basic = basic_derivation(&kit.store, &kit.drvs[&b]).unwrap();
    let result = client
        .build_derivation(&b, &basic, &BuildOptions::default())
        .unwrap();
    assert!(!result.success());
    assert_eq!(result.status_name(), "PermanentFailure");
    assert!(result.error_msg.contains("fails"), "{}", result.error_msg);
    // The connection is still good.
    assert!(
        client
            .query_valid_paths(&[kit.busybox.clone()])
            .unwrap()
            .len()
            == 1
    );
}

#[test]
fn without_write_imports_are_refused_as_nix_refuses_them() {
    let kit = DrvKit::new();
    let remote = TestEnv::new();
    let mut client = connect(kiln_serve(&remote.root(), STORE_DIR, false), STORE_DIR);
    // Queries work.
    assert!(
        client
            .query_valid_paths(std::slice::from_ref(&kit.busybox))
            .unwrap()
            .is_empty()
    );
    let err = client
        .copy_to(&kit.store, std::slice::from_ref(&kit.busybox))
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, RemoteError::Connection { .. }), "{message}");
    assert!(
        message.contains("importing paths is not allowed"),
        "{message}"
    );
    assert!(
        !open(&remote.root(), STORE_DIR)
            .is_valid(&kit.busybox)
            .unwrap()
    );
    // The client is unusable now, and says so.
    assert!(client.query_valid_paths(&[]).is_err());
}

#[test]
fn a_remote_killed_mid_transfer_registers_nothing() {
    let env = TestEnv::new();
    let remote = TestEnv::new();
    // A 4 MiB file on the remote, then a server whose output stops after
    // 1 MiB: the NAR is cut in the middle. `stdbuf -o0`: head writes
    // through stdio, which would hold the handshake in its buffer.
    let mut bytes = vec![0u8; 4 << 20];
    crate::kit::Prng::new(17).fill(&mut bytes);
    let big = env.write("big", &bytes);
    let rstore = open(&remote.root(), STORE_DIR);
    let path = rstore.add_path(&big, "big").unwrap();
    drop(rstore);
    let serve = kiln_serve(&remote.root(), STORE_DIR, false);
    let line = format!(
        "{:?} {} | stdbuf -o0 head -c 1048576",
        serve.get_program(),
        serve
            .get_args()
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut sh = std::process::Command::new("sh");
    sh.args(["-c", &line]);
    let mut client = connect(sh, STORE_DIR);
    let local = open(&env.root(), STORE_DIR);
    let err = client
        .copy_from(&local, std::slice::from_ref(&path))
        .unwrap_err();
    assert!(matches!(err, RemoteError::Connection { .. }), "{err}");
    assert!(err.to_string().contains("closed the connection"), "{err}");
    assert!(!local.is_valid(&path).unwrap());
    assert!(!local.real_path(&path).exists());
    env.assert_store_consistent();
}

#[test]
fn a_remote_that_stops_answering_times_out() {
    let start = std::time::Instant::now();
    // Answers the handshake (magic 2, version 0x207, little-endian), then
    // says nothing more.
    let mut hang = std::process::Command::new("sh");
    hang.args([
        "-c",
        r"printf '\313\356\122\124\000\000\000\000\007\002\000\000\000\000\000\000'; exec sleep 30",
    ]);
    let mut client = connect(hang, STORE_DIR);
    client.set_idle_timeout(Some(std::time::Duration::from_millis(500)));
    let err = client.query_valid_paths(&[]).unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
