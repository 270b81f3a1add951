//! The labels every series of a proxy shares: who reports (a sidecar or a
//! gateway reports as `source`), the source workload from the node's pod,
//! namespace, labels and metadata, and the destination peer fields an
//! external service never fills (no peer metadata comes back from it).

use std::collections::BTreeMap;

use super::escape_into;

/// Istio's default `CLUSTER_ID` (pilot-agent's `ISTIO_META_CLUSTER_ID`).
pub const DEFAULT_CLUSTER: &str = "Kubernetes";
const UNKNOWN: &str = "unknown";

/// The workload this proxy reports for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceWorkload {
    /// `source_workload`.
    pub workload: String,
    /// `source_workload_namespace`.
    pub namespace: String,
    /// `source_app`: the `app` label.
    pub app: String,
    /// `source_version`: the `version` label.
    pub version: String,
    /// `source_canonical_service`.
    pub canonical_service: String,
    /// `source_canonical_revision`.
    pub canonical_revision: String,
    /// `source_cluster`: the node's `CLUSTER_ID`.
    pub cluster: String,
}

impl SourceWorkload {
    /// The workload of pod `pod`, as Istio names it (see
    /// [`shared::egress::workload_name`]), with its app, version and
    /// canonical service from `labels` as Istio's stats plugin reads them.
    pub fn of_pod(pod: &str, namespace: &str, labels: &BTreeMap<String, String>) -> Self {
        let workload = shared::egress::workload_name(pod, labels).to_string();
        let label = |keys: &[&str]| keys.iter().find_map(|key| labels.get(*key)).cloned();
        Self {
            app: label(&["app"]).unwrap_or_else(|| UNKNOWN.into()),
            version: label(&["version"]).unwrap_or_else(|| UNKNOWN.into()),
            canonical_service: label(&[
                "service.istio.io/canonical-name",
                "app.kubernetes.io/name",
                "app",
            ])
            .unwrap_or_else(|| workload.clone()),
            canonical_revision: label(&[
                "service.istio.io/canonical-revision",
                "app.kubernetes.io/version",
                "version",
            ])
            .unwrap_or_else(|| "latest".into()),
            workload,
            namespace: namespace.to_string(),
            cluster: DEFAULT_CLUSTER.into(),
        }
    }

    /// Applies node metadata `WORKLOAD_NAME` (pilot-agent's
    /// `ISTIO_META_WORKLOAD_NAME`, which names the workload whatever the
    /// pod's name) and `CLUSTER_ID`.
    pub fn with_metadata(mut self, workload_name: Option<&str>, cluster_id: Option<&str>) -> Self {
        if let Some(name) = workload_name.filter(|name| !name.is_empty()) {
            if self.canonical_service == self.workload {
                self.canonical_service = name.to_string();
            }
            self.workload = name.to_string();
        }
        if let Some(cluster) = cluster_id.filter(|cluster| !cluster.is_empty()) {
            self.cluster = cluster.to_string();
        }
        self
    }

    /// The labels every series starts with, rendered once.
    pub(super) fn labels(&self) -> String {
        let mut out = String::from("reporter=\"source\"");
        let fields = [
            ("source_workload", self.workload.as_str()),
            ("source_workload_namespace", &self.namespace),
            // Set from the local certificate on a mutual TLS upstream
            // connection only; egress traffic has none.
            ("source_principal", UNKNOWN),
            ("source_app", &self.app),
            ("source_version", &self.version),
            ("source_cluster", &self.cluster),
            ("source_canonical_service", &self.canonical_service),
            ("source_canonical_revision", &self.canonical_revision),
            // An external service sends no peer metadata back.
            ("destination_workload", UNKNOWN),
            ("destination_workload_namespace", UNKNOWN),
            ("destination_principal", UNKNOWN),
            ("destination_app", UNKNOWN),
            ("destination_version", UNKNOWN),
            ("destination_service_namespace", UNKNOWN),
            ("destination_cluster", UNKNOWN),
            ("destination_canonical_service", UNKNOWN),
            ("destination_canonical_revision", UNKNOWN),
            // A source reporter cannot tell the server's policy.
            ("connection_security_policy", UNKNOWN),
        ];
        for (name, value) in fields {
            out.push(',');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(&mut out, value);
            out.push('"');
        }
        out
    }
}

impl Default for SourceWorkload {
    fn default() -> Self {
        Self::of_pod(UNKNOWN, UNKNOWN, &BTreeMap::new())
    }
}
