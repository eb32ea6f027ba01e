//! `kiln log PATH|DRV`: print the build log of a derivation, or of the
//! derivation that built an output path.
//!
//! A running build's log is already at its final name and holds what the
//! builder printed until about a second ago; so does the log of a build
//! whose kiln was killed. Both are printed with a note on stderr.

use std::io::Write;

use anyhow::{Context, anyhow};
use clap::Args;
use kiln_builder::log::{LogEnd, log_path, read_log};
use kiln_store::StorePath;

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, parse_store_path_arg};
use crate::exit;

/// Show the build log of a derivation or output path.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// A `.drv` store path, or an output path built by kiln.
    #[arg(value_name = "PATH|DRV")]
    pub path: String,
}

pub fn run(global: &GlobalOpts, args: &LogArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_store(global)?;
    let path = parse_store_path_arg(store.config(), &args.path)?;
    let drvs: Vec<StorePath> = if path.name().ends_with(".drv") {
        vec![path.clone()]
    } else {
        let mut drvs = Vec::new();
        if let Some(info) = store.path_info(&path).context("querying the database")? {
            drvs.extend(info.deriver);
        }
        drvs.extend(
            store
                .derivers_of_output(&path)
                .context("querying the database")?,
        );
        if drvs.is_empty() {
            return Err(exit::user(anyhow!(
                "{} was not built by a derivation known to this store, so it has no build log",
                store.print_path(&path)
            )));
        }
        drvs
    };
    let state = store.state_dir();
    let Some((drv, file)) = drvs
        .iter()
        .map(|d| (d, log_path(&state, &d.to_string())))
        .find(|(_, f)| f.exists())
    else {
        return Err(anyhow!(
            "no build log for {} (it was not built here, or its log was removed)",
            store.print_path(&drvs[0])
        ));
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = read_log(&file, &mut out);
    out.flush()?;
    if result? == LogEnd::Incomplete {
        crate::say!(
            "note: the log of {} is incomplete: its build is still running, or was killed",
            store.print_path(drv)
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
