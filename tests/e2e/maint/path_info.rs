//! `kiln store path-info -rsSh`: the shape `nix path-info` prints (paths
//! padded, `%11d` or human sizes after tabs), and `--sort closure-size`.

use crate::kit::TestEnv;

/// The lines Nix 2.8 prints for these two files added with
/// `nix-store --add` and `nix path-info -sS` / `-sSh` (recorded from a
/// real run; the paths are the same with `--store-dir /nix/store`).
const NIX_SS: &str = "/nix/store/xkzgawp7fpdbbz2zbx51s87vr4c9ls5x-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.txt\t        144\t        144
/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt                                       \t        120\t        120
";
const NIX_SSH: &str = "/nix/store/xkzgawp7fpdbbz2zbx51s87vr4c9ls5x-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.txt\t 144.0 \t 144.0 
/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt                                       \t 120.0 \t 120.0 
";

#[test]
fn path_info_sizes_are_printed_as_nix_prints_them() {
    let env = TestEnv::new();
    let a = env.write("a.txt", "hello\n");
    let b = env.write(
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.txt",
        "a much longer file content\n",
    );
    let nix = ["--store-dir", "/nix/store"];
    let add = |p: &std::path::Path| {
        let mut args = nix.to_vec();
        args.extend(["store", "add", p.to_str().unwrap()]);
        env.ok(&args).trim().to_string()
    };
    let (a, b) = (add(&a), add(&b));
    let run = |flags: &[&str]| {
        let mut args = nix.to_vec();
        args.extend(["store", "path-info"]);
        args.extend_from_slice(flags);
        args.extend([a.as_str(), b.as_str()]);
        env.ok(&args)
    };
    assert_eq!(run(&["-sS"]), NIX_SS);
    assert_eq!(run(&["-sSh"]), NIX_SSH);
    assert_eq!(run(&[]), format!("{b}\n{a}\n"));
}

#[test]
fn path_info_sorts_by_closure_size() {
    let env = TestEnv::new();
    let store = kiln_store::store::Store::open(kiln_store::store::StoreConfig {
        root: env.root(),
        store_dir: kiln_store::StoreDir::new("/kiln/store").unwrap(),
    })
    .unwrap();
    // big is one large file; small refers to nothing; user refers to big,
    // so its closure is the biggest although its own NAR is small.
    let big = env.write("big", vec![b'x'; 100_000]);
    let big = store.add_path(&big, "big").unwrap();
    let small = env.write("small", "s");
    let small = store.add_path(&small, "small").unwrap();
    let text = format!("uses {}", store.print_path(&big));
    let user = store
        .add_text("user", text.as_bytes(), &[big.clone()].into())
        .unwrap();
    let [big, small, user] = [&big, &small, &user].map(|p| store.print_path(p));
    drop(store);
    let order = |flags: &[&str]| -> Vec<String> {
        let mut args = vec!["store", "path-info"];
        args.extend_from_slice(flags);
        args.extend([user.as_str(), small.as_str(), big.as_str()]);
        env.ok(&args)
            .lines()
            .map(|l| l.split('\t').next().unwrap().trim_end().to_string())
            .collect()
    };
    assert_eq!(
        order(&["-S", "--sort", "closure-size"]),
        vec![small.clone(), big.clone(), user.clone()]
    );
    assert_eq!(
        order(&["-s", "--sort", "size"]),
        vec![small.clone(), user.clone(), big.clone()]
    );
    // -r with the sort: the closure of user, biggest closure last.
    let mut args = vec!["store", "path-info", "-rSh", "--sort", "closure-size"];
    args.push(&user);
    let lines = env.ok(&args);
    let last = lines.lines().last().unwrap();
    assert!(last.starts_with(&user) && last.ends_with("K"), "{lines}");
}
