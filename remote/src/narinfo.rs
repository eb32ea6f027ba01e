//! `.narinfo` files and `nix-cache-info`, in Nix's format byte for byte.
//!
//! A narinfo is `Key: value` lines. Nix (2.8, `NarInfo::to_string`) writes
//! them in this order, and so does [`NarInfo::render`]:
//!
//! ```text
//! StorePath: /nix/store/<hash>-<name>
//! URL: nar/<filehash>.nar.xz
//! Compression: xz
//! FileHash: sha256:<nixbase32>
//! FileSize: <bytes>
//! NarHash: sha256:<nixbase32>
//! NarSize: <bytes>
//! References: <base name> <base name> …     (the line is there when empty)
//! Deriver: <base name>                      (when known)
//! Sig: <key name>:<base64>                  (one line per signature)
//! CA: fixed:r:sha256:<nixbase32>            (content-addressed paths)
//! ```
//!
//! Reading follows Nix too: unknown keys are ignored, `StorePath`, `URL`,
//! `NarHash` and `NarSize` are required, a missing `Compression` means
//! bzip2 (which kiln does not read, and says so).

use std::collections::BTreeSet;

use kiln_store::signing::{TrustedKeys, fingerprint};
use kiln_store::{Hash, HashAlgo, StoreDir, StorePath};

use crate::compression::Compression;

/// What a cache says about one store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    pub path: StorePath,
    /// Where the (compressed) NAR is, relative to the cache's URL.
    pub url: String,
    pub compression: Compression,
    /// sha256 of the file at `url`, and its size.
    pub file_hash: Option<Hash>,
    pub file_size: Option<u64>,
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub references: BTreeSet<StorePath>,
    pub deriver: Option<StorePath>,
    pub system: Option<String>,
    pub sigs: Vec<String>,
    pub ca: Option<String>,
}

/// Why a narinfo (or `nix-cache-info`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NarInfoError {
    #[error("line {line} is not `Key: value`")]
    BadLine { line: usize },
    #[error("the field {0} is missing")]
    Missing(&'static str),
    #[error("the field {field} has a bad value {value:?}: {reason}")]
    BadValue {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("it describes {found}, not the path asked for ({wanted})")]
    WrongPath { wanted: String, found: String },
    #[error("its URL {0:?} leaves the cache (absolute, or with a `..` or `//` segment)")]
    UnsafeUrl(String),
}

fn bad(field: &'static str, value: &str, reason: impl ToString) -> NarInfoError {
    NarInfoError::BadValue {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

impl NarInfo {
    /// The narinfo file name of `path`: `<hashpart>.narinfo`.
    pub fn file_name(path: &StorePath) -> String {
        format!("{}.narinfo", path.hash_part_str())
    }

    /// The text Nix writes for this narinfo.
    pub fn render(&self, store_dir: &StoreDir) -> String {
        let mut out = String::new();
        out += &format!("StorePath: {}\n", store_dir.display(&self.path));
        out += &format!("URL: {}\n", self.url);
        out += &format!("Compression: {}\n", self.compression.name());
        if let Some(hash) = &self.file_hash {
            out += &format!("FileHash: {}\n", hash.to_typed_nix32());
        }
        if let Some(size) = self.file_size {
            out += &format!("FileSize: {size}\n");
        }
        out += &format!("NarHash: {}\n", self.nar_hash.to_typed_nix32());
        out += &format!("NarSize: {}\n", self.nar_size);
        let refs: Vec<&str> = self.references.iter().map(|r| r.base_name()).collect();
        out += &format!("References: {}\n", refs.join(" "));
        if let Some(deriver) = &self.deriver {
            out += &format!("Deriver: {}\n", deriver.base_name());
        }
        if let Some(system) = &self.system {
            out += &format!("System: {system}\n");
        }
        for sig in &self.sigs {
            out += &format!("Sig: {sig}\n");
        }
        if let Some(ca) = &self.ca {
            out += &format!("CA: {ca}\n");
        }
        out
    }

    /// Read a narinfo of a cache whose store dir is `store_dir`.
    pub fn parse(store_dir: &StoreDir, text: &str) -> Result<NarInfo, NarInfoError> {
        let mut path = None;
        let mut url = None;
        let mut compression = None;
        let mut file_hash = None;
        let mut file_size = None;
        let mut nar_hash = None;
        let mut nar_size = None;
        let mut references = BTreeSet::new();
        let mut deriver = None;
        let mut system = None;
        let mut sigs = Vec::new();
        let mut ca = None;
        let number = |field: &'static str, v: &str| -> Result<u64, NarInfoError> {
            v.parse::<u64>().map_err(|e| bad(field, v, e))
        };
        let base_name = |field: &'static str, v: &str| -> Result<StorePath, NarInfoError> {
            StorePath::from_base_name(v).map_err(|e| bad(field, v, e))
        };
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.split_once(':'))
                .ok_or(NarInfoError::BadLine { line: i + 1 })?;
            let value = value.trim();
            match key {
                "StorePath" => {
                    path = Some(
                        store_dir
                            .parse_path(value)
                            .map_err(|e| bad("StorePath", value, e))?,
                    )
                }
                "URL" => url = Some(value.to_string()),
                "Compression" => {
                    compression =
                        Some(Compression::from_name(value).ok_or_else(|| {
                            bad("Compression", value, "kiln reads none, zstd and xz")
                        })?)
                }
                "FileHash" => {
                    file_hash = Some(
                        Hash::parse(value, Some(HashAlgo::Sha256))
                            .map_err(|e| bad("FileHash", value, e))?,
                    )
                }
                "FileSize" => file_size = Some(number("FileSize", value)?),
                "NarHash" => {
                    nar_hash = Some(
                        Hash::parse(value, Some(HashAlgo::Sha256))
                            .map_err(|e| bad("NarHash", value, e))?,
                    )
                }
                "NarSize" => nar_size = Some(number("NarSize", value)?),
                "References" => {
                    for r in value.split_whitespace() {
                        references.insert(base_name("References", r)?);
                    }
                }
                "Deriver" if value != "unknown-deriver" && !value.is_empty() => {
                    deriver = Some(base_name("Deriver", value)?);
                }
                "System" => system = Some(value.to_string()),
                "Sig" => sigs.push(value.to_string()),
                "CA" if !value.is_empty() => ca = Some(value.to_string()),
                _ => {}
            }
        }
        let url = url.ok_or(NarInfoError::Missing("URL"))?;
        check_relative_url(&url)?;
        let compression = match compression {
            Some(c) => c,
            None => {
                return Err(bad(
                    "Compression",
                    "",
                    "absent means bzip2, which kiln does not read",
                ));
            }
        };
        Ok(NarInfo {
            path: path.ok_or(NarInfoError::Missing("StorePath"))?,
            url,
            compression,
            file_hash,
            file_size,
            nar_hash: nar_hash.ok_or(NarInfoError::Missing("NarHash"))?,
            nar_size: nar_size.ok_or(NarInfoError::Missing("NarSize"))?,
            references,
            deriver,
            system,
            sigs,
            ca,
        })
    }

    /// What the signatures sign: Nix's fingerprint of the path.
    pub fn fingerprint(&self, store_dir: &StoreDir) -> String {
        let refs: BTreeSet<String> = self
            .references
            .iter()
            .map(|r| store_dir.display(r))
            .collect();
        fingerprint(
            &store_dir.display(&self.path),
            &self.nar_hash,
            self.nar_size,
            &refs,
        )
    }

    /// The name of the first trusted key that signed this narinfo, or why
    /// none did (each signature's reason, `; `-joined).
    pub fn trusted_signer(
        &self,
        store_dir: &StoreDir,
        keys: &TrustedKeys,
    ) -> Result<String, String> {
        if self.sigs.is_empty() {
            return Err("it is not signed".to_string());
        }
        let fp = self.fingerprint(store_dir);
        let mut reasons = Vec::new();
        for sig in &self.sigs {
            match keys.verify(fp.as_bytes(), sig) {
                Ok(name) => return Ok(name),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        Err(reasons.join("; "))
    }
}

/// A narinfo's URL must name a file inside the cache.
fn check_relative_url(url: &str) -> Result<(), NarInfoError> {
    let unsafe_url = url.is_empty()
        || url.starts_with('/')
        || url.contains("://")
        || url.contains('\\')
        || url.contains('?')
        || url.contains('#')
        || url
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || url.chars().any(|c| c.is_control() || c == ' ');
    if unsafe_url {
        return Err(NarInfoError::UnsafeUrl(url.to_string()));
    }
    Ok(())
}

/// `nix-cache-info`: the store dir of the cache's paths, whether it wants
/// mass queries, its priority (lower is asked first; Nix's default 50).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    pub store_dir: String,
    pub want_mass_query: bool,
    pub priority: Option<u32>,
}

/// The priority of a cache that states none, as in Nix.
pub const DEFAULT_PRIORITY: u32 = 50;

impl CacheInfo {
    pub fn parse(text: &str) -> Result<CacheInfo, NarInfoError> {
        let mut store_dir = None;
        let mut want_mass_query = false;
        let mut priority = None;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or(NarInfoError::BadLine { line: i + 1 })?;
            let value = value.trim();
            match key {
                "StoreDir" => store_dir = Some(value.to_string()),
                "WantMassQuery" => want_mass_query = value == "1",
                "Priority" => {
                    priority = Some(value.parse().map_err(|e| bad("Priority", value, e))?)
                }
                _ => {}
            }
        }
        Ok(CacheInfo {
            store_dir: store_dir.ok_or(NarInfoError::Missing("StoreDir"))?,
            want_mass_query,
            priority,
        })
    }

    pub fn render(&self) -> String {
        let mut out = format!("StoreDir: {}\n", self.store_dir);
        if self.want_mass_query {
            out += "WantMassQuery: 1\n";
        }
        if let Some(p) = self.priority {
            out += &format!("Priority: {p}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nix_store() -> StoreDir {
        StoreDir::new("/nix/store").unwrap()
    }

    /// A narinfo as `nix copy --to file://…` (Nix 2.8) writes it, signed by
    /// a key of `nix-store --generate-binary-cache-key test-1` (`NIX_PUBLIC`).
    const NIX_NARINFO: &str = "StorePath: /nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f
URL: nar/17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a.nar.xz
Compression: xz
FileHash: sha256:17gd6zzlkx90irc6qawagdkgh1d7qvlnq46yjf7xiqw9ycz7zq4a
FileSize: 128
NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
NarSize: 120
References: 
Sig: test-1:bVmQh+cFjt1s38N6QHjf01R368gJz376QVJGoVahH6vs+jEer02HjQpv8tjiXcMHltUk8WelcTmLgJrPXaUvBw==
CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw
";

    const NIX_PUBLIC: &str = "test-1:gVxHWUGt71xehYC9liTz2v9Xq+vOb5VblHyQJwxp7Oo=";

    #[test]
    fn round_trips_nix_s_text() {
        let info = NarInfo::parse(&nix_store(), NIX_NARINFO).unwrap();
        let keys = TrustedKeys::new(vec![
            kiln_store::signing::PublicKey::parse(NIX_PUBLIC).unwrap(),
        ]);
        assert_eq!(info.trusted_signer(&nix_store(), &keys).unwrap(), "test-1");
        let mut changed = info.clone();
        changed.nar_size += 1;
        assert!(changed.trusted_signer(&nix_store(), &keys).is_err());
        assert_eq!(info.compression, Compression::Xz);
        assert_eq!(info.nar_size, 120);
        assert!(info.references.is_empty());
        assert_eq!(info.render(&nix_store()), NIX_NARINFO);
    }

    #[test]
    fn references_and_deriver_are_base_names() {
        let text = NIX_NARINFO.replace(
            "References: \n",
            "References: 00000000000000000000000000000000-b 11111111111111111111111111111111-a\nDeriver: 22222222222222222222222222222222-f.drv\n",
        );
        let info = NarInfo::parse(&nix_store(), &text).unwrap();
        assert_eq!(info.references.len(), 2);
        assert_eq!(info.deriver.as_ref().unwrap().name(), "f.drv");
        assert!(info.fingerprint(&nix_store()).contains(
            ";/nix/store/00000000000000000000000000000000-b,/nix/store/11111111111111111111111111111111-a"
        ));
        assert_eq!(info.render(&nix_store()), text);
    }

    #[test]
    fn bad_narinfos_are_refused() {
        let store = nix_store();
        for (from, to) in [
            ("URL: nar/", "URL: ../../etc/"),
            ("URL: nar/", "URL: /etc/"),
            ("URL: nar/", "URL: http://elsewhere/"),
            ("Compression: xz", "Compression: bzip2"),
            ("NarSize: 120", "NarSize: -1"),
            ("StorePath: /nix/store/", "StorePath: /kiln/store/"),
            ("References: ", "References: ../etc"),
            ("NarHash: sha256:", "NarHash: md5:"),
        ] {
            let text = NIX_NARINFO.replace(from, to);
            assert!(NarInfo::parse(&store, &text).is_err(), "accepted {to}");
        }
        let no_hash: String = NIX_NARINFO
            .lines()
            .filter(|l| !l.starts_with("NarHash"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            NarInfo::parse(&store, &no_hash),
            Err(NarInfoError::Missing("NarHash"))
        );
        assert!(NarInfo::parse(&store, "garbage\n").is_err());
    }

    #[test]
    fn cache_info_round_trips() {
        let info =
            CacheInfo::parse("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n").unwrap();
        assert_eq!(info.priority, Some(40));
        assert_eq!(
            info.render(),
            "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
        );
        assert!(CacheInfo::parse("Priority: 1\n").is_err());
    }
}
