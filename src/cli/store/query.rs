//! `kiln store query`: questions about the reference graph, printed as
//! `nix-store --query` prints them (the tree, the graphviz graph, the
//! orders and the `unknown-deriver` placeholder are Nix 2.8's).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use anyhow::anyhow;
use clap::Args;
use kiln_store::StorePath;
use kiln_store::store::Store;

use super::valid_path;
use crate::cli::GlobalOpts;
use crate::cli::config::open_store_read_only;
use crate::exit;

/// Query the reference graph of valid paths (like `nix-store --query`).
///
/// Exactly one question is asked. A `.drv` argument is the derivation
/// itself; with --use-output it stands for its outputs (which must be
/// valid, that is built).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store query --references ./result
  kiln store query --requisites ./result       the closure, dependencies first
  kiln store query -R --include-outputs /kiln/store/<hash>-hello.drv
  kiln store query --tree ./result
  kiln store query --graph ./result | dot -Tsvg > deps.svg
  kiln store query --deriver ./result          the .drv that built it
  kiln store query --outputs /kiln/store/<hash>-hello.drv
  kiln store query --referrers-closure /kiln/store/<hash>-glibc")]
#[command(group(clap::ArgGroup::new("what").required(true)))]
pub struct QueryArgs {
    /// Paths the given paths refer to directly (each after the ones it
    /// refers to, as for every list below).
    #[arg(long, group = "what")]
    references: bool,
    /// Valid paths that refer to the given paths directly.
    #[arg(long, group = "what")]
    referrers: bool,
    /// The closure: every path reachable through references, each path
    /// after the paths it refers to.
    #[arg(long, short = 'R', group = "what")]
    requisites: bool,
    /// Every valid path that reaches the given paths through references,
    /// each path after the paths it refers to.
    #[arg(long, group = "what")]
    referrers_closure: bool,
    /// The closure as a tree: each path's references below it, a path
    /// seen before marked `[...]` and not expanded again.
    #[arg(long, group = "what")]
    tree: bool,
    /// The closure as a graphviz (dot) graph, an edge from each
    /// reference to its referrer.
    #[arg(long, group = "what")]
    graph: bool,
    /// The derivation that built each path, or `unknown-deriver`.
    #[arg(long, short = 'd', group = "what")]
    deriver: bool,
    /// The output paths of each derivation (a path that is not a
    /// derivation stands for itself).
    #[arg(long, group = "what")]
    outputs: bool,
    /// The NAR hash of each path, `sha256:<nix32>`.
    #[arg(long, group = "what")]
    hash: bool,
    /// The NAR size of each path in bytes.
    #[arg(long, group = "what")]
    size: bool,
    /// A `.drv` argument stands for its outputs.
    #[arg(long, short = 'u')]
    use_output: bool,
    /// With --requisites: the outputs of every derivation in the closure
    /// that are valid, and their closures, too.
    #[arg(long)]
    include_outputs: bool,
    /// Print a JSON array instead of one line per path.
    #[arg(long, conflicts_with_all = ["tree", "graph"])]
    json: bool,
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: QueryArgs) -> anyhow::Result<()> {
    // (clap's `requires` counts a flag's default `false` as given.)
    if args.include_outputs && !args.requisites {
        return Err(exit::user(anyhow!(
            "--include-outputs goes with --requisites only"
        )));
    }
    let store = open_store_read_only(global)?;
    let mut roots = Vec::new();
    for arg in &args.paths {
        let path = valid_path(&store, arg)?;
        if args.outputs || args.use_output {
            roots.extend(outputs_of(&store, arg, path, args.use_output)?);
        } else {
            roots.push(path);
        }
    }
    let text = if args.tree {
        tree(&store, &roots)?
    } else if args.graph {
        graph(&store, &roots)?
    } else {
        let lines = answer(&store, &args, &roots)?;
        if args.json {
            let mut text = serde_json::to_string_pretty(&lines)?;
            text.push('\n');
            text
        } else {
            lines.iter().map(|line| format!("{line}\n")).collect()
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The lines of a question whose answer is a list.
fn answer(store: &Store, args: &QueryArgs, roots: &[StorePath]) -> anyhow::Result<Vec<String>> {
    let print = |paths: Vec<StorePath>| paths.iter().map(|p| store.print_path(p)).collect();
    if args.requisites {
        let mut closure = store.closure(roots)?;
        if args.include_outputs {
            closure = with_outputs(store, closure)?;
        }
        return Ok(print(store.topo_sort(&closure)?));
    }
    if args.referrers_closure {
        return Ok(print(store.topo_sort(&referrers_closure(store, roots)?)?));
    }
    if args.references || args.referrers {
        // Nix sorts these too: each path after the ones it refers to.
        let mut set = BTreeSet::new();
        for path in roots {
            if args.references {
                set.extend(store.references(path)?);
            } else {
                set.extend(store.referrers(path)?);
            }
        }
        return Ok(print(store.topo_sort(&set)?));
    }
    // One line per argument (after --use-output / --outputs).
    let mut lines = Vec::new();
    for path in roots {
        let line = if args.outputs {
            store.print_path(path)
        } else {
            let info = store
                .path_info(path)?
                .ok_or_else(|| anyhow!("{} stopped being valid", store.print_path(path)))?;
            if args.deriver {
                match &info.deriver {
                    Some(drv) => store.print_path(drv),
                    None => "unknown-deriver".to_owned(),
                }
            } else if args.hash {
                format!("{}:{}", info.nar_hash.algo(), info.nar_hash.to_nix32())
            } else {
                info.nar_size.to_string()
            }
        };
        lines.push(line);
    }
    Ok(lines)
}

/// A derivation's outputs (sorted), or the path itself if it is not a
/// derivation. With `must_be_valid` (--use-output), every output must be
/// valid: the question is about the built paths.
fn outputs_of(
    store: &Store,
    arg: &str,
    path: StorePath,
    must_be_valid: bool,
) -> anyhow::Result<Vec<StorePath>> {
    if !path.name().ends_with(".drv") {
        return Ok(vec![path]);
    }
    let outputs: BTreeSet<StorePath> = store.derivation_outputs(&path)?.into_values().collect();
    if must_be_valid {
        for output in &outputs {
            if !store.is_valid(output)? {
                return Err(exit::user(anyhow!(
                    "{arg}: output {} is not valid (build it first)",
                    store.print_path(output)
                )));
            }
        }
    }
    Ok(outputs.into_iter().collect())
}

/// `closure` plus the valid outputs of each derivation in it and their
/// closures, until nothing new comes in (Nix's `--include-outputs`).
fn with_outputs(
    store: &Store,
    mut closure: BTreeSet<StorePath>,
) -> anyhow::Result<BTreeSet<StorePath>> {
    let mut seen_drvs = BTreeSet::new();
    loop {
        let mut new = Vec::new();
        for drv in closure.iter().filter(|p| p.name().ends_with(".drv")) {
            if !seen_drvs.insert(drv.clone()) {
                continue;
            }
            for output in store.derivation_outputs(drv)?.into_values() {
                if !closure.contains(&output) && store.is_valid(&output)? {
                    new.push(output);
                }
            }
        }
        if new.is_empty() {
            return Ok(closure);
        }
        closure.extend(store.closure(&new)?);
    }
}

/// Every valid path that reaches one of `roots`, the roots included.
fn referrers_closure(store: &Store, roots: &[StorePath]) -> anyhow::Result<BTreeSet<StorePath>> {
    let mut done: BTreeSet<StorePath> = BTreeSet::new();
    let mut work: Vec<StorePath> = roots.to_vec();
    while let Some(path) = work.pop() {
        if !done.insert(path.clone()) {
            continue;
        }
        work.extend(
            store
                .referrers(&path)?
                .into_iter()
                .filter(|r| !done.contains(r)),
        );
    }
    Ok(done)
}

const TREE_CONN: &str = "├───";
const TREE_LAST: &str = "└───";
const TREE_LINE: &str = "│   ";
const TREE_NULL: &str = "    ";

/// `nix-store -q --tree`: each root, then its references (dependencies
/// first, so the tree stays flat), drawn with box characters. A path
/// already drawn (by any root) is printed once more with ` [...]` and not
/// expanded. Iterative, so a long chain cannot overflow the stack.
fn tree(store: &Store, roots: &[StorePath]) -> anyhow::Result<String> {
    let mut text = String::new();
    let mut done = BTreeSet::new();
    // (path, first pad, tail pad), popped from the end.
    let mut stack: Vec<(StorePath, String, String)> = roots
        .iter()
        .rev()
        .map(|p| (p.clone(), String::new(), String::new()))
        .collect();
    while let Some((path, first, tail)) = stack.pop() {
        let printed = store.print_path(&path);
        if !done.insert(path.clone()) {
            writeln!(text, "{first}{printed} [...]")?;
            continue;
        }
        writeln!(text, "{first}{printed}")?;
        let children = store.topo_sort(&store.references(&path)?)?;
        let last = children.len().saturating_sub(1);
        for (n, child) in children.into_iter().enumerate().rev() {
            let (conn, line) = if n == last {
                (TREE_LAST, TREE_NULL)
            } else {
                (TREE_CONN, TREE_LINE)
            };
            stack.push((child, format!("{tail}{conn}"), format!("{tail}{line}")));
        }
    }
    Ok(text)
}

/// `nix-store -q --graph`: a node per path of the closure (boxes filled
/// red, labelled with the name), an edge from each reference to its
/// referrer in colours taken in turn; self-references left out.
fn graph(store: &Store, roots: &[StorePath]) -> anyhow::Result<String> {
    const COLOURS: [&str; 6] = ["black", "red", "green", "blue", "magenta", "burlywood"];
    let mut colour = COLOURS.iter().cycle();
    let mut text = String::from("digraph G {\n");
    let mut work: BTreeSet<StorePath> = roots.iter().cloned().collect();
    let mut done = BTreeSet::new();
    while let Some(path) = work.pop_first() {
        if !done.insert(path.clone()) {
            continue;
        }
        writeln!(
            text,
            "\"{}\" [label = \"{}\", shape = box, style = filled, fillcolor = \"#ff0000\"];",
            path.base_name(),
            path.name()
        )?;
        for reference in store.references(&path)? {
            if reference == path {
                continue;
            }
            writeln!(
                text,
                "\"{}\" -> \"{}\" [color = \"{}\"];",
                reference.base_name(),
                path.base_name(),
                colour.next().expect("a cycle never ends")
            )?;
            work.insert(reference);
        }
    }
    text.push_str("}\n");
    Ok(text)
}
