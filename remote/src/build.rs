//! Substitution before building: which outputs to ask the caches for.
//!
//! From the targets down, as Nix's goals do: a derivation whose outputs
//! are all valid needs nothing; one whose missing outputs every cache
//! lookup finds is substituted and nothing below it is visited; otherwise
//! its input derivations are visited the same way and its missing input
//! sources are asked for. What substitution could not fetch (a corrupt
//! NAR in every cache that has it) is looked at again, so its inputs can
//! still come from a cache before the builder builds the rest.

use std::collections::BTreeSet;

use kiln_builder::outputs::output_paths;
use kiln_builder::plan::read_derivation;
use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::error::CacheError;
use crate::substitute::{SubstituteObserver, SubstituteReport, Substituters};

/// Substitute what `targets` (derivation paths) need, as far as the
/// caches have it. Whatever is still missing is for the builder.
pub fn substitute_for_build(
    store: &Store,
    substituters: &Substituters,
    targets: &[StorePath],
    observer: &dyn SubstituteObserver,
) -> Result<SubstituteReport, CacheError> {
    let mut total = SubstituteReport::default();
    if substituters.is_empty() {
        return Ok(total);
    }
    let mut given_up: BTreeSet<StorePath> = BTreeSet::new();
    // Each round either installs something, gives up on a path for good,
    // or ends: at most one round per path, in practice two.
    loop {
        let mut wanted = BTreeSet::new();
        let mut visited = BTreeSet::new();
        for target in targets {
            visit(
                store,
                substituters,
                target,
                &given_up,
                &mut visited,
                &mut wanted,
                observer,
            )?;
        }
        if wanted.is_empty() {
            break;
        }
        let wanted: Vec<StorePath> = wanted.into_iter().collect();
        let report = substituters.substitute(store, &wanted, observer)?;
        total.downloaded += report.downloaded;
        let progress = !report.installed.is_empty();
        total.installed.extend(report.installed);
        let mut new_failures = false;
        for p in report.missing {
            new_failures |= given_up.insert(p.clone());
            total.missing.insert(p);
        }
        if !progress && !new_failures {
            break;
        }
    }
    Ok(total)
}

fn visit(
    store: &Store,
    substituters: &Substituters,
    drv_path: &StorePath,
    given_up: &BTreeSet<StorePath>,
    visited: &mut BTreeSet<StorePath>,
    wanted: &mut BTreeSet<StorePath>,
    observer: &dyn SubstituteObserver,
) -> Result<(), CacheError> {
    if !visited.insert(drv_path.clone()) {
        return Ok(());
    }
    store.add_temp_roots(std::slice::from_ref(drv_path))?;
    if !store.is_valid(drv_path)? {
        // The builder says what is wrong with it.
        return Ok(());
    }
    let printed = store.print_path(drv_path);
    let Ok(drv) = read_derivation(store, drv_path) else {
        return Ok(());
    };
    let Ok(outputs) = output_paths(&printed, &drv) else {
        return Ok(());
    };
    let outputs: Vec<StorePath> = outputs.into_values().collect();
    store.add_temp_roots(&outputs)?;
    let valid = store.valid_among(&outputs)?;
    let missing: Vec<StorePath> = outputs
        .into_iter()
        .zip(valid)
        .filter_map(|(p, v)| (!v).then_some(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if missing.iter().all(|p| !given_up.contains(p)) {
        let found = substituters.query(&missing, observer);
        if found.iter().all(Option::is_some) {
            wanted.extend(missing);
            return Ok(());
        }
    }
    let srcs: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
    let valid = store.valid_among(&srcs)?;
    for (src, v) in srcs.into_iter().zip(valid) {
        if !v && !given_up.contains(&src) {
            wanted.insert(src);
        }
    }
    for input in drv.input_drvs.keys() {
        visit(
            store,
            substituters,
            input,
            given_up,
            visited,
            wanted,
            observer,
        )?;
    }
    Ok(())
}
