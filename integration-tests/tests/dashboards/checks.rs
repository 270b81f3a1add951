//! The queries the dashboards test runs: each panel of the fixture with the
//! variables a user would pick, the labels a series must carry and what
//! its value must be, given the test's traffic.

const GATEWAY_SERVICE: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// A dashboard's variables as a user sets them.
pub(super) type Vars = &'static [(&'static str, &'static str)];

/// The Workload dashboard on the sidecar, its destination the gateway
/// (where the sidecar sends edition.cnn.com's HTTP).
const SLEEP_TO_GATEWAY: Vars = &[
    ("workload", "sleep"),
    ("namespace", "default"),
    ("qrep", "source"),
    ("dstsvc", GATEWAY_SERVICE),
];
/// The Workload dashboard on the sidecar, its destination the TLS service.
const SLEEP_TO_DROPBOX: Vars = &[
    ("workload", "sleep"),
    ("namespace", "default"),
    ("qrep", "source"),
    ("dstsvc", "api.dropbox.com"),
];
/// The Workload dashboard on the egress gateway.
const GATEWAY_TO_CNN: Vars = &[
    ("workload", "istio-egressgateway"),
    ("namespace", "istio-system"),
    ("qrep", "source"),
    ("dstsvc", "edition.cnn.com"),
];
/// The Workload dashboard on the egress gateway's inbound side, the
/// sidecar picked as its client.
const GATEWAY_INBOUND: Vars = &[
    ("workload", "istio-egressgateway"),
    ("namespace", "istio-system"),
    ("qrep", "source"),
    ("srcns", "default"),
    ("srcwl", "sleep"),
];
/// The Service dashboard on edition.cnn.com, as its clients report it.
const CNN_SERVICE: Vars = &[
    ("service", "edition.cnn.com"),
    ("qrep", "source"),
    ("srcns", "istio-system"),
];
/// The Service dashboard on api.dropbox.com.
const DROPBOX_SERVICE: Vars = &[("service", "api.dropbox.com"), ("qrep", "source")];

/// What a query's value must be, given the test's traffic.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    /// A rate, a latency or a size the traffic makes non-zero.
    Positive,
    /// A success rate: the traffic holds 503s, so above 0 and below 1.
    Fraction,
    /// Any number (the median size of empty request bodies).
    Finite,
}

/// One query of a dashboard as the test runs it: the panel (title and
/// refId), the variables, labels some series must carry, and its value.
pub(super) struct Check {
    pub(super) dashboard: &'static str,
    pub(super) panel: &'static str,
    pub(super) ref_id: &'static str,
    pub(super) vars: Vars,
    pub(super) labels: &'static [(&'static str, &'static str)],
    pub(super) value: Value,
}

const fn check(
    dashboard: &'static str,
    (panel, ref_id): (&'static str, &'static str),
    vars: Vars,
    labels: &'static [(&'static str, &'static str)],
    value: Value,
) -> Check {
    Check {
        dashboard,
        panel,
        ref_id,
        vars,
        labels,
        value,
    }
}

const MESH: &str = "Istio Mesh Dashboard";
const WORKLOAD: &str = "Istio Workload Dashboard";
const SERVICE: &str = "Istio Service Dashboard";
const CNN: &[(&str, &str)] = &[("destination_service", "edition.cnn.com")];
const DROPBOX: &[(&str, &str)] = &[("destination_service", "api.dropbox.com")];
const TO_GATEWAY: &[(&str, &str)] = &[("destination_service", GATEWAY_SERVICE)];
const FROM_SLEEP: &[(&str, &str)] = &[
    ("source_workload", "sleep"),
    ("source_workload_namespace", "default"),
];

use Value::{Finite, Fraction, Positive};

pub(super) const CHECKS: &[Check] = &[
    check(MESH, ("Traffic Volume", "A"), &[], &[], Positive),
    check(MESH, ("Success Rate", "A"), &[], &[], Fraction),
    check(MESH, ("4xxs", "A"), &[], &[], Positive),
    check(MESH, ("5xxs", "A"), &[], &[], Positive),
    check(
        MESH,
        ("HTTP/gRPC Workloads", "requests"),
        &[],
        CNN,
        Positive,
    ),
    check(
        MESH,
        ("HTTP/gRPC Workloads", "requests"),
        &[],
        TO_GATEWAY,
        Positive,
    ),
    check(MESH, ("HTTP/gRPC Workloads", "p50"), &[], &[], Positive),
    check(MESH, ("HTTP/gRPC Workloads", "p90"), &[], &[], Positive),
    check(MESH, ("HTTP/gRPC Workloads", "p99"), &[], &[], Positive),
    check(MESH, ("HTTP/gRPC Workloads", "success"), &[], &[], Fraction),
    check(MESH, ("TCP Workloads", "recv"), &[], DROPBOX, Positive),
    check(MESH, ("TCP Workloads", "sent"), &[], DROPBOX, Positive),
    check(
        WORKLOAD,
        ("Variable: workload", "query"),
        &[("namespace", "default")],
        &[("source_workload", "sleep")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: workload", "query"),
        &[("namespace", "istio-system")],
        &[("source_workload", "istio-egressgateway")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: workload", "query"),
        &[("namespace", "istio-system")],
        &[("destination_workload", "istio-egressgateway")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: namespace", "query"),
        &[],
        &[("destination_workload_namespace", "istio-system")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: srcns", "query"),
        GATEWAY_INBOUND,
        &[("source_workload_namespace", "default")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: srcwl", "query"),
        GATEWAY_INBOUND,
        &[("source_workload", "sleep")],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Request Volume", "A"),
        GATEWAY_INBOUND,
        &[],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Success Rate (non-5xx responses)", "A"),
        GATEWAY_INBOUND,
        &[],
        Fraction,
    ),
    check(
        WORKLOAD,
        ("Request Duration", "A"),
        GATEWAY_INBOUND,
        &[],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Requests By Source And Response Code", "B"),
        GATEWAY_INBOUND,
        &[
            ("source_workload", "sleep"),
            ("source_workload_namespace", "default"),
            ("response_code", "503"),
        ],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Success Rate (non-5xx responses) By Source", "B"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Fraction,
    ),
    check(
        WORKLOAD,
        ("Incoming Request Duration By Source", "E"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Incoming Request Size By Source", "E"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Finite,
    ),
    check(
        WORKLOAD,
        ("Response Size By Source", "E"),
        GATEWAY_INBOUND,
        FROM_SLEEP,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: dstsvc", "query"),
        SLEEP_TO_GATEWAY,
        TO_GATEWAY,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: dstsvc", "query"),
        SLEEP_TO_DROPBOX,
        DROPBOX,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Variable: dstsvc", "query"),
        GATEWAY_TO_CNN,
        CNN,
        Positive,
    ),
    check(
        WORKLOAD,
        ("TCP Client Traffic", "A"),
        SLEEP_TO_DROPBOX,
        &[],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Outgoing Requests By Destination And Response Code", "B"),
        SLEEP_TO_GATEWAY,
        &[
            ("destination_service", GATEWAY_SERVICE),
            ("response_code", "503"),
        ],
        Positive,
    ),
    check(
        WORKLOAD,
        ("Outgoing Requests By Destination And Response Code", "B"),
        GATEWAY_TO_CNN,
        &[
            ("destination_service", "edition.cnn.com"),
            ("response_code", "200"),
        ],
        Positive,
    ),
    check(
        WORKLOAD,
        (
            "Outgoing Success Rate (non-5xx responses) By Destination",
            "B",
        ),
        GATEWAY_TO_CNN,
        CNN,
        Fraction,
    ),
    check(
        WORKLOAD,
        ("Outgoing Request Duration By Destination", "E"),
        SLEEP_TO_GATEWAY,
        TO_GATEWAY,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Outgoing Request Size By Destination", "E"),
        GATEWAY_TO_CNN,
        CNN,
        Finite,
    ),
    check(
        WORKLOAD,
        ("Response Size By Destination", "E"),
        GATEWAY_TO_CNN,
        CNN,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Bytes Sent on Outgoing TCP Connection", "B"),
        SLEEP_TO_DROPBOX,
        DROPBOX,
        Positive,
    ),
    check(
        WORKLOAD,
        ("Bytes Received from Outgoing TCP Connection", "B"),
        SLEEP_TO_DROPBOX,
        DROPBOX,
        Positive,
    ),
    check(SERVICE, ("Variable: service", "query"), &[], CNN, Positive),
    check(
        SERVICE,
        ("Variable: service", "query"),
        &[],
        DROPBOX,
        Positive,
    ),
    check(
        SERVICE,
        ("Variable: srcwl", "query"),
        CNN_SERVICE,
        &[("source_workload", "istio-egressgateway")],
        Positive,
    ),
    check(
        SERVICE,
        ("Client Request Volume", "A"),
        CNN_SERVICE,
        &[],
        Positive,
    ),
    check(
        SERVICE,
        ("Client Success Rate (non-5xx responses)", "A"),
        CNN_SERVICE,
        &[],
        Fraction,
    ),
    check(
        SERVICE,
        ("Client Request Duration", "A"),
        CNN_SERVICE,
        &[],
        Positive,
    ),
    check(
        SERVICE,
        ("TCP Received Bytes", "A"),
        DROPBOX_SERVICE,
        &[],
        Positive,
    ),
];
