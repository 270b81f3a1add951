//! WorkloadGroup: the metadata and WorkloadEntry template of a group of workloads.

use serde::Deserialize;

use super::{Labels, WorkloadEntry};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadGroup {
    #[serde(default)]
    pub metadata: WorkloadGroupMeta,
    /// The WorkloadEntry each member gets; its `address` comes from the
    /// member, so the template leaves it empty.
    pub template: Option<WorkloadEntry>,
}

/// The labels every member of the group carries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadGroupMeta {
    #[serde(default)]
    pub labels: Labels,
}

impl WorkloadGroup {
    /// The labels of a member, as Istio builds its WorkloadEntry: the
    /// template's labels, overridden by the group's `metadata.labels`.
    pub fn member_labels(&self) -> Labels {
        let mut labels = self
            .template
            .as_ref()
            .map(|template| template.labels.clone())
            .unwrap_or_default();
        labels.extend(
            self.metadata
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        labels
    }

    /// The service account its members run as (`template.serviceAccount`).
    pub fn service_account(&self) -> &str {
        self.template
            .as_ref()
            .map_or("", |template| template.service_account.as_str())
    }
}
