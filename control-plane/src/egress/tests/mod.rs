//! Unit tests of the egress inventory: records and bounds, the decision and handler, the file, the table and the suggestions.

mod file;
mod handling;
mod inventory;
mod suggest;
mod table;

use std::sync::Arc;

use super::{Decision, Destination, Limits, Observation, Protocol, SourceWorkload};

/// The default limits with at most `records` destination records.
fn limits(records: usize) -> Limits {
    Limits {
        records,
        ..Limits::default()
    }
}

/// `namespace`'s workload labelled `app: <app>`, service account `app`.
fn source(namespace: &str, app: &str) -> SourceWorkload {
    SourceWorkload::of_pod(
        namespace,
        app,
        app,
        [("app".to_string(), app.to_string())].into(),
    )
}

fn destination(host: &str, port: u16, protocol: Protocol) -> Destination {
    Destination {
        host: host.to_string(),
        port,
        protocol,
    }
}

/// One request or connection from `source` to `destination` at `at`,
/// handled by `handled_by`: 100 bytes in, 1000 out, HTTP 200 for HTTP.
fn observation(
    source: &SourceWorkload,
    destination: Destination,
    handled_by: &str,
    decision: Decision,
    at: u64,
) -> Observation {
    Observation {
        response_code: (destination.protocol == Protocol::Http).then_some(200),
        source: Arc::new(source.clone()),
        destination,
        handled_by: handled_by.to_string(),
        decision,
        received_bytes: 100,
        sent_bytes: 1000,
        at,
    }
}
