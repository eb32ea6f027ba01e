//! `kiln why-depends`: the shortest chain of references, `--precise` with
//! the file and bytes of each reference, and a path that does not depend.

use crate::kit::{DrvKit, Spec};

#[test]
fn why_depends_shows_the_chain_and_where_each_reference_sits() {
    let Some(mut kit) = DrvKit::sandboxed() else {
        return;
    };
    let base = kit.write(Spec::new("base", "echo base > $out"));
    let base_out = kit.path(&kit.out(&base, "out"));
    let middle = kit.write(Spec {
        env: &[("base", &base_out)],
        inputs: &[&base],
        ..Spec::new(
            "middle",
            "mkdir -p $out/bin; printf 'exec %s/run\\n' $base > $out/bin/tool",
        )
    });
    let middle_out = kit.path(&kit.out(&middle, "out"));
    let top = kit.write(Spec {
        env: &[("middle", &middle_out), ("base", &base_out)],
        inputs: &[&middle, &base],
        // Refers to base only through middle; the link holds middle.
        ..Spec::new("top", "mkdir $out; ln -s $middle/bin/tool $out/tool")
    });
    let top_out = kit.path(&kit.out(&top, "out"));
    kit.build_ok(&top);

    let chain = kit.env.ok(&["why-depends", &top_out, &base_out]);
    assert_eq!(
        chain,
        format!("{top_out}\n└───{middle_out}\n    └───{base_out}\n")
    );

    let precise = kit
        .env
        .ok(&["why-depends", "--precise", &top_out, &base_out]);
    let base_hash = &base_out["/kiln/store/".len()..][..32];
    let middle_hash = &middle_out["/kiln/store/".len()..][..32];
    let lines: Vec<&str> = precise.lines().collect();
    assert_eq!(lines[0], top_out, "{precise}");
    assert!(
        lines[1].starts_with("└───tool -> …/kiln/store/")
            && lines[1].contains(middle_hash)
            && lines[1].ends_with("-middle/bin/tool…"),
        "{precise}"
    );
    assert_eq!(lines[2], format!("    → {middle_out}"), "{precise}");
    assert!(
        lines[3].starts_with("    └───bin/tool: …exec /kiln/store/")
            && lines[3].contains(base_hash)
            && lines[3].ends_with("-base/run.…"),
        "{precise}"
    );
    assert_eq!(lines[4], format!("        → {base_out}"), "{precise}");
    assert_eq!(lines.len(), 5, "{precise}");

    let json = kit
        .env
        .ok(&["why-depends", "--precise", "--json", &top_out, &base_out]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json[2]["path"], base_out.as_str());
    assert_eq!(json[2]["referencedFrom"][0]["file"], "bin/tool");
    assert_eq!(json[2]["referencedFrom"][0]["offset"], 17);

    // base does not depend on top.
    let stderr = kit.env.fails(&["why-depends", &base_out, &top_out], 1);
    assert!(
        stderr.contains(&format!("'{base_out}' does not depend on '{top_out}'")),
        "{stderr}"
    );
}

/// `--all`: every path of references, closest to DEP first, a path shown
/// already not expanded again. The graph (toFile paths, no build):
/// top -> {m1, m2, base}, m2 -> {m1, base}, m1 -> base, and top -> other
/// (which does not reach base, so it is not drawn).
#[test]
fn why_depends_all_shows_every_path_of_references() {
    let env = crate::kit::TestEnv::new();
    env.write(
        "graph.nix",
        r#"let
  base = builtins.toFile "base" "base";
  m1 = builtins.toFile "m1" "${base}";
  m2 = builtins.toFile "m2" "${base} ${m1}";
  other = builtins.toFile "other" "alone";
  top = builtins.toFile "top" "${m1} ${m2} ${base} ${other}";
in builtins.concatStringsSep " " [ top m1 m2 base ]"#,
    );
    let out = env.ok(&["eval", "--read-write-mode", "graph.nix"]);
    let paths: Vec<&str> = out.trim().trim_matches('"').split(' ').collect();
    let [top, m1, m2, base] = paths[..] else {
        panic!("{out}")
    };
    // top's references: base (distance 0), then m1 and m2 (distance 1) by path.
    let (first, second) = if m1 < m2 { (m1, m2) } else { (m2, m1) };
    let expand = |p: &str, tail: &str, shown_m1: bool| -> String {
        if p == m1 && shown_m1 {
            String::new() // shown above, not expanded again
        } else if p == m1 {
            format!("{tail}└───{base}\n")
        } else if shown_m1 {
            // m2 -> base, m1 (both shown already)
            format!("{tail}├───{base}\n{tail}└───{m1}\n")
        } else {
            format!("{tail}├───{base}\n{tail}└───{m1}\n{tail}    └───{base}\n")
        }
    };
    let want = format!(
        "{top}\n├───{base}\n├───{first}\n{}└───{second}\n{}",
        expand(first, "│   ", false),
        expand(second, "    ", true),
    );
    assert_eq!(env.ok(&["why-depends", "--all", top, base]), want);
    // Without --all: one shortest chain.
    assert_eq!(
        env.ok(&["why-depends", top, base]),
        format!("{top}\n└───{base}\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["why-depends", "--all", "--json", top, base])).unwrap();
    assert_eq!(json["path"], top);
    assert_eq!(json["dependencies"].as_array().unwrap().len(), 3);
    assert_eq!(json["dependencies"][0]["path"], base);
    let stderr = env.fails(&["why-depends", "--all", base, top], 1);
    assert!(stderr.contains("does not depend on"), "{stderr}");
}
