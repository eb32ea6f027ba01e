//! Running a DAG of jobs in dependency order, up to N at once.
//!
//! The scheduler knows nothing of derivations: nodes are indices with
//! dependency lists, and a job function builds one node. A node starts when
//! all of its dependencies succeeded. When a job fails, its dependents are
//! marked as failed through it; without `keep_going` the `cancel` flag is
//! raised (running jobs watch it and stop) and nothing new starts.
//! Each running job gets its own thread; results come back over a channel.
//! A job that panics still reports back (the run is cancelled and the panic
//! resumed once every thread ended), so the loop never waits for a result
//! that cannot come.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// What happened to one node.
#[derive(Debug)]
pub enum NodeOutcome<E> {
    Done,
    Failed(E),
    /// Not run because this dependency (a node index) failed.
    DependencyFailed(usize),
    /// Not run because the run was stopped after a failure.
    NotStarted,
}

impl<E> NodeOutcome<E> {
    pub fn is_done(&self) -> bool {
        matches!(self, NodeOutcome::Done)
    }
}

/// Run `job` over every node of the DAG `deps` (node i depends on each of
/// `deps[i]`). `deps` must be acyclic; a cycle's nodes end as `NotStarted`.
pub fn run_dag<E, F>(
    deps: &[Vec<usize>],
    jobs: usize,
    keep_going: bool,
    cancel: &AtomicBool,
    job: F,
) -> Vec<NodeOutcome<E>>
where
    E: Send,
    F: Fn(usize) -> Result<(), E> + Sync,
{
    let n = deps.len();
    let jobs = jobs.max(1);
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting_on: Vec<usize> = vec![0; n];
    for (node, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(node);
            waiting_on[node] += 1;
        }
    }
    let mut outcomes: Vec<Option<NodeOutcome<E>>> = (0..n).map(|_| None).collect();
    // Ready nodes, in index order so runs are predictable.
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| waiting_on[i] == 0).collect();
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<(usize, std::thread::Result<Result<(), E>>)>();
    let mut panicked = None;

    std::thread::scope(|scope| {
        loop {
            while running < jobs && !cancel.load(Ordering::Relaxed) {
                let Some(node) = ready.pop_first() else { break };
                running += 1;
                let tx = tx.clone();
                let job = &job;
                scope.spawn(move || {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| job(node)));
                    // The receiver outlives every job thread.
                    let _ = tx.send((node, result));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((node, result)) = rx.recv() else { break };
            running -= 1;
            let result = match result {
                Ok(result) => result,
                Err(payload) => {
                    cancel.store(true, Ordering::Relaxed);
                    panicked.get_or_insert(payload);
                    continue;
                }
            };
            match result {
                Ok(()) => {
                    outcomes[node] = Some(NodeOutcome::Done);
                    for &d in &dependents[node] {
                        waiting_on[d] -= 1;
                        if waiting_on[d] == 0 && outcomes[d].is_none() {
                            ready.insert(d);
                        }
                    }
                }
                Err(e) => {
                    outcomes[node] = Some(NodeOutcome::Failed(e));
                    mark_dependents_failed(node, &dependents, &mut outcomes, &mut ready);
                    if !keep_going {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    if let Some(payload) = panicked {
        panic::resume_unwind(payload);
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(NodeOutcome::NotStarted))
        .collect()
}

fn mark_dependents_failed<E>(
    failed: usize,
    dependents: &[Vec<usize>],
    outcomes: &mut [Option<NodeOutcome<E>>],
    ready: &mut std::collections::BTreeSet<usize>,
) {
    let mut stack = vec![failed];
    while let Some(node) = stack.pop() {
        for &d in &dependents[node] {
            if outcomes[d].is_none() {
                outcomes[d] = Some(NodeOutcome::DependencyFailed(failed));
                ready.remove(&d);
                stack.push(d);
            }
        }
    }
}

/// Order nodes so that each comes after its dependencies; `Err(node)` names
/// a node on a cycle.
pub fn topological_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    for root in 0..deps.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next dependency index).
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::Open;
        while let Some((node, i)) = stack.pop() {
            if let Some(&d) = deps[node].get(i) {
                stack.push((node, i + 1));
                match marks[d] {
                    Mark::New => {
                        marks[d] = Mark::Open;
                        stack.push((d, 0));
                    }
                    Mark::Open => return Err(d),
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn respects_dependencies_and_parallelism() {
        // 0 <- 1 <- 3, 0 <- 2 <- 3, and an independent 4.
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2], vec![]];
        let finished = Mutex::new(Vec::new());
        let concurrent = AtomicUsize::new(0);
        let max_seen = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let out = run_dag::<(), _>(&deps, 2, false, &cancel, |node| {
            let now = concurrent.fetch_add(1, Ordering::SeqCst) + 1;
            max_seen.fetch_max(now, Ordering::SeqCst);
            let done = finished.lock().unwrap().clone();
            for &d in &deps[node] {
                assert!(done.contains(&d), "{node} started before {d}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            finished.lock().unwrap().push(node);
            concurrent.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
        assert!(out.iter().all(NodeOutcome::is_done));
        assert_eq!(max_seen.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_job_ends_the_run_instead_of_hanging_it() {
        let deps = vec![vec![], vec![0], vec![]];
        let cancel = AtomicBool::new(false);
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_dag::<(), _>(&deps, 2, false, &cancel, |node| {
                if node == 0 {
                    panic!("job 0 panics");
                }
                Ok(())
            })
        }));
        assert!(run.is_err(), "the panic is resumed");
        assert!(cancel.load(Ordering::Relaxed));
    }

    #[test]
    fn failure_without_keep_going_stops() {
        let deps = vec![vec![], vec![0], vec![], vec![]];
        let cancel = AtomicBool::new(false);
        let out = run_dag(&deps, 1, false, &cancel, |node| {
            if node == 0 { Err("boom") } else { Ok(()) }
        });
        assert!(matches!(out[0], NodeOutcome::Failed("boom")));
        assert!(matches!(out[1], NodeOutcome::DependencyFailed(0)));
        assert!(matches!(out[2], NodeOutcome::NotStarted));
        assert!(cancel.load(Ordering::Relaxed));
    }

    #[test]
    fn keep_going_runs_independent_nodes() {
        let deps = vec![vec![], vec![0], vec![1], vec![], vec![3]];
        let cancel = AtomicBool::new(false);
        let out = run_dag(&deps, 1, true, &cancel, |node| {
            if node == 0 { Err("boom") } else { Ok(()) }
        });
        assert!(matches!(out[2], NodeOutcome::DependencyFailed(0)));
        assert!(out[3].is_done() && out[4].is_done());
    }

    #[test]
    fn topological_order_and_cycles() {
        let deps = vec![vec![2], vec![0], vec![]];
        assert_eq!(topological_order(&deps).unwrap(), vec![2, 0, 1]);
        let cyclic = vec![vec![1], vec![0]];
        assert!(topological_order(&cyclic).is_err());
    }
}
