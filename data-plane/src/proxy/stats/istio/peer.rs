//! The labels of the peers: who reports (a sidecar or a gateway reports as
//! `source`) and the source workload from the node's pod, namespace,
//! labels and metadata, which every series of a proxy shares; the
//! principals on the upstream TLS connection; and the destination
//! workload, from the upstream host's `istio.workload` metadata (an
//! external service has none, and sends no peer metadata back).

use std::collections::BTreeMap;

use shared::workload::{DEFAULT_CLUSTER_ID, EndpointWorkload, LATEST_REVISION};

use super::escape_into;
use crate::upstream::Principals;

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
        let workload = shared::egress::workload_name(pod, labels);
        let (canonical_service, canonical_revision) =
            shared::workload::canonical_service(labels, workload);
        let label = |key: &str| labels.get(key).cloned().unwrap_or_else(|| UNKNOWN.into());
        Self {
            app: label("app"),
            version: label("version"),
            canonical_service: canonical_service.to_string(),
            canonical_revision: canonical_revision.to_string(),
            workload: workload.to_string(),
            namespace: namespace.to_string(),
            cluster: DEFAULT_CLUSTER_ID.into(),
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

    /// The labels every series starts with, rendered once: the reporter
    /// and the workload.
    pub(super) fn head_labels(&self) -> String {
        let mut out = String::from("reporter=\"source\"");
        for (name, value) in [
            ("source_workload", self.workload.as_str()),
            ("source_workload_namespace", &self.namespace),
        ] {
            out.push(',');
            write_label(&mut out, name, value);
        }
        out
    }

    /// The source labels after `source_principal`, rendered once.
    pub(super) fn tail_labels(&self) -> String {
        let fields = [
            ("source_app", self.app.as_str()),
            ("source_version", &self.version),
            ("source_cluster", &self.cluster),
            ("source_canonical_service", &self.canonical_service),
            ("source_canonical_revision", &self.canonical_revision),
        ];
        let mut out = String::new();
        write_labels(&mut out, fields);
        out
    }
}

/// Writes `source_principal`: the agent's certificate's URI SAN on the
/// upstream TLS connection, else `unknown` (egress traffic has none).
pub(super) fn write_source_principal(out: &mut String, principals: Option<&Principals>) {
    let local = principals.and_then(|principals| principals.local.as_deref());
    write_label(out, "source_principal", local.unwrap_or(UNKNOWN));
}

/// Writes the destination workload's labels as Istio's stats plugin sets
/// them on the client side, from the upstream host's `istio.workload`
/// metadata (`peer`) and the server's certificate on the TLS connection
/// (`principals`): a field they leave empty, or no peer, is `unknown`, but
/// the canonical revision, `latest`. The metadata carries no app or
/// version. The namespace is the server's SPIFFE id's, else the
/// workload's; it is also the service's (Istio's fallback when no cluster
/// metadata names the service's).
pub(super) fn write_destination_labels(
    out: &mut String,
    peer: Option<&EndpointWorkload>,
    principals: Option<&Principals>,
) {
    let field = |read: fn(&EndpointWorkload) -> &str, default| {
        peer.map(read)
            .filter(|value| !value.is_empty())
            .unwrap_or(default)
    };
    let namespace = principals
        .and_then(Principals::peer_namespace)
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| field(|peer| &peer.namespace, UNKNOWN));
    let principal = principals.and_then(|principals| principals.peer.as_deref());
    let fields = [
        ("destination_workload", field(|peer| &peer.name, UNKNOWN)),
        ("destination_workload_namespace", namespace),
        ("destination_principal", principal.unwrap_or(UNKNOWN)),
        ("destination_app", UNKNOWN),
        ("destination_version", UNKNOWN),
        ("destination_service_namespace", namespace),
        ("destination_cluster", field(|peer| &peer.cluster, UNKNOWN)),
        (
            "destination_canonical_service",
            field(|peer| &peer.canonical_service, UNKNOWN),
        ),
        (
            "destination_canonical_revision",
            field(|peer| &peer.canonical_revision, LATEST_REVISION),
        ),
        // A source reporter cannot tell the server's policy.
        ("connection_security_policy", UNKNOWN),
    ];
    write_labels(out, fields);
}

/// Writes `fields`, comma separated.
fn write_labels<'a>(out: &mut String, fields: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (index, (name, value)) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_label(out, name, value);
    }
}

/// Writes `name="value"`, the value escaped.
fn write_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

impl Default for SourceWorkload {
    fn default() -> Self {
        Self::of_pod(UNKNOWN, UNKNOWN, &BTreeMap::new())
    }
}
