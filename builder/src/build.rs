//! Building one derivation in its sandbox.
//! A built-in builder (`builtin:fetchurl`, [`crate::builtin`]) takes the
//! sandbox's place; everything before and after it is the same.
//!
//! The build's scratch space is a store temp dir (inside the physical store
//! directory, so outputs can be renamed into place atomically, and removed
//! by the next kiln if this one is killed):
//!
//! ```text
//! STORE/.tmp-kiln-…/
//!   store/    mounted at the store dir; the builder writes its outputs here
//!   build/    mounted at /build (the working directory)
//! ```
//!
//! The synthesized `passwd`, `group` and `hosts` are written once per run
//! into another temp dir and mounted read-only into every sandbox.
//!
//! With `--keep-failed`, a failed build's temp dir is moved to
//! `STATE/failed/<drv base name>-<n>` and named in the error.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use kiln_store::StorePath;
use kiln_store::store::Store;

use crate::builtin::{BuiltinBuild, is_builtin, run_builtin};
use crate::check::{Difference, compare_trees};
use crate::cleanup::Cleaner;
use crate::environment::{EnvInput, build_env};
use crate::error::BuildError;
use crate::events::Observer;
use crate::log::{LogWriter, log_path};
use crate::outputs::{ProducedOutput, output_paths, process_outputs};
use crate::plan::PlannedBuild;
use crate::prepare::{BuildDirs, Prepared};
use crate::register::install_outputs;
use crate::sandbox::{SandboxInput, SandboxSpec};
use crate::sandbox_paths::sandbox_paths;
use crate::supervise::{Limits, Outcome, supervise};

/// Settings shared by every build of a run.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// The bwrap binary, already probed (`None` when every build of the
    /// run is built in).
    pub bwrap: Option<PathBuf>,
    /// The seccomp filters of every sandbox, compiled once.
    pub seccomp: crate::sandbox::seccomp::Filters,
    /// When kiln runs as root: the uids builds run as.
    pub build_users: Option<crate::sandbox::build_user::BuildUsers>,
    /// `NIX_BUILD_CORES`.
    pub cores: u32,
    pub limits: Limits,
    pub keep_failed: bool,
    /// The synthesized `passwd`, `group` and `hosts`, shared by every build
    /// of a run (mounted read-only).
    pub etc_dir: PathBuf,
}

/// What `--check` found for one output.
#[derive(Debug, Clone)]
pub struct CheckedOutput {
    pub output: String,
    pub path: String,
    /// Empty when the rebuild is identical.
    pub differences: Vec<Difference>,
}

/// Build `planned` and install its outputs, or with `planned.check` rebuild
/// and compare. Returns the comparison for a check, nothing otherwise.
pub fn build_derivation(
    store: &Store,
    settings: &BuildSettings,
    planned: &PlannedBuild,
    observer: &dyn Observer,
    cancel: &AtomicBool,
    cleaner: &Cleaner,
    prepared: &Prepared,
) -> Result<Vec<CheckedOutput>, BuildError> {
    let drv = &planned.drv;
    let printed_drv = store.print_path(&planned.drv_path);
    let name = drv
        .env
        .get("name")
        .cloned()
        .unwrap_or_else(|| planned.drv_path.name().trim_end_matches(".drv").to_string());
    let outputs = output_paths(&printed_drv, drv)?;

    let t_start = std::time::Instant::now();
    let wall_start = crate::record::wall_now();
    let closure = store
        .closure(&planned.inputs.iter().cloned().collect::<Vec<_>>())
        .map_err(|e| {
            BuildError::store(format!("computing the input closure of {printed_drv}"), e)
        })?;

    let BuildDirs {
        temp,
        scratch_store,
        build_dir,
    } = prepared.take(store)?;

    let output_strings = outputs
        .iter()
        .map(|(n, p)| (n.clone(), store.print_path(p)))
        .collect();
    let env = build_env(
        &EnvInput {
            store_dir: store.store_dir().as_str(),
            cores: settings.cores,
            drv_env: &drv.env,
            outputs: &output_strings,
        },
        &build_dir,
    )?;
    let is_fixed = drv
        .outputs
        .values()
        .all(|o| matches!(o, kiln_store::derivation::DerivationOutput::Fixed { .. }));
    let extra = sandbox_paths(
        store,
        &printed_drv,
        drv.env.get(crate::sandbox_paths::ATTRIBUTE),
        &closure,
    )?;
    // The build user is held until the sandbox is gone (end of function).
    let build_user = match &settings.build_users {
        Some(users) if !is_builtin(&drv.builder) => {
            let user = users.acquire()?;
            for dir in [&scratch_store, &build_dir] {
                std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
                    .map_err(|e| BuildError::io(dir, e))?;
            }
            Some(user)
        }
        _ => None,
    };
    let spec = SandboxSpec {
        store_dir: store.store_dir().as_str().to_string(),
        inputs: closure
            .iter()
            .map(|p| SandboxInput {
                physical: store.real_path(p),
                logical: store.print_path(p),
            })
            .collect(),
        scratch_store: scratch_store.clone(),
        build_dir: build_dir.clone(),
        etc_dir: settings.etc_dir.clone(),
        physical_store_dir: store.physical_store_dir().to_path_buf(),
        build_user: build_user.as_ref().map(|u| (u.uid, u.gid)),
        network: is_fixed,
        extra,
        builder: drv.builder.clone(),
        args: drv.args.clone(),
        env,
    };

    let log_name = if planned.check {
        format!("{}.check", planned.drv_path)
    } else {
        planned.drv_path.to_string()
    };
    let mut log = LogWriter::create(log_path(&store.state_dir(), &log_name))?;
    observer.started(&printed_drv, &name);
    let t_setup = t_start.elapsed();
    let mut on_line = |line: &str| observer.log_line(&printed_drv, &name, line);
    // A built-in builder replaces only the sandboxed program: its failure
    // is a builder failure, its output is processed like any other.
    let outcome = if is_builtin(&drv.builder) {
        let build = BuiltinBuild {
            drv_path: &printed_drv,
            drv,
            outputs: outputs
                .iter()
                .map(|(n, p)| (n.clone(), scratch_store.join(p.to_string())))
                .collect(),
            build_dir: &build_dir,
            limits: settings.limits,
            cancel,
        };
        run_builtin(&build, &mut log, &mut on_line).map(|r| r.map_err(|e| (e, false)))
    } else if let Some(bwrap) = &settings.bwrap {
        let t_view = std::time::Instant::now();
        let sandbox = spec.command(bwrap, &settings.seccomp)?;
        tracing::debug!(
            target: "kiln_builder::timing",
            "view of {} inputs prepared in {:.2?}",
            spec.inputs.len(),
            t_view.elapsed()
        );
        let (network, identity) = (sandbox.network, sandbox.identity);
        supervise(
            sandbox.command,
            &printed_drv,
            &mut log,
            settings.limits,
            cancel,
            &mut on_line,
            // A fixed-output build's network is connected before its
            // builder starts, and ends with the sandbox.
            |pid| network.map(|ends| ends.connect(pid, identity)).transpose(),
        )
        .map(|o| {
            if o.success() {
                Ok(())
            } else {
                let timed_out = matches!(o, Outcome::TimedOut(_) | Outcome::Silent(_));
                Err((o.to_string(), timed_out))
            }
        })
    } else {
        // Not reached: realise probes bwrap whenever a build needs it.
        Err(BuildError::NoBwrap)
    };
    let tail = log.tail();
    log.finish()?;
    let outcome = outcome?;
    let t_builder = t_start.elapsed() - t_setup;

    let keep = |temp: kiln_store::store::temp::TempDir| -> Option<PathBuf> {
        if !settings.keep_failed {
            return None;
        }
        keep_build_dir(store, &planned.drv_path, temp.path())
    };
    if let Err((outcome, timed_out)) = outcome {
        let kept = keep(temp);
        return Err(BuildError::BuilderFailed {
            drv: printed_drv,
            outcome,
            timed_out,
            log_tail: tail,
            kept,
        });
    }

    let requisites = |paths: &BTreeSet<StorePath>| -> Result<BTreeSet<StorePath>, BuildError> {
        store
            .closure(&paths.iter().cloned().collect::<Vec<_>>())
            .map_err(|e| BuildError::store("computing requisites", e))
    };
    let produced = match process_outputs(
        store.store_dir(),
        &printed_drv,
        drv,
        &scratch_store,
        &closure,
        &requisites,
    ) {
        Ok(p) => p,
        Err(e) => {
            return Err(match keep(temp) {
                Some(dir) => BuildError::KeptBuildDir {
                    source: Box::new(e),
                    dir,
                },
                None => e,
            });
        }
    };

    if planned.check {
        let result = compare_outputs(store, &produced);
        cleaner.discard(temp);
        return result;
    }
    let t_outputs = t_start.elapsed() - t_setup - t_builder;
    install_outputs(store, &planned.drv_path, &produced)?;
    let sandbox = crate::record::sandbox_settings(settings, is_builtin(&drv.builder), is_fixed);
    crate::record::write_record(store, &planned.drv_path, wall_start, sandbox, &produced);
    let t_register = t_start.elapsed() - t_setup - t_builder - t_outputs;
    cleaner.discard(temp);
    tracing::debug!(
        target: "kiln_builder::timing",
        "built {printed_drv} in {:.2?}: setup {:.2?}, sandbox+builder {:.2?}, outputs {:.2?}, register {:.2?}",
        t_start.elapsed(),
        t_setup,
        t_builder,
        t_outputs,
        t_register,
    );
    Ok(Vec::new())
}

fn compare_outputs(
    store: &Store,
    produced: &[ProducedOutput],
) -> Result<Vec<CheckedOutput>, BuildError> {
    produced
        .iter()
        .map(|out| {
            let valid = store.real_path(&out.path);
            Ok(CheckedOutput {
                output: out.name.clone(),
                path: store.print_path(&out.path),
                differences: compare_trees(&valid, &out.scratch)?,
            })
        })
        .collect()
}

/// Move a failed build's temp dir to `STATE/failed/<drv>-<n>`; `None` if
/// that fails (the error is logged).
fn keep_build_dir(store: &Store, drv_path: &StorePath, temp: &Path) -> Option<PathBuf> {
    let failed = store.state_dir().join("failed");
    if let Err(e) = std::fs::create_dir_all(&failed) {
        tracing::warn!("cannot create {}: {e}", failed.display());
        return None;
    }
    // Only kiln's user may enter: a kept build may hold anything.
    if let Err(e) = std::fs::set_permissions(&failed, PermissionsExt::from_mode(0o700)) {
        tracing::warn!("cannot make {} private: {e}", failed.display());
        return None;
    }
    for n in 0..1000 {
        let dest = failed.join(format!("{drv_path}-{n}"));
        if dest.exists() {
            continue;
        }
        return match std::fs::rename(temp, &dest) {
            // No setuid file, capability or writable bit of the build
            // survives in what is kept.
            Ok(()) => match kiln_store::canonicalise::sanitise_tree(&dest) {
                Ok(_) => Some(dest),
                Err(e) => {
                    tracing::warn!("cannot make the kept build directory safe: {e}");
                    let _ = kiln_store::delete::remove_tree(&dest);
                    None
                }
            },
            Err(e) => {
                tracing::warn!("cannot keep the build directory: {e}");
                None
            }
        };
    }
    None
}
