//! The frozen QueueScaler fixtures of one CRD version, their SHA-256 list, and the
//! expectations committed beside them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the fixtures of `version` live.
pub fn directory(version: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/crd-compat")
        .join(version)
}

/// One fixture: a QueueScaler that was valid under the CRD when it was committed.
pub struct Fixture {
    /// The file's name without `.yaml`, also the object's `metadata.name`.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    pub object: serde_json::Value,
}

impl Fixture {
    /// The expectation file `<name>.<suffix>` beside the fixture.
    pub fn expectation(&self, suffix: &str) -> PathBuf {
        self.path.with_file_name(format!("{}.{suffix}", self.name))
    }
}

/// Every `*.yaml` of `version`, by name; panics naming an unreadable or misnamed file.
pub fn load(version: &str) -> Vec<Fixture> {
    let directory = directory(version);
    let mut fixtures: Vec<Fixture> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let object: serde_json::Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|error| panic!("{}: not YAML: {error}", path.display()));
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                object["metadata"]["name"].as_str(),
                Some(name.as_str()),
                "{}: metadata.name must be the file's name",
                path.display()
            );
            Fixture {
                name,
                path,
                text,
                object,
            }
        })
        .collect();
    assert!(
        !fixtures.is_empty(),
        "no fixtures in {}",
        directory.display()
    );
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    fixtures
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `SHA256SUMS` of `version` (`sha256sum`'s format: `<hex>  <file>`), by file name.
pub fn frozen_sums(version: &str) -> BTreeMap<String, String> {
    let path = directory(version).join("SHA256SUMS");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (sum, file) = line.split_once("  ").unwrap_or_else(|| {
                panic!("{}: {line:?} is not `<sha256>  <file>`", path.display())
            });
            (file.to_owned(), sum.to_owned())
        })
        .collect()
}

/// What an expectation check found: nothing, or why it failed.
pub enum Checked {
    Same,
    Written,
    Failed(String),
}

/// Compares `actual` with the committed expectation `path`. A missing expectation is written
/// only with `EBB_WRITE_MISSING_EXPECTATIONS=1` outside CI, so that a new fixture's
/// expectation is reviewed in its commit and never appears silently in a CI run; an existing
/// one is never rewritten.
pub fn check_expectation(path: &Path, actual: &str) -> Checked {
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => Checked::Same,
        Ok(expected) => Checked::Failed(format!(
            "{} differs: an object valid before now reads differently.\n--- expected\n{expected}\n--- now\n{actual}",
            path.display()
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let allowed = std::env::var("EBB_WRITE_MISSING_EXPECTATIONS").as_deref() == Ok("1")
                && std::env::var_os("CI").is_none();
            if !allowed {
                return Checked::Failed(format!(
                    "{} is missing: write it with EBB_WRITE_MISSING_EXPECTATIONS=1 (not under CI), review it and commit it. It would be:\n{actual}",
                    path.display()
                ));
            }
            std::fs::write(path, actual)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            Checked::Written
        }
        Err(error) => Checked::Failed(format!("{}: {error}", path.display())),
    }
}
