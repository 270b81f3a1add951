//! The config directory and mesh file the control plane watches, made to
//! hold one scenario's config at a time (this table's, or the traffic
//! policy table's).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Scenario;
use crate::control_plane::ConfigDir;
use crate::fixtures::mesh_config;

/// The mesh file the control plane watches, in its own directory.
const MESH_FILE: &str = "mesh.yaml";

pub(crate) struct ConfigFiles {
    config: ConfigDir,
    mesh: ConfigDir,
    files: BTreeSet<String>,
}

impl ConfigFiles {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            config: ConfigDir::new()?,
            mesh: ConfigDir::new()?,
            files: BTreeSet::new(),
        })
    }

    pub(crate) fn config_dir(&self) -> &Path {
        self.config.path()
    }

    pub(crate) fn mesh_file(&self) -> PathBuf {
        self.mesh.path().join(MESH_FILE)
    }

    /// Makes the directory hold exactly `scenario`'s files (removing first,
    /// so no two versions of one resource are ever served at once).
    pub(crate) fn apply(&mut self, scenario: &Scenario) -> Result<()> {
        self.apply_files(scenario.mesh, &scenario.files)
    }

    /// Makes the mesh file `examples/mesh-config/<mesh>.yaml` and the
    /// directory hold exactly `files` (name, YAML), removing first.
    pub(crate) fn apply_files(&mut self, mesh: &str, files: &[(&str, String)]) -> Result<()> {
        let mesh = mesh_config(mesh);
        let mesh =
            fs::read_to_string(&mesh).with_context(|| format!("reading {}", mesh.display()))?;
        self.mesh.write(MESH_FILE, &mesh)?;
        let wanted: BTreeSet<String> = files.iter().map(|(file, _)| file.to_string()).collect();
        for stale in self.files.difference(&wanted) {
            self.config.remove(stale)?;
        }
        for (file, yaml) in files {
            self.config.write(file, yaml)?;
        }
        self.files = wanted;
        Ok(())
    }
}
