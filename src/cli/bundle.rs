//! `kiln bundle …`: a closure in one file with SBOMs and signed
//! provenance; verified offline, imported, reproduced (`kiln-bundle`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use kiln_bundle::BundleError;
use kiln_bundle::read::{ReadOptions, Validate, read_bundle};
use kiln_store::StorePath;
use kiln_store::store::Store;
use serde_json::{Value, json};

use crate::cli::GlobalOpts;
use crate::cli::config::{open_store, parse_store_path_arg};
use crate::cli::installable::{SourceArgs, instantiate};
use crate::cli::key::{read_secret_key, trusted_keys};
use crate::exit;

/// Ship a closure as one file: NARs, manifest, CycloneDX and SPDX SBOMs,
/// and SLSA provenance signed with ed25519; check it offline, import it on
/// another host, or rebuild it there and sign what reproduced.
///
/// The format is in docs/bundle-format.md: tar, zstd and sha256sum are
/// enough to look inside and check the NARs.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln key generate ci-1
  kiln bundle export -A hello -o hello.bundle --sign-key ci-1.sec
  kiln bundle verify hello.bundle --key ci-1.pub
  kiln bundle inspect hello.bundle --json
  kiln --root /srv/host bundle import hello.bundle --key ci-1.pub
  kiln bundle reproduce hello.bundle --key ci-1.pub --sign-key me.sec")]
pub struct BundleArgs {
    #[command(subcommand)]
    command: BundleCommand,
}

#[derive(Subcommand, Debug)]
enum BundleCommand {
    Export(ExportArgs),
    Verify(VerifyArgs),
    Inspect(InspectArgs),
    Import(ImportArgs),
    Reproduce(ReproduceArgs),
}

/// Build if needed, then write the runtime closure of the outputs to FILE.
///
/// INSTALLABLE is a FILE (with -A), -E EXPR, a `.drv` path, or a valid
/// output path. The same closure exported twice with the same key gives
/// identical bytes.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln bundle export -A hello -o hello.bundle --sign-key ci-1.sec
  kiln bundle export ./result -o app.bundle          an already built path, unsigned
  kiln bundle export -A hello -o src.bundle --with-build-closure --sign-key ci-1.sec
  kiln bundle export -A hello -o h.bundle --include-build-deps   SBOMs list build inputs")]
struct ExportArgs {
    /// What to export (FILE, .drv path or output path).
    #[arg(value_name = "INSTALLABLE")]
    installables: Vec<String>,
    /// Attribute path to build from FILE (repeatable).
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    attrs: Vec<String>,
    #[command(flatten)]
    source: SourceArgs,
    /// The bundle to write.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: PathBuf,
    /// Sign the provenance with this secret key (NAME.sec from `kiln key generate`).
    #[arg(long, value_name = "SECRET")]
    sign_key: Option<PathBuf>,
    /// List the build-time inputs in the SBOMs, marked as such.
    #[arg(long)]
    include_build_deps: bool,
    /// Also carry every .drv, source and seed path the closure was built
    /// from: what `kiln bundle reproduce` needs to rebuild it offline.
    #[arg(long)]
    with_build_closure: bool,
}

/// Trust options shared by verify, import and reproduce.
#[derive(Args, Debug, Clone)]
struct TrustArgs {
    /// A trusted public key: a file of NAME:BASE64 lines or the key itself
    /// (repeatable). Default: KILN_TRUSTED_KEYS or
    /// ~/.config/kiln/trusted-public-keys.
    #[arg(long = "key", value_name = "PUB")]
    keys: Vec<String>,
    /// Accept a bundle without a signature by a trusted key. Skips only
    /// the signature check: every digest inside is still checked.
    #[arg(long)]
    no_check_sigs: bool,
}

/// Check a bundle offline: the signature, every NAR against the manifest,
/// the manifest against the attestation and the SBOMs, references closed.
///
/// Names the first thing wrong and exits 1.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln bundle verify hello.bundle --key ci-1.pub
  kiln bundle verify hello.bundle --no-check-sigs     integrity only")]
struct VerifyArgs {
    file: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Show what a bundle holds: roots, paths, sizes, signer, SBOM summary.
///
/// Checks the bundle's integrity as verify does; the signer is reported,
/// not required.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln bundle inspect hello.bundle
  kiln bundle inspect hello.bundle --json | jq .roots")]
struct InspectArgs {
    file: PathBuf,
    /// Public keys to check the signature against (reported only).
    #[arg(long = "key", value_name = "PUB")]
    keys: Vec<String>,
    #[arg(long)]
    json: bool,
}

/// Check a bundle completely, then register its closure in one
/// transaction. Paths already valid are skipped; a refused bundle leaves
/// the store as it was.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln bundle import hello.bundle --key ci-1.pub
  kiln --root /srv/host bundle import hello.bundle --no-check-sigs   unsigned (integrity still checked)")]
struct ImportArgs {
    file: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Rebuild a bundle's outputs from its build closure in the sandbox and
/// compare them with the bundle's NAR hashes; write a signed SLSA
/// Verification Summary (VSA v1 in DSSE). Use a fresh root.
///
/// Exits 1 if any output did not reproduce, with per-file differences.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln --root /tmp/fresh bundle reproduce src.bundle --key ci-1.pub --sign-key me.sec
  kiln bundle reproduce src.bundle --key ci-1.pub -o vsa.json --json")]
struct ReproduceArgs {
    file: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Sign the verification summary with this secret key.
    #[arg(long, value_name = "SECRET")]
    sign_key: Option<PathBuf>,
    /// Where to write the VSA envelope (default: FILE.vsa.json).
    #[arg(short = 'o', long = "out", value_name = "VSA")]
    out: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &GlobalOpts, args: BundleArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BundleCommand::Export(args) => export(global, &args),
        BundleCommand::Verify(args) => verify(&args),
        BundleCommand::Inspect(args) => inspect(&args),
        BundleCommand::Import(args) => import(global, &args),
        BundleCommand::Reproduce(args) => reproduce(global, &args),
    }
}

fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn failed(err: BundleError) -> anyhow::Error {
    match err {
        BundleError::Refused(_) => exit::user(anyhow!(err)),
        other => anyhow!(other),
    }
}

/// The roots: valid output paths as they are; the rest built.
fn roots(global: &GlobalOpts, store: &Store, args: &ExportArgs) -> anyhow::Result<Vec<StorePath>> {
    let mut roots = Vec::new();
    let mut rest = Vec::new();
    for arg in &args.installables {
        let logical = store.store_dir().as_str();
        let physical = store.physical_store_dir().to_string_lossy().into_owned();
        let looks_stored = arg.starts_with(&format!("{logical}/"))
            || arg.starts_with(&format!("{physical}/"))
            || std::path::Path::new(arg).is_symlink();
        if looks_stored && !arg.ends_with(".drv") {
            let path = parse_store_path_arg(store.config(), arg)?;
            if !store.is_valid(&path)? {
                return Err(exit::user(anyhow!(
                    "{} is not valid in this store",
                    store.print_path(&path)
                )));
            }
            roots.push(path);
        } else {
            rest.push(arg.clone());
        }
    }
    if !rest.is_empty() || !args.attrs.is_empty() || args.source.expr.is_some() || roots.is_empty()
    {
        let found = instantiate(global, &rest, &args.attrs, &args.source, false)?;
        let mut drvs = Vec::new();
        for f in &found {
            drvs.push(parse_store_path_arg(store.config(), &f.drv_path)?);
        }
        let options = kiln_builder::RealiseOptions {
            jobs: threads() as usize,
            cores: threads(),
            ..Default::default()
        };
        let realised =
            kiln_builder::realise(store, &drvs, &options, &kiln_builder::events::Silent)?;
        if !realised.ok() {
            let list: Vec<String> = realised.failures.iter().map(|(d, _)| d.clone()).collect();
            return Err(anyhow!(
                "building failed for {}; `kiln build` shows why",
                list.join(", ")
            ));
        }
        for (f, (_, outputs)) in found.iter().zip(&realised.outputs) {
            let out = outputs
                .get(&f.output)
                .ok_or_else(|| anyhow!("{} has no output {}", f.drv_path, f.output))?;
            roots.push(out.clone());
        }
    }
    roots.sort();
    roots.dedup();
    Ok(roots)
}

fn export(global: &GlobalOpts, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let key = args.sign_key.as_deref().map(read_secret_key).transpose()?;
    let roots = roots(global, &store, args)?;
    let external = json!({
        "installables": args.installables,
        "attributes": args.attrs,
        "expression": args.source.expr,
        "roots": roots.iter().map(|r| store.print_path(r)).collect::<Vec<_>>(),
    });
    let summary = kiln_bundle::export::export(
        &store,
        &roots,
        &kiln_bundle::export::ExportOptions {
            key,
            with_build_closure: args.with_build_closure,
            include_build_deps: args.include_build_deps,
            external_parameters: external,
            threads: threads(),
        },
        &args.out,
    )
    .map_err(failed)
    .with_context(|| format!("exporting to {}", args.out.display()))?;
    crate::say!(
        "wrote {}: {} paths, {} NAR bytes in {} bytes{}",
        args.out.display(),
        summary.paths,
        summary.nar_bytes,
        summary.file_bytes,
        if args.sign_key.is_none() {
            " (unsigned)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn open(file: &std::path::Path) -> anyhow::Result<std::io::BufReader<std::fs::File>> {
    let f = std::fs::File::open(file)
        .with_context(|| format!("opening {}", file.display()))
        .map_err(exit::user)?;
    Ok(std::io::BufReader::with_capacity(1 << 20, f))
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted = trusted_keys(&args.trust.keys)?;
    let checked = read_bundle(
        open(&args.file)?,
        &ReadOptions {
            trusted: &trusted,
            check_sigs: !args.trust.no_check_sigs,
        },
        &mut Validate,
    )
    .map_err(failed)
    .with_context(|| format!("{} did not verify", args.file.display()))?;
    if args.json {
        let v = json!({
            "ok": true,
            "paths": checked.manifest.paths.len(),
            "signers": checked.signers,
            "untrustedSigners": checked.unknown_signers,
        });
        println!("{v}");
    } else {
        let signer = if checked.signers.is_empty() {
            "signature not checked (--no-check-sigs)".to_string()
        } else {
            format!("signed by {}", checked.signers.join(", "))
        };
        println!(
            "{}: ok, {} paths, {signer}",
            args.file.display(),
            checked.manifest.paths.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let trusted = trusted_keys(&args.keys)?;
    let checked = read_bundle(
        open(&args.file)?,
        &ReadOptions {
            trusted: &trusted,
            check_sigs: false,
        },
        &mut Validate,
    )
    .map_err(failed)
    .with_context(|| format!("{} is damaged", args.file.display()))?;
    let m = &checked.manifest;
    let dir = &m.store_dir;
    let components = checked
        .cdx
        .get("components")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
        + usize::from(
            checked
                .cdx
                .pointer("/metadata/component/bom-ref")
                .and_then(Value::as_str)
                != Some("kiln-bundle"),
        );
    let mut licenses: Vec<String> = checked
        .spdx
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("licenseDeclared").and_then(Value::as_str))
        .filter(|l| *l != "NOASSERTION")
        .map(str::to_string)
        .collect();
    licenses.sort();
    licenses.dedup();
    let total: u64 = m.paths.iter().map(|p| p.nar_size).sum();
    if args.json {
        let v = json!({
            "storeDir": dir.as_str(),
            "roots": m.roots.iter().map(|r| dir.display(r)).collect::<Vec<_>>(),
            "paths": m.paths.iter().map(|p| json!({
                "path": dir.display(&p.path),
                "closure": p.closure.as_str(),
                "narSize": p.nar_size,
                "narHash": p.nar_hash.to_typed_nix32(),
            })).collect::<Vec<_>>(),
            "narSize": total,
            "signers": checked.signers,
            "untrustedSigners": checked.unknown_signers,
            "sbom": {"components": components, "licenses": licenses, "buildDependencies": m.build_deps.len()},
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    out += &format!("store dir: {}\n", dir.as_str());
    for r in &m.roots {
        out += &format!("root:      {}\n", dir.display(r));
    }
    let signer = match (
        checked.signers.is_empty(),
        checked.unknown_signers.is_empty(),
    ) {
        (false, _) => format!("{} (trusted)", checked.signers.join(", ")),
        (true, false) => format!(
            "{} (not a trusted key here)",
            checked.unknown_signers.join(", ")
        ),
        (true, true) => "unsigned".to_string(),
    };
    out += &format!("signed by: {signer}\n");
    out += &format!(
        "sbom:      {components} components, licenses: {}\n",
        if licenses.is_empty() {
            "none declared".to_string()
        } else {
            licenses.join(", ")
        }
    );
    out += &format!("paths:     {} ({total} NAR bytes)\n", m.paths.len());
    for p in &m.paths {
        out += &format!(
            "  {:>12}  {:<7}  {}\n",
            p.nar_size,
            p.closure.as_str(),
            dir.display(&p.path)
        );
    }
    crate::output::stdout(out.as_bytes()).context("printing")?;
    Ok(ExitCode::SUCCESS)
}

fn import(global: &GlobalOpts, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let trusted = trusted_keys(&args.trust.keys)?;
    let report = kiln_bundle::import::import(
        &store,
        open(&args.file)?,
        &kiln_bundle::import::ImportOptions {
            trusted: &trusted,
            check_sigs: !args.trust.no_check_sigs,
            select: kiln_bundle::import::Selection::All,
        },
    )
    .map_err(failed)
    .with_context(|| {
        format!(
            "{} was not imported; the store is unchanged",
            args.file.display()
        )
    })?;
    crate::say!(
        "imported {} paths ({} already valid){}",
        report.new.len(),
        report.skipped,
        if report.checked.signers.is_empty() {
            ", signature not checked".to_string()
        } else {
            format!(", signed by {}", report.checked.signers.join(", "))
        }
    );
    let dir = &report.checked.manifest.store_dir;
    let roots: String = report
        .checked
        .manifest
        .roots
        .iter()
        .map(|r| format!("{}\n", dir.display(r)))
        .collect();
    crate::output::stdout(roots.as_bytes()).context("printing the roots")?;
    Ok(ExitCode::SUCCESS)
}

fn reproduce(global: &GlobalOpts, args: &ReproduceArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let trusted = trusted_keys(&args.trust.keys)?;
    let key = args.sign_key.as_deref().map(read_secret_key).transpose()?;
    let out = args.out.clone().unwrap_or_else(|| {
        let mut name = args.file.as_os_str().to_owned();
        name.push(".vsa.json");
        PathBuf::from(name)
    });
    let result = kiln_bundle::reproduce::reproduce(
        &store,
        &args.file,
        &kiln_bundle::reproduce::ReproduceOptions {
            trusted: &trusted,
            check_sigs: !args.trust.no_check_sigs,
            key,
            jobs: threads() as usize,
            cores: threads(),
            resource_uri: format!(
                "file:{}",
                args.file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        },
    )
    .map_err(failed)
    .with_context(|| format!("reproducing {}", args.file.display()))?;
    std::fs::write(&out, kiln_bundle::json_bytes(&result.vsa))
        .with_context(|| format!("writing {}", out.display()))?;
    if args.json {
        let v = json!({
            "reproduced": result.all(),
            "vsa": out.display().to_string(),
            "outputs": result.outcomes.iter().map(|o| json!({
                "path": o.path,
                "reproduced": o.reproduced(),
                "expectedSha256": o.expected_sha256,
                "rebuiltSha256": o.rebuilt_sha256,
                "differences": o.differences,
                "error": o.error,
            })).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        for o in &result.outcomes {
            if o.reproduced() {
                crate::say!("reproduced {}", o.path);
            } else {
                crate::say!(
                    "NOT reproduced {}: {}",
                    o.path,
                    o.error.as_deref().unwrap_or("different bytes")
                );
                for d in &o.differences {
                    crate::say!("  {d}");
                }
            }
        }
        crate::say!("wrote the verification summary to {}", out.display());
    }
    if result.all() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow!(
            "{} of {} outputs did not reproduce",
            result.outcomes.iter().filter(|o| !o.reproduced()).count(),
            result.outcomes.len()
        ))
    }
}
