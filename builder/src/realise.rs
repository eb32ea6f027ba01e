//! Realising targets: plan, then build the graph N at once.
//!
//! Each build first takes the locks of all its outputs (in path order, so
//! two processes never wait on each other in a cycle) and then checks again
//! whether they are valid: a second `kiln build` of the same graph waits
//! for the first one's build of a derivation and then skips it. Under
//! `--check` nothing is locked or registered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::build::{BuildSettings, CheckedOutput, build_derivation};
use crate::cleanup::Cleaner;
use crate::error::BuildError;
use crate::events::Observer;
use crate::outputs::output_paths;
use crate::plan::{PlannedBuild, plan, read_derivation};
use crate::prepare::Prepared;
use crate::sandbox::build_user::BuildUsers;
use crate::sandbox::write_etc;
use crate::schedule::{NodeOutcome, run_dag};
use crate::supervise::Limits;

/// Options of one `kiln build` run.
#[derive(Debug, Clone)]
pub struct RealiseOptions {
    /// Builds at once (`-j`).
    pub jobs: usize,
    /// `NIX_BUILD_CORES` of each build (`--cores`).
    pub cores: u32,
    pub keep_going: bool,
    pub keep_failed: bool,
    /// Rebuild the targets and compare (`--check`).
    pub check: bool,
    pub limits: Limits,
}

impl Default for RealiseOptions {
    fn default() -> Self {
        RealiseOptions {
            jobs: 1,
            cores: 1,
            keep_going: false,
            keep_failed: false,
            check: false,
            limits: Limits::default(),
        }
    }
}

/// Why a derivation was not built.
#[derive(Debug)]
pub enum Failure {
    /// Its build failed.
    Build(BuildError),
    /// A derivation it needs failed (full `.drv` path).
    Dependency(String),
    /// The run stopped after another failure before this one started.
    NotStarted,
}

/// The result of a run.
#[derive(Debug, Default)]
pub struct Realised {
    /// For each target, its output paths by output name.
    pub outputs: Vec<(StorePath, BTreeMap<String, StorePath>)>,
    /// How many derivations were built (or checked) by this process.
    pub built: usize,
    /// Derivations that were not built, with why, in build order.
    pub failures: Vec<(String, Failure)>,
    /// `--check` results, per target.
    pub checks: Vec<(String, Vec<CheckedOutput>)>,
}

impl Realised {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Build whatever `targets` (derivation paths) need.
pub fn realise(
    store: &Store,
    targets: &[StorePath],
    options: &RealiseOptions,
    observer: &dyn Observer,
) -> Result<Realised, BuildError> {
    let plan = plan(store, targets, options.check)?;
    let mut realised = Realised::default();
    for target in targets {
        let drv = read_derivation(store, target)?;
        realised.outputs.push((
            target.clone(),
            output_paths(&store.print_path(target), &drv)?,
        ));
    }
    if plan.builds.is_empty() {
        return Ok(realised);
    }
    run_plan(store, plan, realised, options, observer)
}

/// Build one derivation as it came over the wire from a remote client
/// (Nix's `BasicDerivation`: no input derivations, every input path in
/// `drv.input_srcs`, which must be valid here with their closures). The
/// `.drv` itself need not be in this store, so its input-addressed output
/// paths cannot be recomputed: they are taken as sent, as `nix-store
/// --serve` does for the user it serves (who may import any path anyway).
/// Fixed outputs are checked against their hash. Nothing is built when
/// every output is valid.
pub fn realise_basic(
    store: &Store,
    drv_path: &StorePath,
    drv: kiln_store::Derivation,
    options: &RealiseOptions,
    observer: &dyn Observer,
) -> Result<Realised, BuildError> {
    let printed = store.print_path(drv_path);
    if !drv.input_drvs.is_empty() {
        return Err(BuildError::Other(format!(
            "{printed}: a derivation from the wire names no input derivations"
        )));
    }
    let outputs = output_paths(&printed, &drv)?;
    for (name, output) in &drv.outputs {
        if let kiln_store::DerivationOutput::Fixed { path, hash } = output {
            let drv_name = drv_path.name().trim_end_matches(".drv");
            let expected = kiln_store::derivation::output::fixed_output_path(
                store.store_dir(),
                drv_name,
                name,
                hash,
            )
            .map_err(|e| BuildError::Other(format!("{printed}: output {name}: {e}")))?;
            if &expected != path {
                return Err(BuildError::Other(format!(
                    "{printed}: output {name} is {}, but its hash gives {}",
                    store.print_path(path),
                    store.print_path(&expected)
                )));
            }
        }
    }
    let mut held: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
    held.extend(outputs.values().cloned());
    store
        .add_temp_roots(&held)
        .map_err(|e| BuildError::store("recording temporary GC roots", e))?;
    for input in &drv.input_srcs {
        let present = store
            .is_present(input)
            .map_err(|e| BuildError::store("querying the database", e))?;
        if !present {
            return Err(BuildError::Other(format!(
                "input {} of {printed} is not valid in this store (copy it first)",
                store.print_path(input)
            )));
        }
    }
    let mut realised = Realised::default();
    realised.outputs.push((drv_path.clone(), outputs.clone()));
    let mut all_valid = true;
    for path in outputs.values() {
        if !store
            .is_present(path)
            .map_err(|e| BuildError::store("querying the database", e))?
        {
            all_valid = false;
        }
    }
    if all_valid {
        return Ok(realised);
    }
    let inputs = drv.input_srcs.clone();
    let plan = crate::plan::Plan {
        builds: vec![PlannedBuild {
            drv_path: drv_path.clone(),
            drv,
            inputs,
            check: false,
        }],
        deps: vec![Vec::new()],
    };
    run_plan(store, plan, realised, options, observer)
}

/// Run the builds of `plan`, adding to `realised`.
fn run_plan(
    store: &Store,
    plan: crate::plan::Plan,
    mut realised: Realised,
    options: &RealiseOptions,
    observer: &dyn Observer,
) -> Result<Realised, BuildError> {
    observer.planned(
        &plan
            .builds
            .iter()
            .map(|b| store.print_path(&b.drv_path))
            .collect::<Vec<_>>(),
    );
    let orphans = crate::sandbox::reap_orphans(store.physical_store_dir());
    if orphans > 0 {
        tracing::info!("killed {orphans} sandboxes left behind by a killed kiln");
    }
    let etc = store
        .temp_dir()
        .map_err(|e| BuildError::store("creating a build directory", e))?;
    write_etc(etc.path())?;
    // Builds never run as host root: as root, each gets a build user.
    let build_users = if rustix::process::geteuid().is_root() {
        Some(BuildUsers::from_env()?)
    } else {
        None
    };
    let settings = BuildSettings {
        etc_dir: etc.path().to_path_buf(),
        // Probed once, up front, when any build needs the sandbox (a run
        // of built-in builds only, e.g. downloads, does not).
        bwrap: if plan
            .builds
            .iter()
            .any(|b| !crate::builtin::is_builtin(&b.drv.builder))
        {
            Some(crate::sandbox::probe_bwrap(
                build_users.as_ref().map(BuildUsers::any),
            )?)
        } else {
            None
        },
        build_users,
        seccomp: crate::sandbox::seccomp::Filters::compile()?,
        cores: options.cores,
        limits: options.limits,
        keep_failed: options.keep_failed,
    };
    let cancel = AtomicBool::new(false);
    let cleaner = Cleaner::new();
    let checks = std::sync::Mutex::new(Vec::new());
    let finished = AtomicBool::new(false);
    if observer.stop_requested() {
        cancel.store(true, Ordering::Relaxed);
    }
    let outcomes = std::thread::scope(|scope| {
        let prepared = Prepared::start(scope, store);
        // The observer may ask to stop (its output was closed): that
        // cancels the run as a failure would.
        scope.spawn(|| {
            while !finished.load(Ordering::Relaxed) {
                if observer.stop_requested() {
                    cancel.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let _finish = SetOnDrop(&finished);
        run_dag(&plan.deps, options.jobs, options.keep_going, &cancel, |i| {
            let planned = &plan.builds[i];
            let result = build_locked(
                store, &settings, planned, observer, &cancel, &cleaner, &prepared,
            );
            let name = planned.drv_path.name().trim_end_matches(".drv");
            let printed = store.print_path(&planned.drv_path);
            observer.finished(&printed, name, result.is_ok());
            let checked = result?;
            if planned.check {
                checks
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push((printed, checked));
            }
            Ok(())
        })
    });
    cleaner.finish();
    drop(etc);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let printed = store.print_path(&plan.builds[i].drv_path);
        match outcome {
            NodeOutcome::Done => realised.built += 1,
            NodeOutcome::Failed(e) => realised.failures.push((printed, Failure::Build(e))),
            NodeOutcome::DependencyFailed(d) => realised.failures.push((
                printed,
                Failure::Dependency(store.print_path(&plan.builds[d].drv_path)),
            )),
            NodeOutcome::NotStarted => realised.failures.push((printed, Failure::NotStarted)),
        }
    }
    realised.checks = checks
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(realised)
}

/// Raises its flag when dropped, also while unwinding from a panic.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Lock the outputs, re-check validity, build.
fn build_locked(
    store: &Store,
    settings: &BuildSettings,
    planned: &PlannedBuild,
    observer: &dyn Observer,
    cancel: &AtomicBool,
    cleaner: &Cleaner,
    prepared: &Prepared,
) -> Result<Vec<CheckedOutput>, BuildError> {
    if planned.check {
        return build_derivation(
            store, settings, planned, observer, cancel, cleaner, prepared,
        );
    }
    let printed = store.print_path(&planned.drv_path);
    let outputs = output_paths(&printed, &planned.drv)?;
    let mut paths: Vec<&StorePath> = outputs.values().collect();
    paths.sort();
    let mut locks = Vec::with_capacity(paths.len());
    for path in &paths {
        locks.push(
            store
                .lock_path(path)
                .map_err(|e| BuildError::store(format!("locking {}", store.print_path(path)), e))?,
        );
    }
    let mut all_valid = true;
    for path in &paths {
        if !store
            .is_present(path)
            .map_err(|e| BuildError::store("querying the database", e))?
        {
            all_valid = false;
            break;
        }
    }
    if all_valid {
        let name = planned.drv_path.name().trim_end_matches(".drv");
        observer.built_elsewhere(&printed, name);
        return Ok(Vec::new());
    }
    let result = build_derivation(
        store, settings, planned, observer, cancel, cleaner, prepared,
    );
    drop(locks);
    result
}
