//! This run's files (the Redis `ebb up` starts, replica logs): a private temporary folder,
//! removed when `ebb up` ends. A run that was killed cannot remove its own; the next run sweeps
//! those whose process is gone.

use std::path::Path;

use tempfile::TempDir;

use crate::error::{Error, Result};

/// Names start with this, then the owner's pid and a `-`: what the sweep goes by.
const RUN_DIR_PREFIX: &str = "ebb-up-";

pub struct RunDir(TempDir);

impl RunDir {
    /// A new private folder (mode 0700, a name nobody can guess and take first).
    pub fn create() -> Result<Self> {
        sweep_abandoned_run_dirs();
        tempfile::Builder::new()
            .prefix(&format!("{RUN_DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map(RunDir)
            .map_err(|source| Error::Io {
                what: format!(
                    "creating a run folder in {}",
                    tempfile::env::temp_dir().display()
                ),
                source,
            })
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

fn sweep_abandoned_run_dirs() {
    let Ok(entries) = std::fs::read_dir(tempfile::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(RUN_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
