//! The script runner: `scripts/control-plane.sh` and `scripts/image.sh` run as child
//! processes, and what they print read back (`env`'s `export` lines).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::{Error, Result};

pub(super) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    repo_root().join("scripts/control-plane.sh")
}

pub(super) fn run_script(verb: &'static str, envs: &[(&str, String)]) -> Result<String> {
    run_script_with(verb, &[], envs)
}

pub(super) fn run_script_with(
    verb: &'static str,
    args: &[&str],
    envs: &[(&str, String)],
) -> Result<String> {
    let output = Command::new(script())
        .arg(verb)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: script().display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Script {
            verb,
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The exit status of `control-plane.sh build` when Go is missing: the only case tests skip.
pub(super) const EXIT_NO_GO: i32 = 3;
/// The exit status of `control-plane.sh up --node` when this machine cannot run a node.
pub(super) const EXIT_NO_NODE: i32 = 4;

/// Builds the binaries once per test process (seconds when Go's caches are warm).
pub fn ensure_built() -> Result<()> {
    static BUILT: OnceLock<Result<(), (bool, String)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            run_script("build", &[]).map(drop).map_err(|error| {
                let no_go = matches!(&error, Error::Script { status, .. } if status.code() == Some(EXIT_NO_GO));
                (no_go, error.to_string())
            })
        })
        .clone()
        .map_err(|(no_go, message)| {
            if no_go {
                Error::Unavailable(message)
            } else {
                Error::Build(message)
            }
        })
}

/// The folder of the built binaries (kubectl, helm, prometheus-adapter, …), building them
/// first if needed: for tests that need a binary but no cluster.
pub fn binaries() -> Result<PathBuf> {
    ensure_built()?;
    Ok(PathBuf::from(run_script("bin-dir", &[])?.trim()))
}

/// `export KEY=value` lines → map; values are shell words (`'…'` quoted by the script).
pub(super) fn parse_env(text: &str) -> HashMap<&'static str, String> {
    const KEYS: [&str; 7] = [
        "KUBECONFIG",
        "KUBE_BIN",
        "KUBE_PKI",
        "KUBE_APISERVER",
        "KUBE_SERVICE_CIDR",
        "KUBE_CRDS",
        "KUBE_NODE",
    ];
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export ")?.split_once('='))
        .filter_map(|(key, value)| {
            let key = KEYS.into_iter().find(|known| *known == key)?;
            Some((key, shell_word(value)?))
        })
        .collect()
}

/// The value of one POSIX shell word made of `'…'` runs, `\x` escapes and plain characters
/// (what `scripts/control-plane.sh`'s `shell_quote` writes); `None` when a quote is left open.
fn shell_word(word: &str) -> Option<String> {
    let mut value = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(char) = chars.next() {
        match char {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    quoted => value.push(quoted),
                }
            },
            '\\' => value.push(chars.next()?),
            plain => value.push(plain),
        }
    }
    Some(value)
}

/// The ebb image archive (`target/image/ebb.oci.tar`), built once per test process by
/// `scripts/image.sh build` from the release binary (minutes the first time: a release build).
pub fn ebb_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let output = Command::new(repo_root().join("scripts/image.sh"))
                .arg("build")
                .stdin(Stdio::null())
                .output()
                .map_err(|error| format!("cannot run scripts/image.sh: {error}"))?;
            if !output.status.success() {
                return Err(format!(
                    "scripts/image.sh build ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(repo_root().join("target/image/ebb.oci.tar"))
        })
        .clone()
        .map_err(Error::Image)
}

/// The reference pods use for the ebb image (`scripts/image.sh name`).
pub fn ebb_image_name() -> Result<String> {
    let output = Command::new(repo_root().join("scripts/image.sh"))
        .arg("name")
        .output()
        .map_err(|source| Error::Spawn {
            program: "scripts/image.sh".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_are_parsed_and_unknown_keys_ignored() {
        let env = parse_env(
            "export KUBECONFIG=/a/kubeconfig\nexport KUBE_BIN=/b\nexport OTHER=x\nnoise\n",
        );
        assert_eq!(
            env.get("KUBECONFIG").map(String::as_str),
            Some("/a/kubeconfig")
        );
        assert_eq!(env.get("KUBE_BIN").map(String::as_str), Some("/b"));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn quoted_env_values_come_back_as_written() {
        let env = parse_env(
            "export KUBECONFIG='/tmp/a b/kubeconfig'\nexport KUBE_PKI='it'\\''s'\nexport KUBE_BIN='/open\n",
        );
        assert_eq!(
            env.get("KUBECONFIG").map(String::as_str),
            Some("/tmp/a b/kubeconfig")
        );
        assert_eq!(env.get("KUBE_PKI").map(String::as_str), Some("it's"));
        assert_eq!(env.get("KUBE_BIN"), None, "an open quote is no value");
    }
}
