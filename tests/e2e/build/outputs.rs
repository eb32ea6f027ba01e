//! What is checked on outputs: fixed-output hashes, scanned references,
//! allowed/disallowed references, missing outputs, timeouts, and
//! structured attributes.

use std::time::{Duration, Instant};

use kiln_store::{FileIngestionMethod, Hash, HashAlgo};

use crate::kit::{DrvKit, Spec, read};

#[test]
fn fixed_output_hash_is_checked() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let good = Hash::digest(HashAlgo::Sha256, b"fetched\n");
    let wrong = Hash::digest(HashAlgo::Sha256, b"something else\n");
    let ok = kit.write(Spec {
        fixed: Some((FileIngestionMethod::Flat, good)),
        ..Spec::new("fetched", "echo fetched > $out")
    });
    kit.build_ok(&ok);
    let info = kit
        .reopen()
        .path_info(&kit.out(&ok, "out"))
        .unwrap()
        .unwrap();
    assert_eq!(
        info.ca.as_deref(),
        Some(format!("fixed:{}", good.to_typed_nix32()).as_str())
    );

    let bad = kit.write(Spec {
        fixed: Some((FileIngestionMethod::Flat, wrong)),
        ..Spec::new("fetched-bad", "echo fetched > $out")
    });
    let stderr = kit.build_fails_with(&bad, &[], 102);
    assert!(stderr.contains("hash mismatch"), "{stderr}");
    for expected in [
        wrong.to_sri(),
        wrong.to_typed_nix32(),
        good.to_sri(),
        good.to_typed_nix32(),
    ] {
        assert!(stderr.contains(&expected), "{expected} missing:\n{stderr}");
    }
    assert!(!kit.reopen().is_valid(&kit.out(&bad, "out")).unwrap());
}

#[test]
fn references_are_found_by_scanning() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let dep = kit.write(Spec::new("dep", "echo dep > $out"));
    let dep_out = kit.path(&kit.out(&dep, "out"));
    let uses = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("uses", "mkdir $out; echo \"#!$dep/bin\" > $out/script")
    });
    let ignores = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("ignores", "echo nothing > $out")
    });
    let hides = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("hides", "mkdir $out; echo $dep | gzip -9 > $out/data.gz")
    });
    let own = kit.write(Spec::new(
        "own",
        "mkdir $out; echo $out > $out/self; ln -s $out/self $out/link",
    ));
    for d in [&uses, &ignores, &hides, &own] {
        kit.build_ok(d);
    }
    assert_eq!(kit.refs(&uses), vec!["dep"]);
    assert!(kit.refs(&ignores).is_empty());
    assert!(kit.refs(&hides).is_empty(), "{:?}", kit.refs(&hides));
    assert_eq!(kit.refs(&own), vec!["own"]);
}

#[test]
fn allowed_and_disallowed_references_are_enforced() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let dep = kit.write(Spec::new("dep", "echo dep > $out"));
    let dep_out = kit.path(&kit.out(&dep, "out"));
    let allowed_ok = kit.write(Spec {
        env: &[("dep", &dep_out), ("allowedReferences", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("allowed-ok", "echo $dep > $out")
    });
    kit.build_ok(&allowed_ok);
    let allowed_bad = kit.write(Spec {
        env: &[("dep", &dep_out), ("allowedReferences", "")],
        inputs: &[&dep],
        ..Spec::new("allowed-bad", "echo $dep > $out")
    });
    let stderr = kit.build_fails_with(&allowed_bad, &[], 100);
    assert!(
        stderr.contains("allowedReferences") && stderr.contains(&dep_out),
        "{stderr}"
    );
    let disallowed = kit.write(Spec {
        env: &[("dep", &dep_out), ("disallowedReferences", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("disallowed", "echo $dep > $out")
    });
    let stderr = kit.build_fails(&disallowed, &[]);
    assert!(stderr.contains("disallowedReferences"), "{stderr}");
    assert!(!kit.reopen().is_valid(&kit.out(&disallowed, "out")).unwrap());
    // Requisites are transitive: `top` refers to `mid`, which refers to `dep`.
    let mid = kit.write(Spec {
        env: &[("dep", &dep_out)],
        inputs: &[&dep],
        ..Spec::new("mid", "echo $dep > $out")
    });
    let mid_out = kit.path(&kit.out(&mid, "out"));
    let top = kit.write(Spec {
        env: &[("mid", &mid_out), ("disallowedRequisites", &dep_out)],
        inputs: &[&mid],
        ..Spec::new("top", "echo $mid > $out")
    });
    let stderr = kit.build_fails(&top, &[]);
    assert!(
        stderr.contains("disallowedRequisites") && stderr.contains(&dep_out),
        "{stderr}"
    );
    // Self-references are allowed by naming the output.
    let selfish = kit.write(Spec {
        env: &[("allowedReferences", "out")],
        ..Spec::new("selfish", "echo $out > $out")
    });
    kit.build_ok(&selfish);
}

#[test]
fn missing_outputs_and_timeouts_fail() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let lazy = kit.write(Spec::new("lazy", "echo did nothing"));
    let stderr = kit.build_fails_with(&lazy, &[], 100);
    assert!(stderr.contains("did not produce output 'out'"), "{stderr}");

    let slow = kit.write(Spec::new("slow", "echo start; sleep 60; echo > $out"));
    let started = Instant::now();
    let stderr = kit.build_fails_with(&slow, &["--timeout", "1"], 101);
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let stderr = kit.build_fails_with(&slow, &["--max-silent-time", "1"], 101);
    assert!(stderr.contains("printed nothing"), "{stderr}");
}

#[test]
fn structured_attributes_are_written_to_files() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let drv = kit.write(Spec {
        env: &[(
            "__json",
            r#"{"name":"structured","words":["a","b c"],"n":3}"#,
        )],
        ..Spec::new(
            "structured",
            "mkdir $out; cat $NIX_ATTRS_SH_FILE > $out/sh; cat $NIX_ATTRS_JSON_FILE > $out/json; \
             echo \"${name:-unset}\" > $out/name",
        )
    });
    kit.build_ok(&drv);
    let out = kit.real(&drv);
    // .attrs.sh is for bash (arrays); busybox sh cannot source it.
    let sh = read(&out.join("sh"));
    assert!(sh.contains("declare -a words=('a' 'b c')"), "{sh}");
    assert!(sh.contains("declare -i n=3"), "{sh}");
    let out_path = kit.path(&kit.out(&drv, "out"));
    assert!(
        sh.contains(&format!("declare -A outputs=(['out']='{out_path}')")),
        "{sh}"
    );
    assert!(read(&out.join("json")).contains(&format!("\"outputs\":{{\"out\":\"{out_path}\"}}")));
    // The attributes are not environment variables.
    assert_eq!(read(&out.join("name")), "unset\n");
}
