//! `kiln hash …`: hash files and trees the way Nix does, and convert hashes
//! between their printed forms.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use kiln_store::{Hash, HashAlgo, Hasher};

use crate::exit;

/// Compute and convert hashes (md5, sha1, sha256, sha512).
///
/// Forms: base16 (hex), base32 (Nix's own base32, as in store paths),
/// base64, and SRI (`sha256-<base64>`, the default output).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln hash path ./dir                       NAR hash, like `nix hash path`
  kiln hash file --base32 seed.tar.gz        hash of the bytes, like `nix-hash --flat --base32`
  kiln hash convert --to base16 sha256-LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=")]
pub struct HashArgs {
    #[command(subcommand)]
    command: HashCommand,
}

#[derive(Subcommand, Debug)]
enum HashCommand {
    /// Hash the NAR serialisation of files or trees (what store paths are
    /// computed from), like `nix hash path` / `nix-hash`.
    #[command(after_help = "\
Examples:
  kiln hash path ./src                      sha256-…  (SRI)
  kiln hash path --base32 ./src             the form `nix-hash --base32` prints
  kiln hash path --type sha1 --base16 ./src")]
    Path(HashFilesArgs),
    /// Hash the bytes of files, like `nix hash file` / `nix-hash --flat`.
    #[command(after_help = "\
Examples:
  kiln hash file seed.tar.gz
  kiln hash file --type sha512 --base16 seed.tar.gz")]
    File(HashFilesArgs),
    Convert(ConvertArgs),
}

#[derive(Args, Debug)]
struct HashFilesArgs {
    /// Hash algorithm: md5, sha1, sha256 or sha512.
    #[arg(long = "type", value_name = "ALGO", default_value = "sha256")]
    algo: String,
    #[command(flatten)]
    format: FormatFlags,
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// How to print a hash (SRI when none is given).
#[derive(Args, Debug)]
#[group(multiple = false)]
struct FormatFlags {
    /// Print hex.
    #[arg(long)]
    base16: bool,
    /// Print Nix base32.
    #[arg(long)]
    base32: bool,
    /// Print base64.
    #[arg(long)]
    base64: bool,
    /// Print SRI (`ALGO-BASE64`), the default.
    #[arg(long)]
    sri: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Base16,
    Base32,
    Base64,
    Sri,
}

impl FormatFlags {
    fn format(&self) -> Format {
        match (self.base16, self.base32, self.base64) {
            (true, _, _) => Format::Base16,
            (_, true, _) => Format::Base32,
            (_, _, true) => Format::Base64,
            _ => Format::Sri,
        }
    }
}

/// Convert hashes between forms. A hash with an `ALGO:` prefix or in SRI
/// form names its algorithm; a bare one needs --type.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln hash convert --to sri sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s
  kiln hash convert --type sha1 --to base32 e65b7dcbd12458fbdc84b123ddad9b8ba06e2f96")]
struct ConvertArgs {
    /// Algorithm of hashes written without one.
    #[arg(long = "type", value_name = "ALGO")]
    algo: Option<String>,
    /// Form to print.
    #[arg(long, value_enum)]
    to: Format,
    #[arg(required = true, value_name = "HASH")]
    hashes: Vec<String>,
}

pub fn run(args: HashArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        HashCommand::Path(args) => hash_files(args, true),
        HashCommand::File(args) => hash_files(args, false),
        HashCommand::Convert(args) => convert(args),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn parse_algo(s: &str) -> anyhow::Result<HashAlgo> {
    s.parse()
        .map_err(|err| exit::user(anyhow!("--type {s:?}: {err}")))
}

fn print(hash: &Hash, format: Format) -> String {
    match format {
        Format::Base16 => hash.to_base16(),
        Format::Base32 => hash.to_nix32(),
        Format::Base64 => hash.to_base64(),
        Format::Sri => hash.to_sri(),
    }
}

fn hash_files(args: HashFilesArgs, recursive: bool) -> anyhow::Result<()> {
    let algo = parse_algo(&args.algo)?;
    let format = args.format.format();
    let mut out = std::io::stdout().lock();
    for path in &args.paths {
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| path.display().to_string())
            .map_err(exit::user)?;
        let hash = if recursive {
            kiln_store::nar::hash_path(path, algo)
                .map(|(hash, _size)| hash)
                .with_context(|| format!("hashing {}", path.display()))
                .map_err(exit::user)?
        } else {
            if meta.is_dir() {
                return Err(exit::user(anyhow!(
                    "{}: is a directory; `kiln hash path` hashes trees",
                    path.display()
                )));
            }
            let mut file = std::fs::File::open(path)
                .with_context(|| path.display().to_string())
                .map_err(exit::user)?;
            hash_reader(&mut file, algo).with_context(|| format!("reading {}", path.display()))?
        };
        writeln!(out, "{}", print(&hash, format))?;
    }
    Ok(())
}

/// Hash everything `reader` yields, in big reads (the default 8 KiB copy
/// buffer costs measurable time on large files).
fn hash_reader(reader: &mut impl std::io::Read, algo: HashAlgo) -> std::io::Result<Hash> {
    let mut hasher = Hasher::new(algo);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    let algo = args.algo.as_deref().map(parse_algo).transpose()?;
    let mut out = std::io::stdout().lock();
    for text in &args.hashes {
        let hash = Hash::parse(text, algo).map_err(|err| exit::user(anyhow!("{err}")))?;
        writeln!(out, "{}", print(&hash, args.to))?;
    }
    Ok(())
}
