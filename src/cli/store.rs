//! `kiln store …`: add files to the store, inspect and query valid paths,
//! and move trees in and out as NAR archives.

use std::collections::BTreeSet;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use kiln_store::delete::remove_tree;
use kiln_store::store::{Store, StoreError, ValidPathInfo};
use kiln_store::{FileIngestionMethod, HashAlgo, StorePath};
use serde_json::{Value, json};

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, open_store_read_only, parse_store_path_arg, store_config};
use crate::exit;

mod query;
mod show_derivation;

/// Work with the store: add files, inspect paths, query the reference graph.
///
/// Store paths may be given as logical paths (`/kiln/store/<hash>-<name>`), as
/// the same path under the physical root, or as a symlink to one (such as a
/// `result` link).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store add ./src                       add a directory as a source path
  kiln store path-info --json --closure-size ./result
  kiln store query --requisites /kiln/store/<hash>-hello
  kiln store dump /kiln/store/<hash>-src > src.nar
  kiln store restore ./copy < src.nar
  ssh builder kiln store serve --stdio --write")]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    Add(AddArgs),
    AddFixed(AddFixedArgs),
    Dump(DumpArgs),
    Restore(RestoreArgs),
    PathInfo(PathInfoArgs),
    Query(query::QueryArgs),
    ShowDerivation(show_derivation::ShowDerivationArgs),
    Verify(crate::cli::verify::VerifyArgs),
    Gc(crate::cli::gc::GcArgs),
    Delete(crate::cli::gc::DeleteArgs),
    Roots(crate::cli::gc::RootsArgs),
    AddRoot(crate::cli::gc::AddRootArgs),
    Optimise(crate::cli::gc::OptimiseArgs),
    Serve(crate::cli::serve::ServeArgs),
}

/// Add files or directories to the store as source paths and print their
/// store paths, one per line (like `nix-store --add`).
///
/// The path is computed from the NAR hash of the contents and the file's
/// name, so adding the same contents again prints the same path and changes
/// nothing.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store add hello.txt
  kiln --store-dir /nix/store store add ./dir    same path as `nix-store --add ./dir`
  kiln store add --name config ./my-config.json")]
struct AddArgs {
    /// Files or directories to add.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Store path name to use instead of the file name (one PATH only).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

/// Add files as fixed-output paths, hashed with ALGO (like
/// `nix-store --add-fixed`), and print their store paths.
///
/// Without --recursive the hash is over the bytes of a regular file (flat);
/// with it, over the NAR serialisation of a file or directory. The result is
/// the path a fixed-output derivation with that hash would produce.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store add-fixed sha256 seed.tar.gz
  kiln store add-fixed --recursive sha1 ./vendor")]
struct AddFixedArgs {
    /// Hash over the NAR serialisation instead of the file's bytes.
    #[arg(long, short)]
    recursive: bool,
    /// Hash algorithm: md5, sha1, sha256 or sha512.
    #[arg(value_name = "ALGO")]
    algo: String,
    /// Files (or, with --recursive, directories) to add.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Write the NAR serialisation of a path to stdout (like `nix-store --dump`).
///
/// PATH may be a store path (in any of the accepted spellings) or any file
/// or directory.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store dump /kiln/store/<hash>-src > src.nar
  kiln store dump ./dir | sha256sum           equals `kiln hash path --base16 ./dir`")]
struct DumpArgs {
    #[arg(value_name = "PATH")]
    path: String,
}

/// Read a NAR from stdin and unpack it into DIR, which must not exist (like
/// `nix-store --restore`). A malformed archive is an error and leaves
/// nothing behind.
#[derive(Args, Debug)]
#[command(after_help = "\
Example:
  kiln store dump ./dir | kiln store restore ./copy")]
struct RestoreArgs {
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Show what the database records about valid paths.
///
/// Plain output is one line per path: the path, then with --size its NAR
/// size and with --closure-size the total NAR size of its closure,
/// tab-separated. --json prints an array of objects like `nix path-info
/// --json`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln store path-info --json --closure-size ./result
  kiln store path-info --recursive --size /kiln/store/<hash>-hello
  kiln store path-info -rsSh ./result          sizes in K, M, G
  kiln store path-info -rS --sort closure-size ./result   biggest closure last")]
struct PathInfoArgs {
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also show the NAR size.
    #[arg(long, short = 's')]
    size: bool,
    /// Also show the total NAR size of the closure.
    #[arg(long, short = 'S')]
    closure_size: bool,
    /// Show every path in the closure of the given paths.
    #[arg(long, short)]
    recursive: bool,
    /// Print sizes in human-readable units (`240.6K`), like Nix's `-h`.
    #[arg(long, short = 'h')]
    human_readable: bool,
    /// Order of the paths: by path (Nix's order), NAR size or closure
    /// size, smallest first (so the biggest closure is the last line).
    #[arg(long, value_enum, value_name = "KEY", default_value_t = SortKey::Path)]
    sort: SortKey,
}

/// `path-info --sort`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Path,
    Size,
    ClosureSize,
}

pub fn run(global: &GlobalOpts, args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StoreCommand::Add(args) => add(global, args),
        StoreCommand::AddFixed(args) => add_fixed(global, args),
        StoreCommand::Dump(args) => dump(global, args),
        StoreCommand::Restore(args) => restore(args),
        StoreCommand::PathInfo(args) => path_info(global, args),
        StoreCommand::Query(args) => query::run(global, args),
        StoreCommand::ShowDerivation(args) => show_derivation::run(global, args),
        StoreCommand::Verify(args) => return crate::cli::verify::run(global, &args),
        StoreCommand::Serve(args) => return crate::cli::serve::run(global, args),
        StoreCommand::Gc(args) => crate::cli::gc::gc(global, args),
        StoreCommand::Delete(args) => crate::cli::gc::delete(global, args),
        StoreCommand::Roots(args) => crate::cli::gc::roots(global, args),
        StoreCommand::AddRoot(args) => crate::cli::gc::add_root(global, args),
        StoreCommand::Optimise(args) => crate::cli::gc::optimise(global, args),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Errors about the user's input exit with 2, the rest with 1.
fn classify(err: StoreError) -> anyhow::Error {
    if err.is_bad_input() {
        exit::user(err)
    } else {
        anyhow::Error::new(err)
    }
}

/// The file to add must exist; its name becomes the store path name.
fn source_name(path: &Path, name: Option<&str>) -> anyhow::Result<String> {
    std::fs::symlink_metadata(path)
        .with_context(|| format!("{}", path.display()))
        .map_err(exit::user)?;
    if let Some(name) = name {
        return Ok(name.to_string());
    }
    // `.`, `..` and `dir/` have their name only after resolving.
    let resolved = match path.file_name() {
        Some(_) => path.to_path_buf(),
        None => std::fs::canonicalize(path)
            .with_context(|| format!("{}", path.display()))
            .map_err(exit::user)?,
    };
    let name = resolved
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            exit::user(anyhow!(
                "{}: the file name is not valid UTF-8; use --name",
                path.display()
            ))
        })?;
    Ok(name.to_string())
}

fn add(global: &GlobalOpts, args: AddArgs) -> anyhow::Result<()> {
    if args.name.is_some() && args.paths.len() > 1 {
        return Err(exit::user(anyhow!("--name needs exactly one PATH")));
    }
    let mut jobs = Vec::new();
    for path in &args.paths {
        jobs.push((path, source_name(path, args.name.as_deref())?));
    }
    let store = open_store(global)?;
    let mut out = std::io::stdout().lock();
    for (path, name) in jobs {
        let added = store
            .add_path(path, &name)
            .map_err(classify)
            .with_context(|| format!("adding {}", path.display()))?;
        writeln!(out, "{}", store.print_path(&added))?;
    }
    Ok(())
}

fn add_fixed(global: &GlobalOpts, args: AddFixedArgs) -> anyhow::Result<()> {
    let algo: HashAlgo = args
        .algo
        .parse()
        .map_err(|err| exit::user(anyhow!("ALGO {:?}: {err}", args.algo)))?;
    let method = if args.recursive {
        FileIngestionMethod::Recursive
    } else {
        FileIngestionMethod::Flat
    };
    let mut jobs = Vec::new();
    for path in &args.paths {
        let name = source_name(path, None)?;
        if method == FileIngestionMethod::Flat && !std::fs::symlink_metadata(path)?.is_file() {
            return Err(exit::user(anyhow!(
                "{}: not a regular file; flat hashing needs one (use --recursive for directories and symlinks)",
                path.display()
            )));
        }
        jobs.push((path, name));
    }
    let store = open_store(global)?;
    let mut out = std::io::stdout().lock();
    for (path, name) in jobs {
        let added = store
            .add_fixed(path, method, algo, &name)
            .map_err(classify)
            .with_context(|| format!("adding {}", path.display()))?;
        writeln!(out, "{}", store.print_path(&added))?;
    }
    Ok(())
}

/// A store path argument that must be valid in `store`.
fn valid_path(store: &Store, arg: &str) -> anyhow::Result<StorePath> {
    let path = parse_store_path_arg(store.config(), arg)?;
    if !store.is_valid(&path)? {
        // The argument is said once: `./result` names the path it means.
        let printed = store.print_path(&path);
        let what = if arg == printed {
            printed
        } else {
            format!("{arg}: {printed}")
        };
        return Err(exit::user(anyhow!(
            "{what} is not a valid path in the store at {}",
            store.config().root.display()
        )));
    }
    Ok(path)
}

fn dump(global: &GlobalOpts, args: DumpArgs) -> anyhow::Result<()> {
    let config = store_config(global)?;
    let source = match parse_store_path_arg(&config, &args.path) {
        Ok(_) => {
            let store = Store::open_read_only(config)?;
            let path = valid_path(&store, &args.path)?;
            store.real_path(&path)
        }
        Err(_) => {
            let path = PathBuf::from(&args.path);
            std::fs::symlink_metadata(&path)
                .with_context(|| args.path.clone())
                .map_err(exit::user)?;
            path
        }
    };
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    kiln_store::nar::dump_path(&source, &mut out)
        .with_context(|| format!("dumping {}", args.path))?;
    out.flush()?;
    Ok(())
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(&args.dir).is_ok() {
        return Err(exit::user(anyhow!(
            "{}: already exists; restore needs a new path",
            args.dir.display()
        )));
    }
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    if let Err(err) = kiln_store::nar::restore(&mut input, &args.dir) {
        // A broken archive leaves nothing half-written behind.
        let _ = remove_tree(&args.dir);
        return Err(exit::user(anyhow::Error::new(err).context(format!(
            "restoring into {} from stdin",
            args.dir.display()
        ))));
    }
    Ok(())
}

fn path_info(global: &GlobalOpts, args: PathInfoArgs) -> anyhow::Result<()> {
    let store = open_store_read_only(global)?;
    let mut paths = BTreeSet::new();
    for arg in &args.paths {
        paths.insert(valid_path(&store, arg)?);
    }
    if args.recursive {
        let roots: Vec<StorePath> = paths.iter().cloned().collect();
        paths = store.closure(&roots)?;
    }
    let mut infos = Vec::new();
    for path in &paths {
        let info = store
            .path_info(path)?
            .ok_or_else(|| anyhow!("{} stopped being valid", store.print_path(path)))?;
        let closure_size = if args.closure_size || args.sort == SortKey::ClosureSize {
            Some(store.closure_size(std::slice::from_ref(path))?)
        } else {
            None
        };
        infos.push((info, closure_size));
    }
    match args.sort {
        SortKey::Path => {}
        SortKey::Size => infos.sort_by_key(|(info, _)| info.nar_size),
        SortKey::ClosureSize => infos.sort_by_key(|(_, closure)| closure.unwrap_or(0)),
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let array: Vec<Value> = infos
            .iter()
            .map(|(info, closure)| info_json(&store, info, *closure))
            .collect();
        // One line, as `nix path-info --json` prints it.
        serde_json::to_writer(&mut out, &array)?;
        writeln!(out)?;
        return Ok(());
    }
    let printed: Vec<String> = infos
        .iter()
        .map(|(info, _)| store.print_path(&info.path))
        .collect();
    let sizes = args.size || args.closure_size;
    let width = printed.iter().map(String::len).max().unwrap_or(0);
    for ((info, closure), path) in infos.iter().zip(printed) {
        let line = path_info_line(
            &path,
            if sizes { width } else { 0 },
            args.size.then_some(info.nar_size),
            closure.filter(|_| args.closure_size),
            args.human_readable,
        );
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// One line of `path-info` as `nix path-info` prints it: the path, padded
/// to `width` when sizes follow, then each size after a tab (`%11d`, or
/// `%6.1f` and a unit with `-h`).
fn path_info_line(
    path: &str,
    width: usize,
    nar_size: Option<u64>,
    closure_size: Option<u64>,
    human: bool,
) -> String {
    let mut line = format!("{path:width$}");
    for bytes in [nar_size, closure_size].into_iter().flatten() {
        if human {
            line.push_str(&format!("\t{}", human_size(bytes)));
        } else {
            line.push_str(&format!("\t{bytes:11}"));
        }
    }
    line
}

/// A size as `nix path-info -h` prints it: divided by 1024 while above
/// 1024, one decimal, a unit letter (a space for bytes), six wide.
fn human_size(bytes: u64) -> String {
    const UNITS: [char; 9] = [' ', 'K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
    let mut value = bytes as f64;
    let mut power = 0;
    while value > 1024.0 && power + 1 < UNITS.len() {
        value /= 1024.0;
        power += 1;
    }
    format!("{value:6.1}{}", UNITS[power])
}

/// The shape of `nix path-info --json` (Nix 2.8's keys, in its order).
fn info_json(store: &Store, info: &ValidPathInfo, closure_size: Option<u64>) -> Value {
    let mut object = json!({
        "path": store.print_path(&info.path),
        "narHash": info.nar_hash.to_sri(),
        "narSize": info.nar_size,
        "references": info.references.iter().map(|r| store.print_path(r)).collect::<Vec<_>>(),
    });
    let map = object.as_object_mut().expect("a JSON object literal");
    if let Some(ca) = &info.ca {
        map.insert("ca".into(), json!(ca));
    }
    if let Some(size) = closure_size {
        map.insert("closureSize".into(), json!(size));
    }
    if let Some(deriver) = &info.deriver {
        map.insert("deriver".into(), json!(store.print_path(deriver)));
    }
    map.insert("registrationTime".into(), json!(info.registration_time));
    if !info.signatures.is_empty() {
        map.insert("signatures".into(), json!(info.signatures));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_nix_prints_them() {
        assert_eq!(human_size(0), "   0.0 ");
        assert_eq!(human_size(1024), "1024.0 ");
        assert_eq!(human_size(246_374), " 240.6K");
        assert_eq!(human_size(32_925_286), "  31.4M");
        assert_eq!(human_size(3 << 30), "   3.0G");
    }

    #[test]
    fn path_info_lines_as_nix_prints_them() {
        // From `nix path-info -rsS` and `-rsSh` (Nix 2.8) of two paths.
        let long = "/nix/store/dynxwsc4vhvraplla4zndzn0fyf7ky73-longername-file";
        let short = "/nix/store/v85jd4k50m95f506qj0dq0yg0lhamfm2-src1";
        assert_eq!(
            path_info_line(short, long.len(), Some(288), Some(288), false),
            format!("{short}           \t        288\t        288")
        );
        assert_eq!(
            path_info_line(short, long.len(), Some(288), Some(288), true),
            format!("{short}           \t 288.0 \t 288.0 ")
        );
        assert_eq!(path_info_line(short, 0, None, None, false), short);
    }
}
