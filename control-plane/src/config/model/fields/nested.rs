//! Where each struct of the model sits in another ([`NESTED`]), and the
//! walk along an error's field path to the struct its last field belongs
//! to, which tells an unsupported Istio field from a misspelt one.

use super::{Fields, entry};

/// How a struct of the model holds another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    One,
    /// A list: the path names an item as `field[3]`.
    List,
    /// A map by name: the path names a value as `field.name`.
    Map,
}

/// Where each struct of the model sits in another: (parent, field, shape,
/// child). The roots are the resource kinds, whose specs are the structs
/// of the same name.
pub const NESTED: &[(&str, &str, Shape, &str)] = &[
    ("ServiceEntry", "ports", Shape::List, "ServicePort"),
    ("ServiceEntry", "endpoints", Shape::List, "WorkloadEntry"),
    (
        "ServiceEntry",
        "workloadSelector",
        Shape::One,
        "WorkloadSelector",
    ),
    ("VirtualService", "http", Shape::List, "HttpRoute"),
    ("VirtualService", "tls", Shape::List, "TlsRoute"),
    ("VirtualService", "tcp", Shape::List, "TcpRoute"),
    ("HttpRoute", "match", Shape::List, "HttpMatchRequest"),
    ("HttpRoute", "route", Shape::List, "HttpRouteDestination"),
    ("HttpRoute", "redirect", Shape::One, "HttpRedirect"),
    ("HttpRoute", "rewrite", Shape::One, "HttpRewrite"),
    ("HttpRoute", "retries", Shape::One, "HttpRetry"),
    ("HttpRoute", "headers", Shape::One, "Headers"),
    ("HttpRoute", "fault", Shape::One, "HttpFaultInjection"),
    ("HttpRoute", "mirror", Shape::One, "Destination"),
    ("HttpRoute", "mirrorPercentage", Shape::One, "Percent"),
    ("HttpRoute", "mirrors", Shape::List, "HttpMirrorPolicy"),
    ("HttpRoute", "corsPolicy", Shape::One, "CorsPolicy"),
    ("HttpFaultInjection", "delay", Shape::One, "FaultDelay"),
    ("HttpFaultInjection", "abort", Shape::One, "FaultAbort"),
    ("FaultDelay", "percentage", Shape::One, "Percent"),
    ("FaultAbort", "percentage", Shape::One, "Percent"),
    ("HttpMirrorPolicy", "destination", Shape::One, "Destination"),
    ("HttpMirrorPolicy", "percentage", Shape::One, "Percent"),
    (
        "CorsPolicy",
        "allowOrigins",
        Shape::List,
        "StringMatchFields",
    ),
    ("HttpMatchRequest", "uri", Shape::One, "StringMatchFields"),
    (
        "HttpMatchRequest",
        "scheme",
        Shape::One,
        "StringMatchFields",
    ),
    (
        "HttpMatchRequest",
        "method",
        Shape::One,
        "StringMatchFields",
    ),
    (
        "HttpMatchRequest",
        "authority",
        Shape::One,
        "StringMatchFields",
    ),
    (
        "HttpMatchRequest",
        "headers",
        Shape::Map,
        "StringMatchFields",
    ),
    (
        "HttpMatchRequest",
        "queryParams",
        Shape::Map,
        "StringMatchFields",
    ),
    (
        "HttpMatchRequest",
        "withoutHeaders",
        Shape::Map,
        "StringMatchFields",
    ),
    (
        "HttpRouteDestination",
        "destination",
        Shape::One,
        "Destination",
    ),
    ("HttpRouteDestination", "headers", Shape::One, "Headers"),
    ("Destination", "port", Shape::One, "PortSelector"),
    ("Headers", "request", Shape::One, "HeaderOperations"),
    ("Headers", "response", Shape::One, "HeaderOperations"),
    ("TlsRoute", "match", Shape::List, "TlsMatchAttributes"),
    ("TlsRoute", "route", Shape::List, "RouteDestination"),
    ("TcpRoute", "match", Shape::List, "L4MatchAttributes"),
    ("TcpRoute", "route", Shape::List, "RouteDestination"),
    ("RouteDestination", "destination", Shape::One, "Destination"),
    (
        "DestinationRule",
        "trafficPolicy",
        Shape::One,
        "TrafficPolicy",
    ),
    ("DestinationRule", "subsets", Shape::List, "Subset"),
    (
        "DestinationRule",
        "workloadSelector",
        Shape::One,
        "MatchLabelsSelector",
    ),
    ("Subset", "trafficPolicy", Shape::One, "TrafficPolicy"),
    (
        "TrafficPolicy",
        "loadBalancer",
        Shape::One,
        "LoadBalancerSettings",
    ),
    (
        "TrafficPolicy",
        "connectionPool",
        Shape::One,
        "ConnectionPoolSettings",
    ),
    ("TrafficPolicy", "tls", Shape::One, "ClientTlsSettings"),
    (
        "TrafficPolicy",
        "portLevelSettings",
        Shape::List,
        "PortTrafficPolicy",
    ),
    ("PortTrafficPolicy", "port", Shape::One, "PortSelector"),
    (
        "PortTrafficPolicy",
        "loadBalancer",
        Shape::One,
        "LoadBalancerSettings",
    ),
    (
        "PortTrafficPolicy",
        "connectionPool",
        Shape::One,
        "ConnectionPoolSettings",
    ),
    ("PortTrafficPolicy", "tls", Shape::One, "ClientTlsSettings"),
    (
        "TrafficPolicy",
        "outlierDetection",
        Shape::One,
        "OutlierDetection",
    ),
    (
        "PortTrafficPolicy",
        "outlierDetection",
        Shape::One,
        "OutlierDetection",
    ),
    (
        "LoadBalancerSettings",
        "consistentHash",
        Shape::One,
        "ConsistentHashLb",
    ),
    ("ConsistentHashLb", "httpCookie", Shape::One, "HttpCookie"),
    ("ConsistentHashLb", "ringHash", Shape::One, "RingHash"),
    ("ConsistentHashLb", "maglev", Shape::One, "Maglev"),
    ("ConnectionPoolSettings", "tcp", Shape::One, "TcpSettings"),
    ("TcpSettings", "tcpKeepalive", Shape::One, "TcpKeepalive"),
    ("ConnectionPoolSettings", "http", Shape::One, "HttpSettings"),
    ("Gateway", "servers", Shape::List, "Server"),
    ("Server", "port", Shape::One, "ServicePort"),
    ("Server", "tls", Shape::One, "ServerTlsSettings"),
    (
        "Sidecar",
        "workloadSelector",
        Shape::One,
        "WorkloadSelector",
    ),
    ("Sidecar", "egress", Shape::List, "IstioEgressListener"),
    (
        "Sidecar",
        "outboundTrafficPolicy",
        Shape::One,
        "OutboundTrafficPolicy",
    ),
    ("WorkloadGroup", "metadata", Shape::One, "WorkloadGroupMeta"),
    ("WorkloadGroup", "template", Shape::One, "WorkloadEntry"),
];

/// The struct that holds the last field of `path` (as
/// `serde_path_to_error` writes it, e.g. `spec.http[0].retries.backoff`)
/// in a resource of `kind`; `None` when the path leaves the model.
pub fn struct_at(kind: &str, path: &str) -> Option<&'static Fields> {
    let mut segments = path
        .split('.')
        .map(|segment| segment.split_once('[').map_or(segment, |(field, _)| field));
    if segments.next() != Some("spec") {
        return None;
    }
    let mut segments: Vec<&str> = segments.collect();
    segments.pop()?;
    let mut current = entry(kind)?.name;
    let mut in_map = false;
    for segment in segments {
        if std::mem::take(&mut in_map) {
            continue;
        }
        let (_, _, shape, child) = NESTED
            .iter()
            .find(|(parent, field, _, _)| *parent == current && *field == segment)?;
        current = child;
        in_map = *shape == Shape::Map;
    }
    if in_map {
        return None;
    }
    entry(current)
}

/// Whether the last field of `path`, in a resource of `kind`, is a valid
/// Istio field this control plane does not support.
pub fn is_not_supported(kind: &str, path: &str) -> bool {
    let Some(field) = path.rsplit('.').next() else {
        return false;
    };
    struct_at(kind, path).is_some_and(|fields| fields.not_supported.contains(&field))
}
