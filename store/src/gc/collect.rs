//! The collector: mark what the roots keep alive, invalidate the rest in
//! one transaction, then delete the files.
//!
//! # The sequence, and why a kill at any moment is harmless
//!
//! 1. Take `gc.lock` exclusively (`GcLock`): from here until step 4 no
//!    process can add a temp root, so none can start making a path valid
//!    (every install records its paths as temp roots first).
//! 2. Read the roots (deleting stale `auto/` entries and the temp roots
//!    files of dead processes).
//! 3. In one `BEGIN IMMEDIATE` transaction: read the whole reference
//!    graph, mark what is alive, choose the dead paths (all of them, or
//!    with `max_freed` a prefix, always together with their referrers),
//!    delete their rows. After the commit the database no longer names
//!    them; their files are still there, unregistered, which every install
//!    and the next collection treat as garbage.
//! 4. Unlink each dead file or symlink (one call, like the rename it
//!    replaces), and rename each dead directory to `.trash-kiln-<name>`
//!    in the store directory (one `rename` in the same directory: atomic,
//!    and no permission change on a read-only tree). Unregistered leftovers no root names (what a
//!    killed install or collection leaves) go the same way, and temp dirs
//!    of dead processes are removed. Then `gc.lock` is released: other
//!    processes may make the same paths valid again at once, since the
//!    old files are no longer at those names.
//! 5. Delete every `.trash-kiln-*` tree fd-relative
//!    ([`crate::delete::remove_tree`]), also those an interrupted
//!    collection left.

use std::collections::HashSet;
use std::fs;
use std::io;

use crate::db::GcGraph;
use crate::delete::remove_tree;
use crate::gc::roots::Root;
use crate::gc::temp_roots::GcLock;
use crate::store::{Store, StoreError, temp};
use crate::store_path::StorePath;

/// Names of half-deleted paths in the store directory start with this.
pub const TRASH_PREFIX: &str = ".trash-kiln-";

/// What to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcAction {
    /// Every path no root keeps alive.
    DeleteDead,
    /// These paths and their referrers; refused if any is alive.
    DeleteSpecific(Vec<StorePath>),
}

/// How to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    pub action: GcAction,
    /// Only say what would be deleted.
    pub dry_run: bool,
    /// Stop once the NAR sizes of the paths chosen reach this many bytes.
    pub max_freed: Option<u64>,
    /// Keep the outputs of alive derivations (Nix's `keep-outputs`).
    pub keep_outputs: bool,
    /// Keep the derivations of alive outputs (Nix's `keep-derivations`).
    pub keep_derivations: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            action: GcAction::DeleteDead,
            dry_run: false,
            max_freed: None,
            keep_outputs: true,
            keep_derivations: true,
        }
    }
}

/// What a collection did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The valid paths invalidated and deleted, in database order.
    pub deleted: Vec<StorePath>,
    /// Unregistered entries of the store directory that were deleted.
    pub leftovers: Vec<String>,
    /// Bytes of the regular files removed (dry: the NAR sizes of
    /// `deleted`).
    pub bytes_freed: u64,
}

/// Why a path is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Dead,
    /// Named by `roots[i]`.
    Root(u32),
    /// Reached from this path.
    From(u32),
}

impl Store {
    /// Collect garbage (see the module docs for the sequence).
    pub fn collect_garbage(&self, options: &GcOptions) -> Result<GcReport, StoreError> {
        let lock = GcLock::exclusive(&self.state_dir())?;
        let roots = self.find_roots(!options.dry_run)?;
        let (graph, chosen, refused) = self.db.gc_transaction(
            !options.dry_run,
            |graph| -> (Vec<u32>, Option<StoreError>) {
                let reasons = mark(graph, &self.root_indices(graph, &roots), options);
                match &options.action {
                    GcAction::DeleteDead => {
                        let dead = (0..graph.paths.len() as u32)
                            .filter(|&i| reasons[i as usize] == Reason::Dead);
                        (choose(graph, dead, options.max_freed), None)
                    }
                    GcAction::DeleteSpecific(paths) => {
                        match self.check_deletable(graph, &reasons, &roots, paths) {
                            Ok(wanted) => (choose(graph, wanted.into_iter(), None), None),
                            Err(e) => (Vec::new(), Some(e)),
                        }
                    }
                }
            },
        )?;
        if let Some(err) = refused {
            return Err(err);
        }
        let mut report = GcReport::default();
        for &i in &chosen {
            report
                .deleted
                .push(self.parse_db_path(&graph.paths[i as usize])?);
        }
        if options.dry_run {
            report.bytes_freed = chosen.iter().map(|&i| graph.nar_sizes[i as usize]).sum();
            return Ok(report);
        }
        // A dead file or symlink is unlinked at once, under the lock (one
        // call, as the rename to trash would be); a directory is renamed
        // to trash and deleted after the lock is released.
        let mut freed_now = 0;
        for path in &report.deleted {
            freed_now += self.unlink_or_trash(path.base_name());
        }
        if options.action == GcAction::DeleteDead {
            report.leftovers = self.trash_leftovers(&graph, &roots)?;
            match temp::remove_stale(self.physical_store_dir(), &self.temp_lock_dir()) {
                Ok(0) => {}
                Ok(n) => tracing::info!("removed {n} stale temporary directories"),
                Err(e) => tracing::warn!("could not remove stale temporary directories: {e}"),
            }
        }
        drop(lock);
        report.bytes_freed = freed_now + self.empty_trash()?;
        // After the trash is gone: `.links` entries only deleted paths used
        // now have one link left.
        report.bytes_freed += self.remove_unused_links();
        Ok(report)
    }

    /// The graph index of each root that is valid, with its root number.
    fn root_indices(&self, graph: &GcGraph, roots: &[Root]) -> Vec<(u32, u32)> {
        let index = graph.index_of();
        roots
            .iter()
            .enumerate()
            .filter_map(|(r, root)| {
                index
                    .get(self.print_path(&root.path).as_str())
                    .map(|&i| (i, r as u32))
            })
            .collect()
    }

    /// The graph indices of `paths`, or why one of them cannot go.
    fn check_deletable(
        &self,
        graph: &GcGraph,
        reasons: &[Reason],
        roots: &[Root],
        paths: &[StorePath],
    ) -> Result<Vec<u32>, StoreError> {
        let index = graph.index_of();
        let mut wanted = Vec::with_capacity(paths.len());
        for path in paths {
            let printed = self.print_path(path);
            let Some(&i) = index.get(printed.as_str()) else {
                return Err(StoreError::NotValid(printed));
            };
            if reasons[i as usize] != Reason::Dead {
                let (root, chain) = explain(graph, reasons, i);
                let root = &roots[root as usize];
                return Err(StoreError::Alive {
                    path: printed,
                    root: format!("{} root {}", root.kind.as_str(), root.holder),
                    chain,
                });
            }
            wanted.push(i);
        }
        Ok(wanted)
    }

    /// Unlink a dead regular file or symlink and return its size; move
    /// anything else to the trash (0: counted when the trash is emptied).
    fn unlink_or_trash(&self, base_name: &str) -> u64 {
        let path = self.physical_store_dir().join(base_name);
        match fs::symlink_metadata(&path) {
            Err(_) => 0, // gone already (deleted by hand, or a crash)
            Ok(meta) if !meta.is_dir() => match fs::remove_file(&path) {
                Ok(()) => {
                    // Linked by `kiln store optimise`: the bytes stay in `.links`.
                    if meta.is_file() && std::os::unix::fs::MetadataExt::nlink(&meta) == 1 {
                        meta.len()
                    } else {
                        0
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                Err(_) => {
                    self.move_to_trash(base_name);
                    0
                }
            },
            Ok(_) => {
                self.move_to_trash(base_name);
                0
            }
        }
    }

    /// Rename a store entry to its trash name (replacing an older trash
    /// entry of the same name). A failure leaves it where it is,
    /// unregistered: the next collection deletes it.
    fn move_to_trash(&self, base_name: &str) {
        let from = self.physical_store_dir().join(base_name);
        let to = self
            .physical_store_dir()
            .join(format!("{TRASH_PREFIX}{base_name}"));
        for _ in 0..3 {
            match fs::rename(&from, &to) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                // A non-empty older trash tree of the same name.
                Err(_) if fs::symlink_metadata(&to).is_ok() => {
                    if let Err(e) = remove_tree(&to) {
                        tracing::warn!("{e}");
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot move {} to the trash: {e}", from.display());
                    return;
                }
            }
        }
    }

    /// Move to the trash every entry of the store directory that looks
    /// like a store path, is not valid and is not a root: what a killed
    /// install or collection left behind.
    fn trash_leftovers(&self, graph: &GcGraph, roots: &[Root]) -> Result<Vec<String>, StoreError> {
        let dir = self.physical_store_dir();
        let valid: HashSet<&str> = graph
            .paths
            .iter()
            .filter_map(|p| p.rsplit('/').next())
            .collect();
        let rooted: HashSet<&str> = roots.iter().map(|r| r.path.base_name()).collect();
        let mut moved = Vec::new();
        for entry in fs::read_dir(dir).map_err(StoreError::io("reading", dir))? {
            let entry = entry.map_err(StoreError::io("reading", dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if StorePath::from_base_name(name).is_err()
                || valid.contains(name)
                || rooted.contains(name)
            {
                continue;
            }
            self.move_to_trash(name);
            moved.push(name.to_owned());
        }
        moved.sort();
        Ok(moved)
    }

    /// Delete every trash entry; the bytes their files held.
    fn empty_trash(&self) -> Result<u64, StoreError> {
        let dir = self.physical_store_dir();
        let mut freed = 0;
        for entry in fs::read_dir(dir).map_err(StoreError::io("reading", dir))? {
            let entry = entry.map_err(StoreError::io("reading", dir))?;
            if !entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TRASH_PREFIX))
            {
                continue;
            }
            match remove_tree(&entry.path()) {
                Ok(bytes) => freed += bytes,
                Err(e) => tracing::warn!("{e}"),
            }
        }
        Ok(freed)
    }
}

/// Compressed adjacency lists: the targets of node `i` are
/// `targets[start[i]..start[i + 1]]`.
struct Adjacency {
    start: Vec<u32>,
    targets: Vec<u32>,
}

impl Adjacency {
    fn new(nodes: usize, edges: impl Iterator<Item = (u32, u32)> + Clone) -> Adjacency {
        let mut start = vec![0u32; nodes + 1];
        for (from, _) in edges.clone() {
            start[from as usize + 1] += 1;
        }
        for i in 0..nodes {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut targets = vec![0u32; start[nodes] as usize];
        for (from, to) in edges {
            targets[fill[from as usize] as usize] = to;
            fill[from as usize] += 1;
        }
        Adjacency { start, targets }
    }

    fn of(&self, node: u32) -> &[u32] {
        &self.targets[self.start[node as usize] as usize..self.start[node as usize + 1] as usize]
    }
}

/// Why each path is alive (or [`Reason::Dead`]): a breadth-first walk
/// from the roots over references and, per the options, from derivations
/// to their outputs and from outputs to their derivations.
fn mark(graph: &GcGraph, roots: &[(u32, u32)], options: &GcOptions) -> Vec<Reason> {
    let n = graph.paths.len();
    let outputs = options
        .keep_outputs
        .then_some(graph.drv_outputs.iter().copied())
        .into_iter()
        .flatten();
    let derivers = options
        .keep_derivations
        .then_some(graph.drv_outputs.iter().map(|&(d, o)| (o, d)))
        .into_iter()
        .flatten();
    let edges = Adjacency::new(n, graph.refs.iter().copied().chain(outputs).chain(derivers));
    let mut reasons = vec![Reason::Dead; n];
    let mut queue = std::collections::VecDeque::new();
    for &(i, r) in roots {
        if reasons[i as usize] == Reason::Dead {
            reasons[i as usize] = Reason::Root(r);
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        for &j in edges.of(i) {
            if reasons[j as usize] == Reason::Dead {
                reasons[j as usize] = Reason::From(i);
                queue.push_back(j);
            }
        }
    }
    reasons
}

/// The root that keeps `i` alive and the chain of paths from it to `i`.
fn explain(graph: &GcGraph, reasons: &[Reason], mut i: u32) -> (u32, Vec<String>) {
    let mut chain = vec![graph.paths[i as usize].clone()];
    loop {
        match reasons[i as usize] {
            Reason::Root(r) => {
                chain.reverse();
                return (r, chain);
            }
            Reason::From(j) => {
                chain.push(graph.paths[j as usize].clone());
                i = j;
            }
            Reason::Dead => unreachable!("explain is called on alive paths"),
        }
    }
}

/// The dead paths to delete, starting from `wanted` in order: each with
/// every path that refers to it (those are dead too, since what is alive
/// keeps its references alive), so the chosen set never leaves a
/// reference to a deleted path. With `max_freed`, stop taking more once
/// the NAR sizes chosen reach it.
fn choose(graph: &GcGraph, wanted: impl Iterator<Item = u32>, max_freed: Option<u64>) -> Vec<u32> {
    let n = graph.paths.len();
    let referrers = Adjacency::new(n, graph.refs.iter().map(|&(a, b)| (b, a)));
    let mut taken = vec![false; n];
    let mut chosen = Vec::new();
    let mut freed = 0u64;
    for start in wanted {
        if max_freed.is_some_and(|max| freed >= max) {
            break;
        }
        if taken[start as usize] {
            continue;
        }
        taken[start as usize] = true;
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            chosen.push(i);
            freed += graph.nar_sizes[i as usize];
            for &r in referrers.of(i) {
                if !taken[r as usize] {
                    taken[r as usize] = true;
                    stack.push(r);
                }
            }
        }
    }
    chosen.sort_unstable();
    chosen
}
