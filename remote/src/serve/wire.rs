//! Nix's wire encoding, as `nix-store --serve` (and the daemon) speak it.
//!
//! Every number is a little-endian u64. A string is its length (u64), its
//! bytes and zero padding to a multiple of 8. A list or set of strings is a
//! count followed by the strings. A store path travels as its full printed
//! form (`/nix/store/HASH-NAME`). The export format (`nix-store --export`,
//! the serve protocol's ImportPaths and ExportPaths) is, per path: `1`, the
//! NAR, [`EXPORT_MAGIC`], the path, its references, its deriver (or `""`),
//! `0` (no legacy signature); `0` after the last path.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use kiln_store::derivation::output::{FixedOutputHash, parse_method_algo};
use kiln_store::{Derivation, DerivationOutput, Hash, StoreDir, StorePath};

/// The magic ending each path's metadata in the export format.
pub const EXPORT_MAGIC: u64 = 0x4558_494e;

/// Longest string accepted from the other side (a `.drv`'s environment
/// variable can be large; a NAR never travels as one string).
pub const MAX_STRING: u64 = 64 << 20;
/// Most elements accepted in one list.
pub const MAX_LIST: u64 = 1 << 24;

/// An input that does not follow the protocol.
pub fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

pub fn write_u64(out: &mut impl Write, n: u64) -> io::Result<()> {
    out.write_all(&n.to_le_bytes())
}

pub fn write_bool(out: &mut impl Write, b: bool) -> io::Result<()> {
    write_u64(out, b as u64)
}

pub fn write_str(out: &mut impl Write, s: &[u8]) -> io::Result<()> {
    kiln_store::nar::wire::write_str(out, s).map(|_| ())
}

pub fn write_strings<'a, S: AsRef<[u8]> + 'a>(
    out: &mut impl Write,
    items: impl ExactSizeIterator<Item = S>,
) -> io::Result<()> {
    write_u64(out, items.len() as u64)?;
    for s in items {
        write_str(out, s.as_ref())?;
    }
    Ok(())
}

pub fn write_paths<'a>(
    out: &mut impl Write,
    dir: &StoreDir,
    paths: impl ExactSizeIterator<Item = &'a StorePath>,
) -> io::Result<()> {
    write_u64(out, paths.len() as u64)?;
    for p in paths {
        write_str(out, dir.display(p).as_bytes())?;
    }
    Ok(())
}

pub fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// A u64 that must be 0 or 1.
pub fn read_bool(input: &mut impl Read) -> io::Result<bool> {
    match read_u64(input)? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(bad(format!("expected a boolean (0 or 1), got {n}"))),
    }
}

pub fn read_bytes(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = read_u64(input)?;
    if len > MAX_STRING {
        return Err(bad(format!("a string of {len} bytes is too long")));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    let pad = kiln_store::nar::wire::padding_len(len);
    let mut zeros = [0u8; 8];
    input.read_exact(&mut zeros[..pad])?;
    if zeros.iter().any(|&b| b != 0) {
        return Err(bad("a string's padding is not zero"));
    }
    Ok(buf)
}

pub fn read_string(input: &mut impl Read) -> io::Result<String> {
    String::from_utf8(read_bytes(input)?).map_err(|_| bad("a string is not UTF-8"))
}

fn read_count(input: &mut impl Read) -> io::Result<u64> {
    let n = read_u64(input)?;
    if n > MAX_LIST {
        return Err(bad(format!("a list of {n} elements is too long")));
    }
    Ok(n)
}

pub fn read_strings(input: &mut impl Read) -> io::Result<Vec<String>> {
    let n = read_count(input)?;
    (0..n).map(|_| read_string(input)).collect()
}

pub fn parse_path(dir: &StoreDir, s: &str) -> io::Result<StorePath> {
    dir.parse_path(s).map_err(|e| {
        bad(format!(
            "{s:?} is not a path of the store {}: {e}",
            dir.as_str()
        ))
    })
}

pub fn read_path(input: &mut impl Read, dir: &StoreDir) -> io::Result<StorePath> {
    parse_path(dir, &read_string(input)?)
}

/// A path or `""` (a deriver that is not known).
pub fn read_opt_path(input: &mut impl Read, dir: &StoreDir) -> io::Result<Option<StorePath>> {
    let s = read_string(input)?;
    if s.is_empty() {
        Ok(None)
    } else {
        parse_path(dir, &s).map(Some)
    }
}

pub fn read_paths(input: &mut impl Read, dir: &StoreDir) -> io::Result<BTreeSet<StorePath>> {
    let n = read_count(input)?;
    (0..n).map(|_| read_path(input, dir)).collect()
}

/// Writes a derivation as Nix's `BasicDerivation` on the wire: outputs
/// (name, path or `""`, hashAlgo, hash), input sources, platform, builder,
/// args, environment. Input derivations do not travel: `drv.input_srcs`
/// must name every input path.
pub fn write_basic_derivation(
    out: &mut impl Write,
    dir: &StoreDir,
    drv: &Derivation,
) -> io::Result<()> {
    write_u64(out, drv.outputs.len() as u64)?;
    for (name, output) in &drv.outputs {
        write_str(out, name.as_bytes())?;
        let path = output.path().map(|p| dir.display(p)).unwrap_or_default();
        write_str(out, path.as_bytes())?;
        write_str(out, output.hash_algo_field().as_bytes())?;
        write_str(out, output.hash_field().as_bytes())?;
    }
    write_paths(out, dir, drv.input_srcs.iter())?;
    write_str(out, drv.system.as_bytes())?;
    write_str(out, drv.builder.as_bytes())?;
    write_strings(out, drv.args.iter())?;
    write_u64(out, drv.env.len() as u64)?;
    for (k, v) in &drv.env {
        write_str(out, k.as_bytes())?;
        write_str(out, v.as_bytes())?;
    }
    Ok(())
}

/// Reads a `BasicDerivation` (see [`write_basic_derivation`]); the result
/// has no input derivations.
pub fn read_basic_derivation(input: &mut impl Read, dir: &StoreDir) -> io::Result<Derivation> {
    let n = read_count(input)?;
    let mut outputs = BTreeMap::new();
    for _ in 0..n {
        let name = read_string(input)?;
        let path = read_string(input)?;
        let algo = read_string(input)?;
        let hash = read_string(input)?;
        let output = match (path.is_empty(), algo.is_empty()) {
            (false, true) => DerivationOutput::InputAddressed {
                path: parse_path(dir, &path)?,
            },
            (false, false) => {
                let (method, algo) = parse_method_algo(&algo)
                    .ok_or_else(|| bad(format!("output {name}: unknown hash type {algo:?}")))?;
                let hash = Hash::parse(&hash, Some(algo))
                    .map_err(|e| bad(format!("output {name}: bad hash {hash:?}: {e}")))?;
                DerivationOutput::Fixed {
                    path: parse_path(dir, &path)?,
                    hash: FixedOutputHash { method, hash },
                }
            }
            (true, false) => {
                let (method, algo) = parse_method_algo(&algo)
                    .ok_or_else(|| bad(format!("output {name}: unknown hash type {algo:?}")))?;
                DerivationOutput::Floating { method, algo }
            }
            (true, true) => DerivationOutput::Deferred,
        };
        if outputs.insert(name.clone(), output).is_some() {
            return Err(bad(format!("output {name} is given twice")));
        }
    }
    let input_srcs = read_paths(input, dir)?;
    let system = read_string(input)?;
    let builder = read_string(input)?;
    let args = read_strings(input)?;
    let n = read_count(input)?;
    let mut env = BTreeMap::new();
    for _ in 0..n {
        let k = read_string(input)?;
        let v = read_string(input)?;
        env.insert(k, v);
    }
    Ok(Derivation {
        outputs,
        input_drvs: BTreeMap::new(),
        input_srcs,
        system,
        builder,
        args,
        env,
    })
}

/// What QueryPathInfos tells of one path (protocol 2.4 and later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePathInfo {
    pub path: StorePath,
    pub deriver: Option<StorePath>,
    pub references: BTreeSet<StorePath>,
    /// Nix sends the NAR size here ("download size").
    pub download_size: u64,
    pub nar_size: u64,
    pub nar_hash: Hash,
    /// Rendered content address or `""`.
    pub ca: String,
    pub sigs: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_to_eight_bytes() {
        let mut out = Vec::new();
        write_str(&mut out, b"abc").unwrap();
        assert_eq!(out, b"\x03\0\0\0\0\0\0\0abc\0\0\0\0\0");
        assert_eq!(read_string(&mut &out[..]).unwrap(), "abc");
        let mut out = Vec::new();
        write_str(&mut out, b"").unwrap();
        assert_eq!(out, [0u8; 8]);
    }

    #[test]
    fn nonzero_padding_and_huge_lengths_are_refused() {
        let bad_pad = b"\x01\0\0\0\0\0\0\0a\0\0\0\0\0\0\x01";
        assert!(read_string(&mut &bad_pad[..]).is_err());
        let huge = u64::MAX.to_le_bytes();
        assert!(read_string(&mut &huge[..]).is_err());
        assert!(read_strings(&mut &huge[..]).is_err());
        assert!(read_bool(&mut &2u64.to_le_bytes()[..]).is_err());
    }

    #[test]
    fn basic_derivation_round_trips() {
        let dir = StoreDir::new("/nix/store").unwrap();
        let p = |s: &str| dir.parse_path(s).unwrap();
        let drv = Derivation {
            outputs: [
                (
                    "out".to_string(),
                    DerivationOutput::InputAddressed {
                        path: p("/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-foo"),
                    },
                ),
                ("dev".to_string(), DerivationOutput::Deferred),
            ]
            .into(),
            input_drvs: BTreeMap::new(),
            input_srcs: [p("/nix/store/mx7dkhp7rwn4xm7y6nvgsydv5ibzm3s6-busybox")].into(),
            system: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), "echo hi > $out".into()],
            env: [("out".to_string(), "x".to_string())].into(),
        };
        let mut out = Vec::new();
        write_basic_derivation(&mut out, &dir, &drv).unwrap();
        assert_eq!(out.len() % 8, 0);
        let back = read_basic_derivation(&mut &out[..], &dir).unwrap();
        assert_eq!(back, drv);
    }
}
