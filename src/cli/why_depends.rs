//! `kiln why-depends PATH DEP`: the chain of references from PATH to DEP,
//! and with `--precise` where each reference sits in the files.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use kiln_store::StorePath;
use kiln_store::scan::{Occurrence, find_occurrences, hash_part};
use kiln_store::store::Store;
use serde_json::{Value, json};

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store_read_only, parse_store_path_arg};
use crate::exit;

/// Bytes of context shown on each side of a reference.
const MARGIN: usize = 32;

/// Show why PATH depends on DEP: the shortest chain of references from
/// PATH to DEP, one path a line, as `nix why-depends` draws it.
///
/// With --precise, each step also shows every file of the referrer that
/// holds the reference, with the bytes around it (non-printable bytes as
/// `.`). Exits 1 (saying so) when DEP is not in PATH's closure.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln why-depends ./result /kiln/store/<hash>-glibc-2.39
  kiln why-depends --precise ./result /kiln/store/<hash>-zlib-1.3
  kiln why-depends --json ./result ./result-dev
  kiln why-depends --all ./result /kiln/store/<hash>-zlib-1.3")]
pub struct WhyDependsArgs {
    /// The path whose closure is searched.
    #[arg(value_name = "PATH")]
    path: String,
    /// The dependency to explain.
    #[arg(value_name = "DEP")]
    dep: String,
    /// Show the files holding each reference and the bytes around it.
    #[arg(long)]
    precise: bool,
    /// Print the chain as a JSON array (with --precise, each step's hits);
    /// with --all, a tree of `{path, referencedFrom, dependencies}`.
    #[arg(long)]
    json: bool,
    /// Show every path of references from PATH to DEP, not only the
    /// shortest (as `nix why-depends --all`): each path that leads to DEP
    /// under each referrer, closest to DEP first; a path shown already is
    /// not expanded again.
    #[arg(long, short = 'a')]
    all: bool,
}

pub fn run(global: &GlobalOpts, args: &WhyDependsArgs) -> anyhow::Result<ExitCode> {
    let store = open_store_read_only(global)?;
    let path = valid(&store, &args.path)?;
    let dep = valid(&store, &args.dep)?;
    if args.all {
        return all_paths(&store, &path, &dep, args);
    }
    let Some(chain) = shortest_chain(&store, &path, &dep)? else {
        crate::say!(
            "'{}' does not depend on '{}'",
            store.print_path(&path),
            store.print_path(&dep)
        );
        return Ok(ExitCode::from(1));
    };
    // For each step after the first, where the previous path refers to it.
    let mut hits: Vec<Vec<Occurrence>> = Vec::new();
    if args.precise {
        for pair in chain.windows(2) {
            hits.push(occurrences(&store, &pair[0], &pair[1])?);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let steps: Vec<Value> = chain
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut step = json!({ "path": store.print_path(p) });
                if args.precise && i > 0 {
                    let list: Vec<Value> = hits[i - 1].iter().map(hit_json).collect();
                    step["referencedFrom"] = json!(list);
                }
                step
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &steps)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{}", store.print_path(&chain[0]))?;
    for (i, p) in chain.iter().enumerate().skip(1) {
        let indent = "    ".repeat(i - 1);
        if args.precise {
            for o in &hits[i - 1] {
                writeln!(out, "{indent}└───{}", render_hit(o))?;
            }
            writeln!(out, "{indent}    → {}", store.print_path(p))?;
        } else {
            writeln!(out, "{indent}└───{}", store.print_path(p))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn valid(store: &Store, arg: &str) -> anyhow::Result<StorePath> {
    let path = parse_store_path_arg(store.config(), arg)?;
    if !store.is_valid(&path)? {
        return Err(exit::user(anyhow!(
            "{arg}: {} is not a valid path in this store",
            store.print_path(&path)
        )));
    }
    Ok(path)
}

/// Breadth-first over references: the shortest chain from `from` to `to`
/// (ties broken by path order, so the answer is stable).
fn shortest_chain(
    store: &Store,
    from: &StorePath,
    to: &StorePath,
) -> anyhow::Result<Option<Vec<StorePath>>> {
    let mut parent: BTreeMap<StorePath, Option<StorePath>> = BTreeMap::new();
    parent.insert(from.clone(), None);
    let mut queue = VecDeque::from([from.clone()]);
    while let Some(current) = queue.pop_front() {
        if &current == to {
            let mut chain = vec![current];
            while let Some(Some(up)) = parent.get(chain.last().expect("non-empty")) {
                chain.push(up.clone());
            }
            chain.reverse();
            return Ok(Some(chain));
        }
        for reference in store.references(&current)? {
            if !parent.contains_key(&reference) {
                parent.insert(reference.clone(), Some(current.clone()));
                queue.push_back(reference);
            }
        }
    }
    Ok(None)
}

/// `FILE: …context…` (`FILE -> …target…` for a symlink).
fn render_hit(o: &Occurrence) -> String {
    let file = if o.file.as_os_str().is_empty() {
        ".".to_string()
    } else {
        o.file.display().to_string()
    };
    let sep = if o.in_target { " ->" } else { ":" };
    format!("{file}{sep} …{}…", printable(&o.context))
}

/// The bytes as text, each byte outside printable ASCII as `.`.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// Where in `referrer`'s files the hash of `reference` sits.
fn occurrences(
    store: &Store,
    referrer: &StorePath,
    reference: &StorePath,
) -> anyhow::Result<Vec<Occurrence>> {
    let hash = hash_part(reference.hash_part_str())
        .ok_or_else(|| anyhow!("{} has no hash part", store.print_path(reference)))?;
    Ok(find_occurrences(&store.real_path(referrer), &hash, MARGIN)?)
}

/// One occurrence in `--json --precise` output.
fn hit_json(o: &Occurrence) -> Value {
    json!({
        "file": o.file.display().to_string(),
        "symlinkTarget": o.in_target,
        "offset": o.offset,
        "context": printable(&o.context),
    })
}

/// `--all`: the subgraph of PATH's closure that reaches DEP, drawn as a
/// tree from PATH (Nix's order: references closest to DEP first, then by
/// path; a path drawn already is shown again but not expanded).
fn all_paths(
    store: &Store,
    from: &StorePath,
    to: &StorePath,
    args: &WhyDependsArgs,
) -> anyhow::Result<ExitCode> {
    let mut refs: BTreeMap<StorePath, Vec<StorePath>> = BTreeMap::new();
    for path in store.closure(std::slice::from_ref(from))? {
        let references = store.references(&path)?.into_iter().collect();
        refs.insert(path, references);
    }
    // Distance of each path to DEP, breadth-first over the reversed edges.
    let mut referrers: BTreeMap<&StorePath, Vec<&StorePath>> = BTreeMap::new();
    for (referrer, references) in &refs {
        for reference in references {
            referrers.entry(reference).or_default().push(referrer);
        }
    }
    let mut dist: BTreeMap<&StorePath, usize> = BTreeMap::new();
    if refs.contains_key(to) {
        dist.insert(to, 0);
    }
    let mut queue: VecDeque<&StorePath> = dist.keys().copied().collect();
    while let Some(current) = queue.pop_front() {
        let d = dist[current];
        for &referrer in referrers.get(current).into_iter().flatten() {
            if !dist.contains_key(referrer) {
                dist.insert(referrer, d + 1);
                queue.push_back(referrer);
            }
        }
    }
    if !dist.contains_key(from) {
        crate::say!(
            "'{}' does not depend on '{}'",
            store.print_path(from),
            store.print_path(to)
        );
        return Ok(ExitCode::from(1));
    }
    let mut walk = AllWalk {
        store,
        refs: &refs,
        dist: &dist,
        precise: args.precise,
        shown: BTreeSet::new(),
        text: String::new(),
    };
    walk.text = format!("{}\n", store.print_path(from));
    let tree = walk.node(from, "")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &tree)?;
        writeln!(out)?;
    } else {
        out.write_all(walk.text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

struct AllWalk<'a> {
    store: &'a Store,
    refs: &'a BTreeMap<StorePath, Vec<StorePath>>,
    dist: &'a BTreeMap<&'a StorePath, usize>,
    precise: bool,
    shown: BTreeSet<StorePath>,
    text: String,
}

impl AllWalk<'_> {
    /// Draw the references of `node` that lead to DEP (its own line is
    /// drawn by the caller) and return its JSON.
    fn node(&mut self, node: &StorePath, tail: &str) -> anyhow::Result<Value> {
        let mut object = json!({ "path": self.store.print_path(node) });
        if !self.shown.insert(node.clone()) {
            object["shownAbove"] = json!(true);
            return Ok(object);
        }
        let mut next: Vec<(usize, &StorePath)> = self.refs[node]
            .iter()
            .filter(|r| *r != node)
            .filter_map(|r| self.dist.get(r).map(|&d| (d, r)))
            .collect();
        next.sort();
        let mut children = Vec::new();
        for (i, (_, child)) in next.iter().enumerate() {
            let last = i + 1 == next.len();
            let (conn, more) = if last {
                ("└───", "    ")
            } else {
                ("├───", "│   ")
            };
            let mut hits_json = Vec::new();
            if self.precise {
                for o in &occurrences(self.store, node, child)? {
                    self.text += &format!("{tail}{conn}{}\n", render_hit(o));
                    hits_json.push(hit_json(o));
                }
                self.text += &format!("{tail}{more}→ {}\n", self.store.print_path(child));
            } else {
                self.text += &format!("{tail}{conn}{}\n", self.store.print_path(child));
            }
            let mut value = self.node(child, &format!("{tail}{more}"))?;
            if self.precise {
                value["referencedFrom"] = json!(hits_json);
            }
            children.push(value);
        }
        object["dependencies"] = json!(children);
        Ok(object)
    }
}
