//! Every field of every struct of the model, as Istio's API names it: the
//! ones this control plane applies, and the valid Istio fields it does not
//! (rejected as "not supported", never accepted and ignored). Loading uses
//! this table to tell a misspelt field from an unsupported one; a unit test
//! checks it against the model's structs.
//!
//! The Istio fields come from istio/api (`networking/v1alpha3/*.proto`,
//! `networking/v1beta1/workload_group.proto`, `type/v1beta1/selector.proto`).

/// The fields of one struct of the model (named as in the model).
#[derive(Debug)]
pub struct Fields {
    pub name: &'static str,
    /// Fields the model reads and translation applies.
    pub applied: &'static [&'static str],
    /// Valid Istio fields the model does not read.
    pub not_supported: &'static [&'static str],
}

const fn fields(
    name: &'static str,
    applied: &'static [&'static str],
    not_supported: &'static [&'static str],
) -> Fields {
    Fields {
        name,
        applied,
        not_supported,
    }
}

/// The table, one entry per struct of the model.
pub const FIELDS: &[Fields] = &[
    fields(
        "ServiceEntry",
        &[
            "hosts",
            "addresses",
            "ports",
            "location",
            "resolution",
            "endpoints",
            "workloadSelector",
            "exportTo",
            "subjectAltNames",
        ],
        &[],
    ),
    // A Gateway server's port too, where validation refuses targetPort
    // (deprecated in Istio, never applied to a server).
    fields(
        "ServicePort",
        &["number", "protocol", "name", "targetPort"],
        &[],
    ),
    fields("WorkloadSelector", &["labels"], &[]),
    fields(
        "WorkloadEntry",
        &["address", "ports", "labels", "weight", "serviceAccount"],
        &["network", "locality"],
    ),
    fields(
        "VirtualService",
        &["hosts", "gateways", "http", "tls", "tcp", "exportTo"],
        &[],
    ),
    fields(
        "HttpRoute",
        &[
            "name",
            "match",
            "route",
            "redirect",
            "rewrite",
            "timeout",
            "retries",
            "headers",
            "fault",
            "mirror",
            "mirrorPercentage",
            "mirrorPercent",
            "mirrors",
            "corsPolicy",
        ],
        &["directResponse", "delegate"],
    ),
    fields("HttpFaultInjection", &["delay", "abort"], &[]),
    // Envoy's fault filter has no exponential delay; istiod drops it.
    fields(
        "FaultDelay",
        &["fixedDelay", "percentage", "percent"],
        &["exponentialDelay"],
    ),
    // Istio's validation refuses HTTP/2 aborts.
    fields(
        "FaultAbort",
        &["httpStatus", "grpcStatus", "percentage"],
        &["http2Error"],
    ),
    fields("Percent", &["value"], &[]),
    fields("HttpMirrorPolicy", &["destination", "percentage"], &[]),
    fields(
        "CorsPolicy",
        &[
            "allowOrigin",
            "allowOrigins",
            "allowMethods",
            "allowHeaders",
            "exposeHeaders",
            "maxAge",
            "allowCredentials",
            "unmatchedPreflights",
        ],
        &[],
    ),
    fields(
        "HttpMatchRequest",
        &[
            "uri",
            "scheme",
            "method",
            "authority",
            "headers",
            "queryParams",
            "withoutHeaders",
            "port",
            "gateways",
            "ignoreUriCase",
            "name",
            "sourceLabels",
            "sourceNamespace",
        ],
        // Envoy's per-route stats are not kept by the agent.
        &["statPrefix"],
    ),
    fields("StringMatchFields", &["exact", "prefix", "regex"], &[]),
    fields(
        "HttpRouteDestination",
        &["destination", "weight", "headers"],
        &[],
    ),
    fields("Destination", &["host", "subset", "port"], &[]),
    fields("PortSelector", &["number"], &[]),
    fields(
        "HttpRedirect",
        &["uri", "authority", "port", "scheme", "redirectCode"],
        &["derivePort"],
    ),
    fields("HttpRewrite", &["uri", "authority"], &["uriRegexRewrite"]),
    fields(
        "HttpRetry",
        &[
            "attempts",
            "perTryTimeout",
            "retryOn",
            "retryRemoteLocalities",
            "retryIgnorePreviousHosts",
            "backoff",
        ],
        &[],
    ),
    fields("Headers", &["request", "response"], &[]),
    fields("HeaderOperations", &["set", "add", "remove"], &[]),
    fields("TlsRoute", &["match", "route"], &[]),
    fields(
        "TlsMatchAttributes",
        &[
            "sniHosts",
            "destinationSubnets",
            "port",
            "sourceLabels",
            "gateways",
            "sourceNamespace",
        ],
        &[],
    ),
    fields("TcpRoute", &["match", "route"], &[]),
    fields(
        "L4MatchAttributes",
        &[
            "destinationSubnets",
            "port",
            "sourceLabels",
            "gateways",
            "sourceNamespace",
        ],
        // Hidden from Istio's docs, still in its schema.
        &["sourceSubnet"],
    ),
    fields("RouteDestination", &["destination", "weight"], &[]),
    fields(
        "DestinationRule",
        &[
            "host",
            "trafficPolicy",
            "subsets",
            "exportTo",
            "workloadSelector",
        ],
        &[],
    ),
    fields("MatchLabelsSelector", &["matchLabels"], &[]),
    fields("Subset", &["name", "labels", "trafficPolicy"], &[]),
    fields(
        "TrafficPolicy",
        &[
            "loadBalancer",
            "connectionPool",
            "outlierDetection",
            "tls",
            "portLevelSettings",
        ],
        &["tunnel", "proxyProtocol", "retryBudget"],
    ),
    fields(
        "PortTrafficPolicy",
        &[
            "port",
            "loadBalancer",
            "connectionPool",
            "outlierDetection",
            "tls",
        ],
        &[],
    ),
    fields(
        "LoadBalancerSettings",
        &["simple", "consistentHash"],
        &["localityLbSetting", "warmupDurationSecs", "warmup"],
    ),
    fields(
        "ConsistentHashLb",
        &[
            "httpHeaderName",
            "httpCookie",
            "useSourceIp",
            "httpQueryParameterName",
            "ringHash",
            "maglev",
            "minimumRingSize",
        ],
        &[],
    ),
    // Cookie attributes (newer Istio) are not applied.
    fields("HttpCookie", &["name", "path", "ttl"], &["attributes"]),
    fields("RingHash", &["minimumRingSize"], &[]),
    fields("Maglev", &["tableSize"], &[]),
    fields(
        "OutlierDetection",
        &[
            "consecutive5xxErrors",
            "consecutiveGatewayErrors",
            "interval",
            "baseEjectionTime",
            "maxEjectionPercent",
            "minHealthPercent",
        ],
        // consecutiveErrors is deprecated and istiod no longer reads it;
        // local-origin splitting has no agent counterpart.
        &[
            "consecutiveErrors",
            "splitExternalLocalOriginErrors",
            "consecutiveLocalOriginFailures",
        ],
    ),
    fields("ConnectionPoolSettings", &["tcp", "http"], &[]),
    fields(
        "TcpSettings",
        &[
            "maxConnections",
            "connectTimeout",
            "tcpKeepalive",
            "maxConnectionDuration",
            "idleTimeout",
        ],
        &[],
    ),
    fields("TcpKeepalive", &["probes", "time", "interval"], &[]),
    fields(
        "HttpSettings",
        &[
            "http1MaxPendingRequests",
            "http2MaxRequests",
            "maxRequestsPerConnection",
            "maxRetries",
            "idleTimeout",
            "h2UpgradePolicy",
            "useClientProtocol",
            "maxConcurrentStreams",
        ],
        &[],
    ),
    fields(
        "ClientTlsSettings",
        &[
            "mode",
            "clientCertificate",
            "privateKey",
            "caCertificates",
            "credentialName",
            "subjectAltNames",
            "sni",
            "insecureSkipVerify",
        ],
        &["caCrl"],
    ),
    fields("Gateway", &["selector", "servers"], &[]),
    fields(
        "Server",
        &["port", "hosts", "tls", "name"],
        &["bind", "defaultEndpoint"],
    ),
    fields(
        "ServerTlsSettings",
        // subjectAltNames and the protocol versions are read to be refused
        // by the Gateway's TLS checks.
        &[
            "httpsRedirect",
            "mode",
            "serverCertificate",
            "privateKey",
            "caCertificates",
            "credentialName",
            "subjectAltNames",
            "minProtocolVersion",
            "maxProtocolVersion",
        ],
        &[
            "caCrl",
            "credentialNames",
            "tlsCertificates",
            "verifyCertificateSpki",
            "verifyCertificateHash",
            "cipherSuites",
        ],
    ),
    fields(
        "Sidecar",
        &["workloadSelector", "egress", "outboundTrafficPolicy"],
        &["ingress", "inboundConnectionPool"],
    ),
    fields(
        "IstioEgressListener",
        &["hosts"],
        // Hosts scope what the proxy sees on every port; a port of its own
        // would need a listener per egress entry.
        &["port", "bind", "captureMode"],
    ),
    fields("OutboundTrafficPolicy", &["mode"], &["egressProxy"]),
    fields("WorkloadGroup", &["metadata", "template"], &["probe"]),
    fields(
        "WorkloadGroupMeta",
        &["labels"],
        // istiod copies them onto the WorkloadEntry it registers for each
        // member; members here are not WorkloadEntry objects, and nothing
        // reads a WorkloadEntry's annotations.
        &["annotations"],
    ),
];

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

/// The entry of the struct named `name`.
pub fn entry(name: &str) -> Option<&'static Fields> {
    FIELDS.iter().find(|fields| fields.name == name)
}

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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod uses;
