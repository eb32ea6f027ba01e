//! `kiln key …`: signing keys in Nix's `NAME:BASE64` formats, and the
//! trusted public keys that verification accepts.
//!
//! Trusted keys: every `--key` (a file holding `NAME:BASE64` lines, or the
//! key itself), and when none is given, the file `KILN_TRUSTED_KEYS` names,
//! else `$XDG_CONFIG_HOME/kiln/trusted-public-keys` (or
//! `~/.config/kiln/trusted-public-keys`): one key a line, `#` comments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use kiln_store::signing::{PublicKey, SecretKey, TrustedKeys, write_key_pair};

use crate::exit;

/// Make and show ed25519 signing keys (the same keys Nix's binary caches use).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln key generate ci-1 --out-dir ~/.config/kiln   writes ci-1.sec (0600) and ci-1.pub
  kiln key public ci-1.sec                          prints the public key of a secret key
  nix store sign -k ci-1.sec /nix/store/<hash>-hello  Nix signs with kiln's key")]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    Generate(GenerateArgs),
    Public(PublicArgs),
}

/// Write a new key pair NAME.sec (mode 0600) and NAME.pub.
///
/// Both are one line `NAME:BASE64`, as `nix-store --generate-binary-cache-key`
/// writes them: the secret key is the 32-byte seed followed by the 32-byte
/// public key, the public key is the 32-byte ed25519 key. NAME goes into every
/// signature, so pick one that says whose key it is (e.g. `ci.example.org-1`).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln key generate ci-1                       ./ci-1.sec and ./ci-1.pub
  kiln key generate cache.example.org-1 --out-dir /etc/kiln/keys")]
struct GenerateArgs {
    /// The key's name.
    name: String,
    /// Where to write the two files.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,
}

/// Print the public key of a secret key file.
#[derive(Args, Debug)]
#[command(after_help = "\
Example:
  kiln key public ci-1.sec > ci-1.pub          the public half, `ci-1:BASE64`")]
struct PublicArgs {
    /// A secret key file (NAME.sec).
    secret: PathBuf,
}

pub fn run(args: KeyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeyCommand::Generate(args) => {
            kiln_store::signing::check_key_name(&args.name)
                .map_err(|e| exit::user(anyhow!("key name: {e}")))?;
            let (sec, public) = write_key_pair(&args.name, &args.out_dir)
                .with_context(|| format!("writing a key pair in {}", args.out_dir.display()))?;
            eprintln!("wrote {} and {}", sec.display(), public.display());
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Public(args) => {
            let key = read_secret_key(&args.secret)?;
            println!("{}", key.public().to_nix_string());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Read a secret key file (bad contents are the user's input: exit 2).
pub fn read_secret_key(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the secret key {}", path.display()))
        .map_err(exit::user)?;
    SecretKey::parse(&text)
        .with_context(|| format!("{} is not a secret key", path.display()))
        .map_err(exit::user)
}

/// The trusted keys: from `--key` arguments, else the trusted-keys file.
pub fn trusted_keys(args: &[String]) -> anyhow::Result<TrustedKeys> {
    let mut keys = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.exists() {
            keys.extend(read_public_keys(path)?);
        } else {
            let key = PublicKey::parse(arg)
                .with_context(|| format!("--key {arg}: neither a file nor a NAME:BASE64 key"))
                .map_err(exit::user)?;
            keys.push(key);
        }
    }
    if args.is_empty()
        && let Some(file) = trusted_keys_file()
        && file.exists()
    {
        keys.extend(read_public_keys(&file)?);
    }
    Ok(TrustedKeys::new(keys))
}

fn trusted_keys_file() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("KILN_TRUSTED_KEYS").filter(|f| !f.is_empty()) {
        return Some(PathBuf::from(file));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("kiln/trusted-public-keys"))
}

fn read_public_keys(path: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading public keys from {}", path.display()))
        .map_err(exit::user)?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            PublicKey::parse(line)
                .with_context(|| format!("{}: not a public key", path.display()))
                .map_err(exit::user)
        })
        .collect()
}
