//! The status conditions Istio writes on Gateway API objects, kept here
//! since there is no API server to write them to: printed as a table or as
//! the `status` stanzas Kubernetes would store.

use serde::Serialize;

use super::{CONTROLLER_NAME, GROUP, ParentReference};
use crate::config::Origin;

/// One condition (`type`, `status`, `reason`, `message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(serialize_with = "true_false")]
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn ok(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: true,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn failed(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status: false,
            ..Self::ok(kind, reason, message)
        }
    }
}

fn true_false<S: serde::Serializer>(status: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if *status { "True" } else { "False" })
}

/// A listener's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    pub attached_routes: u32,
    pub supported_kinds: Vec<RouteKind>,
    pub conditions: Vec<Condition>,
}

/// A route kind a listener accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteKind {
    pub group: &'static str,
    pub kind: &'static str,
}

/// A route's status for one of its `parentRefs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentStatus {
    pub parent_ref: ParentRefStatus,
    pub controller_name: &'static str,
    pub conditions: Vec<Condition>,
}

/// A `parentRef` as the status names it: group, kind and namespace filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRefStatus {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

impl ParentRefStatus {
    pub fn new(parent: &ParentReference, route_namespace: &str) -> Self {
        let (group, kind) = parent.group_kind();
        Self {
            group: group.to_string(),
            kind: kind.to_string(),
            name: parent.name.clone(),
            namespace: parent
                .namespace
                .clone()
                .unwrap_or_else(|| route_namespace.to_string()),
            section_name: parent.section_name.clone(),
            port: parent.port,
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}/{}", self.kind, self.namespace, self.name);
        if let Some(section) = &self.section_name {
            text.push_str(&format!(" listener {section}"));
        }
        if let Some(port) = self.port {
            text.push_str(&format!(" port {port}"));
        }
        text
    }
}

/// What a status holds, by kind of object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StatusBody {
    Gateway {
        conditions: Vec<Condition>,
        listeners: Vec<ListenerStatus>,
    },
    Route {
        parents: Vec<ParentStatus>,
    },
}

/// The status of one Gateway API object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStatus {
    /// `Gateway`, `HTTPRoute`, `TLSRoute` or `TCPRoute`.
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
    pub body: StatusBody,
}

impl ObjectStatus {
    /// `(subject, condition)` for every condition, as the table lists them.
    fn rows(&self) -> Vec<(String, &Condition)> {
        match &self.body {
            StatusBody::Gateway {
                conditions,
                listeners,
            } => {
                let own = conditions.iter().map(|c| (String::new(), c));
                let listeners = listeners.iter().flat_map(|listener| {
                    listener
                        .conditions
                        .iter()
                        .map(|c| (format!("listener {}", listener.name), c))
                });
                own.chain(listeners).collect()
            }
            StatusBody::Route { parents } => parents
                .iter()
                .flat_map(|parent| {
                    let subject = parent.parent_ref.describe();
                    parent.conditions.iter().map(move |c| (subject.clone(), c))
                })
                .collect(),
        }
    }

    /// Whether every condition holds.
    pub fn healthy(&self) -> bool {
        self.rows().iter().all(|(_, condition)| condition.status)
    }
}

/// The statuses as a table: one row per condition.
pub fn table(statuses: &[ObjectStatus]) -> Vec<[String; 7]> {
    statuses
        .iter()
        .flat_map(|status| {
            status.rows().into_iter().map(|(subject, condition)| {
                [
                    status.kind.to_string(),
                    format!("{}/{}", status.namespace, status.name),
                    subject,
                    condition.kind.to_string(),
                    if condition.status { "True" } else { "False" }.to_string(),
                    condition.reason.clone(),
                    condition.message.clone(),
                ]
            })
        })
        .collect()
}

/// The columns of [`table`].
pub const TABLE_HEADER: [&str; 7] = [
    "KIND", "NAME", "PARENT", "TYPE", "STATUS", "REASON", "MESSAGE",
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredObject<'a> {
    api_version: String,
    kind: &'static str,
    metadata: StoredMeta<'a>,
    status: &'a StatusBody,
}

#[derive(Serialize)]
struct StoredMeta<'a> {
    name: &'a str,
    namespace: &'a str,
}

/// The statuses as YAML documents, each object with its `status` stanza as
/// Kubernetes would store it.
pub fn to_yaml(statuses: &[ObjectStatus]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for status in statuses {
        let object = StoredObject {
            api_version: format!("{GROUP}/{}", status.api_version),
            kind: status.kind,
            metadata: StoredMeta {
                name: &status.name,
                namespace: &status.namespace,
            },
            status: &status.body,
        };
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object)?);
    }
    Ok(out)
}

impl ParentStatus {
    pub fn new(parent_ref: ParentRefStatus, conditions: Vec<Condition>) -> Self {
        Self {
            parent_ref,
            controller_name: CONTROLLER_NAME,
            conditions,
        }
    }
}
