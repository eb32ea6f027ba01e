//! `--option NAME VALUE`: Nix's way to set a setting, for the settings
//! kiln has. Each one maps onto the flag kiln spells it with, so
//! `--option max-jobs 4` is `-j 4`; a flag given explicitly and an
//! `--option` for the same thing: the later `--option` wins, as in Nix.
//! Build settings on a command that builds nothing have no effect, as in
//! Nix. A setting kiln has no use for is refused with what to do instead.

use anyhow::anyhow;

use crate::cli::{Cli, Command};
use crate::exit;

/// The settings `--option` accepts, for help and error messages.
pub const SETTINGS: &[&str] = &[
    "show-trace",
    "max-jobs",
    "cores",
    "keep-going",
    "keep-failed",
    "timeout",
    "max-silent-time",
    "sandbox",
    "substituters",
    "extra-substituters",
    "trusted-public-keys",
    "extra-trusted-public-keys",
    "require-sigs",
    "connect-timeout",
    "stalled-download-timeout",
    "http-connections",
];

/// Apply every `--option` of `cli` to the parsed arguments.
pub fn apply(cli: &mut Cli) -> anyhow::Result<()> {
    let pairs: Vec<(String, String)> = cli
        .global
        .option
        .chunks(2)
        .filter_map(|pair| match pair {
            [name, value] => Some((name.clone(), value.clone())),
            _ => None,
        })
        .collect();
    for (name, value) in pairs {
        set(cli, &name, &value)
            .map_err(|err| exit::user(err.context(format!("--option {name} {value:?}"))))?;
    }
    Ok(())
}

fn set(cli: &mut Cli, name: &str, value: &str) -> anyhow::Result<()> {
    let build = match &mut cli.command {
        Command::Build(args) => Some(args),
        _ => None,
    };
    match name {
        "show-trace" => cli.global.show_trace = boolean(value)?,
        "max-jobs" => {
            let jobs = if value == "auto" {
                None
            } else {
                Some(number(value)?)
            };
            if let Some(build) = build {
                build.jobs = jobs.map(|n| n as usize);
            }
        }
        "cores" => {
            // Nix's 0 means "all of them", kiln's default.
            let cores = number(value)?;
            if let Some(build) = build {
                build.cores = (cores > 0).then_some(cores as u32);
            }
        }
        "keep-going" => {
            let on = boolean(value)?;
            if let Some(build) = build {
                build.keep_going = on;
            }
        }
        "keep-failed" => {
            let on = boolean(value)?;
            if let Some(build) = build {
                build.keep_failed = on;
            }
        }
        "timeout" | "max-silent-time" => {
            // 0 means no limit, as in Nix.
            let seconds = Some(number(value)?).filter(|s| *s > 0);
            if let Some(build) = build {
                if name == "timeout" {
                    build.timeout = seconds;
                } else {
                    build.max_silent_time = seconds;
                }
            }
        }
        "sandbox" => {
            if !boolean(value)? {
                return Err(anyhow!(
                    "kiln always builds in a sandbox; there is no way to turn it off"
                ));
            }
        }
        "substituters"
        | "extra-substituters"
        | "trusted-public-keys"
        | "extra-trusted-public-keys" => {
            let words: Vec<String> = value.split_whitespace().map(str::to_string).collect();
            if let Some(build) = build {
                let subst = &mut build.subst;
                let list = match name {
                    "substituters" => &mut subst.substituters,
                    "extra-substituters" => &mut subst.extra_substituters,
                    "trusted-public-keys" => &mut subst.trusted_public_keys,
                    _ => &mut subst.extra_trusted_public_keys,
                };
                // `--option substituters ''` means none (not the config file's).
                *list = if words.is_empty() {
                    vec![String::new()]
                } else {
                    words
                };
            }
        }
        "require-sigs" => {
            let on = boolean(value)?;
            if let Some(build) = build {
                build.subst.require_sigs = Some(on);
            }
        }
        "connect-timeout" | "stalled-download-timeout" | "http-connections" => {
            let n = number(value)?;
            if let Some(build) = build {
                match name {
                    "connect-timeout" => build.subst.connect_timeout = Some(n),
                    "stalled-download-timeout" => build.subst.stalled_download_timeout = Some(n),
                    _ => build.subst.http_connections = Some(n as usize),
                }
            }
        }
        "store" => {
            return Err(anyhow!(
                "kiln chooses its store with --root DIR and --store-dir DIR"
            ));
        }
        "nix-path" => {
            return Err(anyhow!(
                "kiln sets the search path with -I PATH, KILN_PATH or NIX_PATH"
            ));
        }
        _ => {
            return Err(anyhow!(
                "kiln has no setting {name:?}; the settings it has are: {}",
                SETTINGS.join(", ")
            ));
        }
    }
    Ok(())
}

fn boolean(value: &str) -> anyhow::Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(anyhow!("expected true or false")),
    }
}

fn number(value: &str) -> anyhow::Result<u64> {
    value
        .parse()
        .map_err(|_| anyhow!("expected a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> anyhow::Result<Cli> {
        let mut cli = crate::cli::try_parse_from(args)?;
        apply(&mut cli)?;
        Ok(cli)
    }

    fn build_args(cli: &Cli) -> &crate::cli::build::BuildArgs {
        match &cli.command {
            Command::Build(args) => args,
            other => panic!("not a build: {other:?}"),
        }
    }

    #[test]
    fn build_settings_map_onto_the_flags() {
        let cli = parsed(&[
            "kiln",
            "build",
            "x.nix",
            "--option",
            "max-jobs",
            "3",
            "--option",
            "cores",
            "2",
            "--option",
            "keep-going",
            "true",
            "--option",
            "timeout",
            "0",
            "--option",
            "max-silent-time",
            "60",
        ])
        .unwrap();
        let build = build_args(&cli);
        assert_eq!(build.jobs, Some(3));
        assert_eq!(build.cores, Some(2));
        assert!(build.keep_going);
        assert_eq!(build.timeout, None);
        assert_eq!(build.max_silent_time, Some(60));
    }

    #[test]
    fn the_later_option_wins_over_the_flag() {
        let cli = parsed(&["kiln", "build", "-j", "5", "--option", "max-jobs", "auto"]).unwrap();
        assert_eq!(build_args(&cli).jobs, None);
    }

    #[test]
    fn show_trace_is_a_setting_too() {
        let cli = parsed(&["kiln", "--option", "show-trace", "true", "eval", "-E", "1"]).unwrap();
        assert!(cli.global.show_trace);
    }

    #[test]
    fn settings_kiln_lacks_are_refused_clearly() {
        let err = parsed(&["kiln", "eval", "--option", "sandbox", "false", "-E", "1"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("always builds in a sandbox"),
            "{err:#}"
        );
        let err = parsed(&["kiln", "eval", "--option", "frobnicate", "1", "-E", "1"]).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("no setting \"frobnicate\""), "{text}");
        assert!(text.contains("max-jobs"), "{text}");
        let err = parsed(&["kiln", "build", "--option", "max-jobs", "many"]).unwrap_err();
        assert!(format!("{err:#}").contains("whole number"), "{err:#}");
        // Common in scripts, and true of kiln.
        parsed(&["kiln", "build", "--option", "substituters", ""]).unwrap();
        parsed(&["kiln", "build", "--option", "sandbox", "true"]).unwrap();
    }

    #[test]
    fn substitution_settings_map_onto_build_flags() {
        let cli = parsed(&[
            "kiln",
            "build",
            "--option",
            "substituters",
            "file:///a http://b",
            "--option",
            "require-sigs",
            "false",
            "--option",
            "connect-timeout",
            "3",
            "x.nix",
        ])
        .unwrap();
        let Command::Build(build) = cli.command else {
            panic!("not a build")
        };
        assert_eq!(build.subst.substituters, ["file:///a", "http://b"]);
        assert_eq!(build.subst.require_sigs, Some(false));
        assert_eq!(build.subst.connect_timeout, Some(3));
        let cli = parsed(&["kiln", "build", "--option", "substituters", "", "x.nix"]).unwrap();
        let Command::Build(build) = cli.command else {
            panic!("not a build")
        };
        assert_eq!(build.subst.substituters, [""]);
    }
}
