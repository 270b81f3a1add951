//! The config directory and mesh file the control plane watches, made to
//! hold one scenario's config at a time.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Scenario;
use crate::control_plane::ConfigDir;
use crate::fixtures::mesh_config;

/// The mesh file the control plane watches, in its own directory.
const MESH_FILE: &str = "mesh.yaml";

pub(super) struct ConfigFiles {
    config: ConfigDir,
    mesh: ConfigDir,
    files: BTreeSet<String>,
}

impl ConfigFiles {
    pub(super) fn new() -> Result<Self> {
        Ok(Self {
            config: ConfigDir::new()?,
            mesh: ConfigDir::new()?,
            files: BTreeSet::new(),
        })
    }

    pub(super) fn config_dir(&self) -> &Path {
        self.config.path()
    }

    pub(super) fn mesh_file(&self) -> PathBuf {
        self.mesh.path().join(MESH_FILE)
    }

    /// Makes the directory hold exactly `scenario`'s files (removing first,
    /// so no two versions of one resource are ever served at once).
    pub(super) fn apply(&mut self, scenario: &Scenario) -> Result<()> {
        let mesh = mesh_config(scenario.mesh);
        let mesh =
            fs::read_to_string(&mesh).with_context(|| format!("reading {}", mesh.display()))?;
        self.mesh.write(MESH_FILE, &mesh)?;
        let wanted: BTreeSet<String> = scenario
            .files
            .iter()
            .map(|(file, _)| file.to_string())
            .collect();
        for stale in self.files.difference(&wanted) {
            self.config.remove(stale)?;
        }
        for (file, yaml) in &scenario.files {
            self.config.write(file, yaml)?;
        }
        self.files = wanted;
        Ok(())
    }
}
