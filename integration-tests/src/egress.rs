//! The egress inventory as a user drives it: a MeshConfig that turns on
//! Envoy's access log service (`enableEnvoyAccessLogService`), the root
//! `Sidecar` that puts the mesh in REGISTRY_ONLY (or its dry run, with the
//! `istio.io/dry-run` annotation), and the commands that read the state a
//! running `control-plane serve --state-dir DIR` keeps:
//! `control-plane egress list --state-dir DIR [--namespace NS]
//! [--unregistered]` and `control-plane egress suggest --state-dir DIR
//! [--namespace NS]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize as _;

use crate::binaries;
use crate::control_plane::ConfigDir;
use crate::process::{self, CommandOutput};

/// How long one `egress` command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The mesh file's name in its directory.
const MESH_FILE: &str = "mesh.yaml";

/// A MeshConfig with outbound `mode` (`ALLOW_ANY` or `REGISTRY_ONLY`) and
/// Envoy's gRPC access log service turned on, as Istio's field spells it.
pub fn mesh_config_with_access_log_service(mode: &str) -> String {
    format!(
        "# MeshConfig: proxies stream their access logs to the control plane.\n\
         enableEnvoyAccessLogService: true\n\
         outboundTrafficPolicy:\n  mode: {mode}\n"
    )
}

/// Writes [`mesh_config_with_access_log_service`] into `dir` (atomically,
/// for a watching control plane); returns the file's path.
pub fn write_mesh_config(dir: &ConfigDir, mode: &str) -> Result<PathBuf> {
    dir.write(MESH_FILE, &mesh_config_with_access_log_service(mode))
}

/// Istio's root `Sidecar` (in `istio-system`, no workloadSelector: every
/// proxy of the mesh) with REGISTRY_ONLY; with `dry_run`, annotated
/// `istio.io/dry-run: "true"`, so unregistered traffic still goes out and
/// is marked `would_block`.
pub fn root_registry_only_sidecar(dry_run: bool) -> String {
    let annotations = if dry_run {
        "  annotations:\n    istio.io/dry-run: \"true\"\n"
    } else {
        ""
    };
    format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: Sidecar\n\
         metadata:\n  name: default\n  namespace: istio-system\n{annotations}\
         spec:\n  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n"
    )
}

/// `control-plane egress list --state-dir DIR [--namespace NS]
/// [--unregistered]`.
pub fn list(
    state_dir: &Path,
    namespace: Option<&str>,
    unregistered: bool,
) -> Result<CommandOutput> {
    let mut command = egress_command("list", state_dir, namespace)?;
    if unregistered {
        command.arg("--unregistered");
    }
    process::run("control-plane-egress-list", command, COMMAND_TIMEOUT)
}

/// `control-plane egress suggest --state-dir DIR [--namespace NS]`: the
/// ServiceEntry YAML on stdout.
pub fn suggest(state_dir: &Path, namespace: Option<&str>) -> Result<CommandOutput> {
    let command = egress_command("suggest", state_dir, namespace)?;
    process::run("control-plane-egress-suggest", command, COMMAND_TIMEOUT)
}

fn egress_command(verb: &str, state_dir: &Path, namespace: Option<&str>) -> Result<Command> {
    let mut command = Command::new(binaries::control_plane()?);
    command.args(["egress", verb, "--state-dir"]).arg(state_dir);
    if let Some(namespace) = namespace {
        command.args(["--namespace", namespace]);
    }
    Ok(command)
}

/// `egress list`'s table, one map per row from the header's column names
/// (`DESTINATION`, `PROTOCOL`, `DECISION`, `COUNT`, ..) to the row's cells.
/// The columns are aligned, and names are separated by at least two
/// spaces (a name may hold one: `HANDLED BY`).
pub fn parse_table(table: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = table.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns = columns(header);
    lines
        .map(|line| {
            columns
                .iter()
                .enumerate()
                .map(|(index, (start, name))| {
                    let end = columns.get(index + 1).map_or(line.len(), |next| next.0);
                    let cell = line.get(*start..end.min(line.len())).unwrap_or_default();
                    (name.clone(), cell.trim().to_string())
                })
                .collect()
        })
        .collect()
}

/// Where each column of `header` starts, and its name.
fn columns(header: &str) -> Vec<(usize, String)> {
    let mut starts: Vec<usize> = Vec::new();
    let bytes = header.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        let after_gap = index == 0 || (index >= 2 && bytes[index - 2..index] == *b"  ");
        if *byte != b' ' && after_gap {
            starts.push(index);
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(index, start)| {
            let end = starts.get(index + 1).copied().unwrap_or(header.len());
            (*start, header[*start..end].trim().to_string())
        })
        .collect()
}

/// How many YAML documents of `yaml` are of kind `kind`.
pub fn count_kind(yaml: &str, kind: &str) -> Result<usize> {
    let mut count = 0;
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(document).context("parsing suggested YAML")?;
        if value.get("kind").and_then(serde_yaml::Value::as_str) == Some(kind) {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dry_run_is_the_annotation_on_the_root_sidecar() {
        let dry_run: serde_yaml::Value =
            serde_yaml::from_str(&root_registry_only_sidecar(true)).unwrap();
        assert_eq!(dry_run["metadata"]["namespace"], "istio-system");
        assert_eq!(
            dry_run["metadata"]["annotations"]["istio.io/dry-run"], "true",
            "Istio's annotation value is the string \"true\""
        );
        assert_eq!(
            dry_run["spec"]["outboundTrafficPolicy"]["mode"],
            "REGISTRY_ONLY"
        );
        assert!(dry_run["spec"].get("workloadSelector").is_none());
        let enforced: serde_yaml::Value =
            serde_yaml::from_str(&root_registry_only_sidecar(false)).unwrap();
        assert!(enforced["metadata"].get("annotations").is_none());
        assert_eq!(enforced["metadata"]["name"], dry_run["metadata"]["name"]);
    }

    #[test]
    fn the_mesh_config_turns_on_the_access_log_service() {
        let mesh: serde_yaml::Value =
            serde_yaml::from_str(&mesh_config_with_access_log_service("ALLOW_ANY")).unwrap();
        assert_eq!(mesh["enableEnvoyAccessLogService"], true);
        assert_eq!(mesh["outboundTrafficPolicy"]["mode"], "ALLOW_ANY");
    }

    #[test]
    fn the_table_is_read_by_its_header() {
        let table = "NAMESPACE  DESTINATION      PORT  PROTOCOL  HANDLED BY          DECISION     COUNT\n\
                     default    httpbin.org      80    HTTP      PassthroughCluster  would_block  2\n\
                     default    198.18.0.1       5432  TCP       BlackHoleCluster    blocked      1\n";
        let rows = parse_table(table);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["DESTINATION"], "httpbin.org");
        assert_eq!(rows[0]["HANDLED BY"], "PassthroughCluster");
        assert_eq!(rows[0]["DECISION"], "would_block");
        assert_eq!(rows[0]["COUNT"], "2");
        assert_eq!(rows[1]["PORT"], "5432");
        assert_eq!(rows[1]["PROTOCOL"], "TCP");
        assert!(parse_table("").is_empty());
    }

    #[test]
    fn counts_documents_by_kind() {
        let yaml = "kind: ServiceEntry\n---\nkind: Sidecar\n---\nkind: ServiceEntry\n";
        assert_eq!(count_kind(yaml, "ServiceEntry").unwrap(), 2);
        assert!(count_kind("kind: [", "ServiceEntry").is_err());
    }
}
