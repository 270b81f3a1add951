//! The Gateway API conditions Istio would write that do not hold
//! (`Accepted`, `ResolvedRefs`, `Programmed` set to `False`): Istio reports
//! them in the objects' status, not as analysis messages, so they have no
//! code here.

use super::message::{Level, Message, Subject};
use crate::config::error::ResourceRef;
use crate::config::gateway_api::status::{Condition, ObjectStatus, StatusBody};

pub(super) fn analyze(statuses: &[ObjectStatus], out: &mut Vec<Message>) {
    for status in statuses {
        let failed = |scope: Option<String>, condition: &Condition| {
            let on = scope.map(|s| format!(" on {s}")).unwrap_or_default();
            let subject = Subject {
                resource: Some(ResourceRef {
                    kind: status.kind.to_string(),
                    namespace: status.namespace.clone(),
                    name: status.name.clone(),
                }),
                file: Some(status.origin.file.clone()),
                document: Some(status.origin.document),
                field: None,
                line: None,
            };
            Message::uncoded(
                Level::Warning,
                subject,
                format!(
                    "condition {} is False{on} ({}): {}",
                    condition.kind, condition.reason, condition.message
                ),
            )
        };
        match &status.body {
            StatusBody::Gateway {
                conditions,
                listeners,
            } => {
                for condition in conditions.iter().filter(|c| !c.status) {
                    out.push(failed(None, condition));
                }
                for listener in listeners {
                    for condition in listener.conditions.iter().filter(|c| !c.status) {
                        out.push(failed(
                            Some(format!("listener {}", listener.name)),
                            condition,
                        ));
                    }
                }
            }
            StatusBody::Route { parents } => {
                for parent in parents {
                    let reference = &parent.parent_ref;
                    let scope = format!(
                        "parent {} {}/{}",
                        reference.kind, reference.namespace, reference.name
                    );
                    for condition in parent.conditions.iter().filter(|c| !c.status) {
                        out.push(failed(Some(scope.clone()), condition));
                    }
                }
            }
        }
    }
}
