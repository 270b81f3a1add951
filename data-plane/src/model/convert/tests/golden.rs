//! Everything the control plane emits converts: every resource of every
//! golden file under control-plane/tests/golden (proto JSON, as translated
//! for each walkthrough step, sidecar and gateway).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::secret::SecretSources;
use crate::model::{
    cluster_from_proto, listener_from_proto, load_assignment_from_proto, route_config_from_proto,
};

pub(super) fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../control-plane/tests/golden")
}

pub(super) fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
}

/// The resources of `key` in a golden file, decoded as `type_name`.
pub(super) fn resources<M: prost::Message + Default>(
    golden: &Value,
    key: &str,
    type_name: &str,
) -> Vec<M> {
    golden[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a list"))
        .iter()
        .map(|json| {
            proto::from_json(type_name, json).unwrap_or_else(|e| panic!("{key}: {e}: {json}"))
        })
        .collect()
}

#[test]
fn every_resource_the_control_plane_emits_converts() {
    let mut files = Vec::new();
    json_files(&golden_dir(), &mut files);
    assert!(
        files.len() >= 27,
        "expected the golden files of every step, found {files:?}"
    );
    let secrets = SecretSources::default();
    let mut converted = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let golden: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        for c in resources(&golden, "clusters", "envoy.config.cluster.v3.Cluster") {
            cluster_from_proto(&c, &secrets).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            converted += 1;
        }
        for la in resources(
            &golden,
            "endpoints",
            "envoy.config.endpoint.v3.ClusterLoadAssignment",
        ) {
            load_assignment_from_proto(&la).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            converted += 1;
        }
        for l in resources(&golden, "listeners", "envoy.config.listener.v3.Listener") {
            listener_from_proto(&l, &secrets).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            converted += 1;
        }
        for rc in resources(
            &golden,
            "routes",
            "envoy.config.route.v3.RouteConfiguration",
        ) {
            route_config_from_proto(&rc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            converted += 1;
        }
    }
    assert!(
        converted > files.len(),
        "only {converted} resources converted"
    );
}
