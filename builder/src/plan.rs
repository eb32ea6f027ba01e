//! Deciding what to build: the graph of derivations whose outputs are not
//! valid yet.
//!
//! Starting from the targets, each `.drv` is read from the store and
//! parsed. A derivation needs building when one of its outputs is not valid
//! or is registered but has no files (deleted by hand: the build puts them
//! back), or, for a target under `--check`, always. Only then are its input
//! derivations visited: a valid output needs nothing below it, so a no-op
//! build reads just the targets. The graph's edges are "needs the outputs
//! of", restricted to derivations that need building.
//!
//! Every derivation visited and its outputs become temp GC roots of this
//! process before their validity is asked, so a concurrent `kiln store gc`
//! never deletes what the plan found valid or what a build is producing.
//!
//! Every derivation visited is checked before it is trusted: its output
//! paths must be the ones its contents give ([`Derivation::check_outputs`]),
//! which reads the hash modulo of every input derivation below it (each
//! once per plan).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use kiln_store::StorePath;
use kiln_store::derivation::{Derivation, DrvHash};
use kiln_store::store::Store;

use crate::error::BuildError;
use crate::outputs::output_paths;

/// One derivation to build.
#[derive(Debug, Clone)]
pub struct PlannedBuild {
    pub drv_path: StorePath,
    pub drv: Derivation,
    /// The store paths the builder uses directly: input sources and the
    /// used outputs of input derivations (their closure is what it sees).
    pub inputs: BTreeSet<StorePath>,
    /// Rebuild and compare instead of registering (`--check`).
    pub check: bool,
}

/// The builds, with `deps[i]` the indices of the builds that node i needs.
#[derive(Debug, Default)]
pub struct Plan {
    pub builds: Vec<PlannedBuild>,
    pub deps: Vec<Vec<usize>>,
}

/// Read and parse a `.drv` from the store.
pub fn read_derivation(store: &Store, drv_path: &StorePath) -> Result<Derivation, BuildError> {
    let file = store.real_path(drv_path);
    let bytes = std::fs::read(&file).map_err(|e| BuildError::io(&file, e))?;
    Derivation::parse(store.store_dir(), &bytes)
        .map_err(|e| BuildError::store(format!("parsing {}", store.print_path(drv_path)), e))
}

/// Plan the builds for `targets` (derivation paths).
pub fn plan(store: &Store, targets: &[StorePath], check: bool) -> Result<Plan, BuildError> {
    let mut planner = Planner {
        store,
        plan: Plan::default(),
        index: HashMap::new(),
        visiting: BTreeSet::new(),
        outputs: HashMap::new(),
        hashes: HashMap::new(),
    };
    for target in targets {
        planner.visit(target, check)?;
    }
    Ok(planner.plan)
}

struct Planner<'a> {
    store: &'a Store,
    plan: Plan,
    /// Derivations visited: `Some(i)` needs building as node i, `None` is
    /// already valid.
    index: HashMap<StorePath, Option<usize>>,
    visiting: BTreeSet<StorePath>,
    /// Output paths of every derivation visited.
    outputs: HashMap<StorePath, BTreeMap<String, StorePath>>,
    /// Hash modulo of every derivation read for checking.
    hashes: HashMap<StorePath, Rc<DrvHash>>,
}

impl Planner<'_> {
    /// The unmasked hash modulo of the input derivation `drv_path`.
    fn drv_hash(&mut self, drv_path: &StorePath) -> Result<Rc<DrvHash>, BuildError> {
        if let Some(hash) = self.hashes.get(drv_path) {
            return Ok(hash.clone());
        }
        if !self.is_valid(drv_path)? {
            return Err(BuildError::Other(format!(
                "input derivation {} is not a valid path in this store",
                self.store.print_path(drv_path)
            )));
        }
        let drv = read_derivation(self.store, drv_path)?;
        let hash = drv.hash_modulo(self.store.store_dir(), false, &mut |input| {
            self.drv_hash(input)
        })?;
        let hash = Rc::new(hash);
        self.hashes.insert(drv_path.clone(), hash.clone());
        Ok(hash)
    }

    /// Hold `paths` against a collector for the rest of this run, before
    /// their validity is asked: a valid output the plan relies on, an input
    /// a build will see, an output about to be built.
    fn temp_roots(&self, paths: &[StorePath]) -> Result<(), BuildError> {
        self.store
            .add_temp_roots(paths)
            .map_err(|e| BuildError::store("recording temporary GC roots", e))
    }

    fn is_valid(&self, path: &StorePath) -> Result<bool, BuildError> {
        self.store
            .is_valid(path)
            .map_err(|e| BuildError::store("querying the database", e))
    }

    /// Valid and with its files on disk.
    fn is_present(&self, path: &StorePath) -> Result<bool, BuildError> {
        self.store
            .is_present(path)
            .map_err(|e| BuildError::store("querying the database", e))
    }

    /// A valid path the build needs must have its files; one deleted by
    /// hand cannot be rebuilt from here (no derivation is known for it).
    fn require_files(&self, path: &StorePath, what: &str) -> Result<(), BuildError> {
        if self.store.files_exist(path) {
            return Ok(());
        }
        Err(BuildError::Other(format!(
            "{what} {} is registered as valid but its files are missing from disk; \
             run `kiln store verify --repair` (or add it again)",
            self.store.print_path(path)
        )))
    }

    fn visit(&mut self, drv_path: &StorePath, check: bool) -> Result<Option<usize>, BuildError> {
        if let Some(&known) = self.index.get(drv_path) {
            return Ok(known);
        }
        if !self.visiting.insert(drv_path.clone()) {
            return Err(BuildError::Other(format!(
                "derivation {} depends on itself",
                self.store.print_path(drv_path)
            )));
        }
        let printed = self.store.print_path(drv_path);
        self.temp_roots(std::slice::from_ref(drv_path))?;
        if !self.is_valid(drv_path)? {
            return Err(BuildError::Other(format!(
                "{printed} is not a valid path in this store"
            )));
        }
        self.require_files(drv_path, "the derivation")?;
        let drv = read_derivation(self.store, drv_path)?;
        drv.check_outputs(self.store.store_dir(), drv_path, &mut |input| {
            self.drv_hash(input)
        })?;
        let outputs = output_paths(&printed, &drv)?;
        self.temp_roots(&outputs.values().cloned().collect::<Vec<_>>())?;
        self.outputs.insert(drv_path.clone(), outputs.clone());
        let mut all_valid = true;
        for path in outputs.values() {
            if !self.is_present(path)? {
                all_valid = false;
                break;
            }
        }
        if check && !all_valid {
            return Err(BuildError::Other(format!(
                "some outputs of {printed} are not valid, so checking is not possible (build it first)"
            )));
        }
        if all_valid && !check {
            self.visiting.remove(drv_path);
            self.index.insert(drv_path.clone(), None);
            return Ok(None);
        }

        let mut inputs = drv.input_srcs.clone();
        for src in &drv.input_srcs {
            if !self.is_valid(src)? {
                return Err(BuildError::Other(format!(
                    "input source {} of {printed} is not valid",
                    self.store.print_path(src)
                )));
            }
            self.require_files(src, &format!("input source of {printed}:"))?;
        }
        let mut deps = Vec::new();
        for (input_drv, wanted) in &drv.input_drvs {
            let node = self.visit(input_drv, false)?;
            let input = &self.outputs[input_drv];
            for name in wanted {
                let path = input.get(name).ok_or_else(|| {
                    BuildError::Other(format!(
                        "{printed} uses output '{name}' of {}, which has no such output",
                        self.store.print_path(input_drv)
                    ))
                })?;
                inputs.insert(path.clone());
            }
            if let Some(i) = node {
                deps.push(i);
            }
        }
        let i = self.plan.builds.len();
        self.plan.builds.push(PlannedBuild {
            drv_path: drv_path.clone(),
            drv,
            inputs,
            check,
        });
        self.plan.deps.push(deps);
        self.visiting.remove(drv_path);
        self.index.insert(drv_path.clone(), Some(i));
        Ok(Some(i))
    }
}
