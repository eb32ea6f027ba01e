//! Built-in builders: derivations whose `builder` is `builtin:NAME` are
//! realised by kiln itself instead of a program in the sandbox. The one
//! kiln has is `builtin:fetchurl`, the builder of `<nix/fetchurl.nix>`.
//!
//! It reads from the derivation's environment (as Nix 2.8 does):
//!
//! | variable     | meaning                                                  |
//! |--------------|----------------------------------------------------------|
//! | `url`        | what to download (else the first word of `urls`)         |
//! | `unpack`     | `"1"`: the download is a NAR (xz-compressed if the URL ends in `.xz`), restored as the output |
//! | `executable` | `"1"`: the output file is made executable                |
//!
//! and writes the output `out` at its path in the build's scratch store;
//! from there the usual output processing (canonicalisation, the fixed
//! hash check, registration) takes over. It is allowed only for a
//! fixed-output derivation: the declared hash is what makes an unsandboxed
//! download safe. Temporary files (the compressed or NAR download of
//! `unpack`) go to the build directory. Nothing is written anywhere else.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use kiln_store::derivation::{Derivation, DerivationOutput};

use crate::error::BuildError;
use crate::fetch::{FetchLimits, fetch_to_file};
use crate::log::LogWriter;
use crate::supervise::Limits;

/// The prefix that marks a built-in builder.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// Whether `builder` names a built-in builder rather than a program.
pub fn is_builtin(builder: &str) -> bool {
    builder.starts_with(BUILTIN_PREFIX)
}

/// What a built-in builder needs of its build.
pub struct BuiltinBuild<'a> {
    /// The `.drv` path as printed, for messages.
    pub drv_path: &'a str,
    pub drv: &'a Derivation,
    /// The physical paths the outputs must be written to (in the scratch
    /// store), by output name.
    pub outputs: BTreeMap<String, PathBuf>,
    /// The build's scratch working directory.
    pub build_dir: &'a Path,
    pub limits: Limits,
    pub cancel: &'a AtomicBool,
}

/// Run the built-in builder of `build`. Derivations a built-in builder
/// cannot take (not fixed-output, unknown builtin, no URL) are an error;
/// a failed run is `Ok(Err(message))`, the message also written to `log`,
/// like a builder program that exits non-zero.
pub fn run_builtin(
    build: &BuiltinBuild,
    log: &mut LogWriter,
    on_line: &mut dyn FnMut(&str),
) -> Result<Result<(), String>, BuildError> {
    let refuse =
        |why: String| BuildError::Other(format!("cannot build '{}': {why}", build.drv_path));
    if build.drv.builder.strip_prefix(BUILTIN_PREFIX) != Some("fetchurl") {
        return Err(refuse(format!(
            "unsupported built-in builder '{}' (kiln has only builtin:fetchurl)",
            build.drv.builder
        )));
    }
    let fixed = !build.drv.outputs.is_empty()
        && build
            .drv
            .outputs
            .values()
            .all(|o| matches!(o, DerivationOutput::Fixed { .. }));
    if !fixed {
        return Err(refuse(
            "'builtin:fetchurl' must be a fixed-output derivation (set outputHash)".into(),
        ));
    }
    let Some(out) = build.outputs.get("out") else {
        return Err(refuse("'builtin:fetchurl' requires an 'out' output".into()));
    };
    let env = &build.drv.env;
    let url = env
        .get("url")
        .filter(|u| !u.is_empty())
        .map(String::as_str)
        .or_else(|| env.get("urls").and_then(|u| u.split_whitespace().next()))
        .ok_or_else(|| refuse("'builtin:fetchurl' needs the attribute 'url' or 'urls'".into()))?;
    let flag = |name: &str| env.get(name).is_some_and(|v| v == "1");

    let result = fetchurl(
        build,
        url,
        out,
        flag("unpack"),
        flag("executable"),
        log,
        on_line,
    );
    match result {
        Ok(()) => Ok(Ok(())),
        Err(message) => {
            say(log, on_line, &format!("error: {message}"))?;
            Ok(Err(message))
        }
    }
}

/// Download `url` to `out`, unpacking and chmodding as asked. Progress
/// goes to the log as it happens; an `Err` is the failure's message.
fn fetchurl(
    build: &BuiltinBuild,
    url: &str,
    out: &Path,
    unpack: bool,
    executable: bool,
    log: &mut LogWriter,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let limits = FetchLimits {
        total: build.limits.timeout,
        // --max-silent-time bounds a download that brings nothing.
        stall: build
            .limits
            .max_silent
            .unwrap_or(FetchLimits::default().stall),
        ..FetchLimits::default()
    };
    // The log's write errors end the build like a fetch error would.
    let mut log_error: Option<BuildError> = None;
    let mut progress = |line: &str| {
        if log_error.is_none()
            && let Err(e) = say(log, on_line, line)
        {
            log_error = Some(e);
        }
    };
    let target = if unpack {
        build.build_dir.join("download")
    } else {
        out.to_path_buf()
    };
    let fetched = fetch_to_file(url, &target, &limits, build.cancel, &mut progress);
    let unpacked = fetched.map_err(|e| e.to_string()).and_then(|_| {
        if unpack {
            unpack_nar(url, &target, build.build_dir, out, &mut progress)
        } else {
            Ok(())
        }
    });
    if let Some(e) = log_error {
        return Err(e.to_string());
    }
    unpacked?;
    if executable {
        // Canonicalisation turns this into 0555.
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("making '{}' executable: {e}", out.display()))?;
    }
    Ok(())
}

/// Restore the NAR `download` (xz-compressed if `url` ends in `.xz`, as
/// Nix decides) at `out`.
fn unpack_nar(
    url: &str,
    download: &Path,
    build_dir: &Path,
    out: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let open = |path: &Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let nar = if url.ends_with(".xz") {
        let nar = build_dir.join("download.nar");
        let file = File::create_new(&nar).map_err(|e| format!("{}: {e}", nar.display()))?;
        let mut writer = BufWriter::new(file);
        lzma_rs::xz_decompress(&mut open(download)?, &mut writer)
            .map_err(|e| format!("decompressing the xz download of '{url}': {e}"))?;
        writer
            .flush()
            .map_err(|e| format!("{}: {e}", nar.display()))?;
        nar
    } else {
        download.to_path_buf()
    };
    let size = kiln_store::nar::restore(&mut open(&nar)?, out)
        .map_err(|e| format!("unpacking the NAR downloaded from '{url}': {e}"))?;
    progress(&format!("unpacked a NAR of {size} bytes"));
    Ok(())
}

/// Write one line to the build log and pass it on.
fn say(log: &mut LogWriter, on_line: &mut dyn FnMut(&str), line: &str) -> Result<(), BuildError> {
    for line in log.write(format!("{line}\n").as_bytes())? {
        on_line(&line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::derivation::FixedOutputHash;
    use kiln_store::{FileIngestionMethod, Hash, HashAlgo, StoreDir};
    use std::os::unix::fs::MetadataExt;

    /// A derivation of `builtin:fetchurl` with `env`; fixed when `fixed`.
    fn derivation(fixed: bool, env: &[(&str, &str)]) -> Derivation {
        let dir = StoreDir::new("/kiln/store").unwrap();
        let out = if fixed {
            let hash = FixedOutputHash {
                method: FileIngestionMethod::Recursive,
                hash: Hash::digest(HashAlgo::Sha256, b"unused"),
            };
            DerivationOutput::fixed(&dir, "fetched", "out", hash).unwrap()
        } else {
            DerivationOutput::InputAddressed {
                path: "0000000000000000000000000000000a-fetched".parse().unwrap(),
            }
        };
        Derivation {
            outputs: [("out".to_string(), out)].into(),
            input_drvs: Default::default(),
            input_srcs: Default::default(),
            system: "builtin".into(),
            builder: "builtin:fetchurl".into(),
            args: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Run the builtin for `drv` in a fresh temp dir; returns the result,
    /// the output path and the log lines.
    fn run(
        drv: &Derivation,
        dir: &Path,
    ) -> (Result<Result<(), String>, BuildError>, PathBuf, Vec<String>) {
        let out = dir.join("out");
        let build_dir = dir.join("build");
        std::fs::create_dir_all(&build_dir).unwrap();
        let cancel = AtomicBool::new(false);
        let build = BuiltinBuild {
            drv_path: "/kiln/store/x-fetched.drv",
            drv,
            outputs: [("out".to_string(), out.clone())].into(),
            build_dir: &build_dir,
            limits: Limits::default(),
            cancel: &cancel,
        };
        let mut log = LogWriter::create(dir.join("log.zst")).unwrap();
        let mut lines = Vec::new();
        let result = run_builtin(&build, &mut log, &mut |l| lines.push(l.to_string()));
        (result, out, lines)
    }

    #[test]
    fn fetches_a_file_url_and_makes_it_executable() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tool");
        std::fs::write(&src, b"#!/bin/sh\n").unwrap();
        let url = format!("file://{}", src.display());
        // `url` missing: the first of `urls` is taken.
        let drv = derivation(
            true,
            &[
                ("urls", &format!("{url} file:///other")),
                ("executable", "1"),
            ],
        );
        let (result, out, lines) = run(&drv, dir.path());
        assert_eq!(result.unwrap(), Ok(()));
        assert_eq!(std::fs::read(&out).unwrap(), b"#!/bin/sh\n");
        assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o755);
        assert_eq!(lines[0], format!("copying '{url}' (10 bytes)"));
    }

    #[test]
    fn a_failed_download_is_a_builder_failure_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let drv = derivation(true, &[("url", "file:///nonexistent/kiln-test")]);
        let (result, out, lines) = run(&drv, dir.path());
        let message = result.unwrap().unwrap_err();
        assert!(
            message.contains("file:///nonexistent/kiln-test"),
            "{message}"
        );
        assert_eq!(lines.last().unwrap(), &format!("error: {message}"));
        assert!(!out.exists());
    }

    #[test]
    fn refuses_what_it_cannot_build() {
        let dir = tempfile::tempdir().unwrap();
        let url = ("url", "file:///dev/null");
        let (not_fixed, _, _) = run(&derivation(false, &[url]), dir.path());
        let err = not_fixed.unwrap_err().to_string();
        assert!(err.contains("must be a fixed-output derivation"), "{err}");

        let mut unknown = derivation(true, &[url]);
        unknown.builder = "builtin:buildenv".into();
        let (unknown, _, _) = run(&unknown, dir.path());
        let err = unknown.unwrap_err().to_string();
        assert!(
            err.contains("unsupported built-in builder 'builtin:buildenv'"),
            "{err}"
        );

        let (no_url, _, _) = run(&derivation(true, &[]), dir.path());
        let err = no_url.unwrap_err().to_string();
        assert!(err.contains("'url' or 'urls'"), "{err}");
    }

    /// A tree with a file, an executable and a symlink, and its NAR.
    fn sample_nar(dir: &Path) -> (PathBuf, Vec<u8>) {
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/data"), b"data\n").unwrap();
        std::fs::write(tree.join("run"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(tree.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("sub/data", tree.join("link")).unwrap();
        let mut nar = Vec::new();
        kiln_store::nar::dump_path(&tree, &mut nar).unwrap();
        (tree, nar)
    }

    #[test]
    fn unpack_restores_a_nar_plain_or_xz() {
        let dir = tempfile::tempdir().unwrap();
        let (_, nar) = sample_nar(dir.path());
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &nar[..], &mut xz).unwrap();
        for (name, bytes) in [("tree.nar", &nar), ("tree.nar.xz", &xz)] {
            let case = dir.path().join(name);
            std::fs::create_dir_all(case.join("build")).unwrap();
            let served = dir.path().join(format!("served-{name}"));
            std::fs::write(&served, bytes).unwrap();
            let url = format!("file://{}", served.display());
            let drv = derivation(true, &[("url", &url), ("unpack", "1")]);
            let (result, out, _) = run(&drv, &case);
            assert_eq!(result.unwrap(), Ok(()), "{name}");
            let mut again = Vec::new();
            kiln_store::nar::dump_path(&out, &mut again).unwrap();
            assert_eq!(again, nar, "{name}");
        }
    }

    #[test]
    fn unpack_of_something_else_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let served = dir.path().join("not-a-nar");
        std::fs::write(&served, b"plain text").unwrap();
        let url = format!("file://{}", served.display());
        let drv = derivation(true, &[("url", &url), ("unpack", "1")]);
        let (result, _, _) = run(&drv, dir.path());
        let message = result.unwrap().unwrap_err();
        assert!(
            message.starts_with("unpacking the NAR downloaded from"),
            "{message}"
        );
    }
}
