//! How Istio describes a workload to telemetry: its canonical service and
//! revision from its labels, and the `istio.workload` metadata istiod puts
//! on an endpoint (`name;namespace;canonical service;canonical revision;cluster`)
//! that a client proxy reads for its `destination_*` labels.

use std::collections::BTreeMap;

/// The field of `filter_metadata["istio"]` holding an endpoint's workload.
pub const ENDPOINT_WORKLOAD_FIELD: &str = "workload";
/// Istio's default cluster id (`CLUSTER_ID`, `ISTIO_META_CLUSTER_ID`).
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";
/// The canonical revision of a workload with no revision label.
pub const LATEST_REVISION: &str = "latest";

const CANONICAL_NAME_LABELS: [&str; 3] = [
    "service.istio.io/canonical-name",
    "app.kubernetes.io/name",
    "app",
];
const CANONICAL_REVISION_LABELS: [&str; 3] = [
    "service.istio.io/canonical-revision",
    "app.kubernetes.io/version",
    "version",
];

/// The canonical service and revision of `workload` with `labels`, as
/// Istio reads them: the first of `service.istio.io/canonical-name`,
/// `app.kubernetes.io/name`, `app`, else the workload's name; the first of
/// `service.istio.io/canonical-revision`, `app.kubernetes.io/version`,
/// `version`, else `latest`.
pub fn canonical_service<'a>(
    labels: &'a BTreeMap<String, String>,
    workload: &'a str,
) -> (&'a str, &'a str) {
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| labels.get(*key))
            .map(String::as_str)
    };
    (
        first(&CANONICAL_NAME_LABELS).unwrap_or(workload),
        first(&CANONICAL_REVISION_LABELS).unwrap_or(LATEST_REVISION),
    )
}

/// The workload behind an endpoint, as its `istio.workload` metadata
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointWorkload {
    pub name: String,
    pub namespace: String,
    pub canonical_service: String,
    /// Empty when it is `latest` (istiod does not send the default).
    pub canonical_revision: String,
    pub cluster: String,
}

impl EndpointWorkload {
    /// The workload `name` of `namespace` in `cluster`, with its canonical
    /// service and revision from `labels`.
    pub fn new(
        name: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        cluster: &str,
    ) -> Self {
        let (canonical_service, revision) = canonical_service(labels, name);
        Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            canonical_service: canonical_service.to_string(),
            canonical_revision: if revision == LATEST_REVISION {
                String::new()
            } else {
                revision.to_string()
            },
            cluster: cluster.to_string(),
        }
    }

    /// The metadata value, as istiod's `AppendLbEndpointMetadata` writes it.
    pub fn encode(&self) -> String {
        [
            self.name.as_str(),
            &self.namespace,
            &self.canonical_service,
            &self.canonical_revision,
            &self.cluster,
        ]
        .join(";")
    }

    /// Reads a metadata value as Istio's stats plugin does: at least five
    /// `;`-separated parts (more are ignored), else nothing.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let mut next = || parts.next().map(str::to_string);
        let workload = Self {
            name: next()?,
            namespace: next()?,
            canonical_service: next()?,
            canonical_revision: next()?,
            cluster: next()?,
        };
        Some(workload)
    }
}

/// Labels of `(key, value)` pairs, for this crate's tests.
#[cfg(test)]
pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_labels_win_in_istios_order_and_default_to_the_workload_and_latest() {
        let all = labels(&[
            ("app", "a"),
            ("app.kubernetes.io/name", "k"),
            ("service.istio.io/canonical-name", "c"),
            ("version", "v1"),
            ("app.kubernetes.io/version", "k1"),
            ("service.istio.io/canonical-revision", "c1"),
        ]);
        assert_eq!(canonical_service(&all, "w"), ("c", "c1"));
        let app = labels(&[("app", "a"), ("version", "v1")]);
        assert_eq!(canonical_service(&app, "w"), ("a", "v1"));
        assert_eq!(canonical_service(&labels(&[]), "w"), ("w", "latest"));
    }

    #[test]
    fn the_encoding_is_istiods_with_latest_left_out() {
        let gateway = EndpointWorkload::new(
            "istio-egressgateway",
            "istio-system",
            &labels(&[("app", "istio-egressgateway"), ("istio", "egressgateway")]),
            DEFAULT_CLUSTER_ID,
        );
        assert_eq!(
            gateway.encode(),
            "istio-egressgateway;istio-system;istio-egressgateway;;Kubernetes"
        );
        let versioned = EndpointWorkload::new(
            "reviews-v2",
            "default",
            &labels(&[("app", "reviews"), ("version", "v2")]),
            "east",
        );
        assert_eq!(versioned.encode(), "reviews-v2;default;reviews;v2;east");
        assert_eq!(
            EndpointWorkload::parse(&versioned.encode()),
            Some(versioned)
        );
    }

    #[test]
    fn fewer_than_five_parts_is_no_workload_and_more_are_ignored() {
        assert_eq!(EndpointWorkload::parse("a;b;c;d"), None);
        assert_eq!(EndpointWorkload::parse(""), None);
        let parsed = EndpointWorkload::parse("a;b;c;;e;f").unwrap();
        assert_eq!(parsed.name, "a");
        assert_eq!(parsed.canonical_revision, "");
        assert_eq!(parsed.cluster, "e");
    }
}
