//! The README's quick start stays true: `kiln build examples/hello.nix`
//! builds in the sandbox and leaves a `result` link to the greeting.

use std::path::Path;

use crate::kit::{TestEnv, require_bwrap};

#[test]
fn readme_example_builds_and_links_result() {
    if !require_bwrap() {
        return;
    }
    if !Path::new("/usr/bin/busybox").exists() {
        eprintln!("skipped: /usr/bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let env = TestEnv::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.nix");
    let out = env.ok(&["build", "--print-out-paths", example.to_str().unwrap()]);
    let out_path = out.trim();
    assert!(
        out_path.starts_with("/kiln/store/") && out_path.ends_with("-hello"),
        "{out}"
    );
    let greeting = std::fs::read_to_string(env.work().join("result")).unwrap();
    assert_eq!(greeting, "Hello from hello, built in a kiln sandbox\n");

    // A second build has nothing to do and gives the same path.
    let again = env.ok(&["build", "--print-out-paths", example.to_str().unwrap()]);
    assert_eq!(again, out);
}
