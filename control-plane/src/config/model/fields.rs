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
        ],
        // istiod verifies these names when it originates ISTIO_MUTUAL to
        // the service; this control plane verifies the SPIFFE identity.
        &["subjectAltNames"],
    ),
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
            "name", "match", "route", "redirect", "rewrite", "timeout", "retries", "headers",
        ],
        &[
            "directResponse",
            "delegate",
            "fault",
            "mirror",
            "mirrors",
            "mirrorPercentage",
            "mirrorPercent",
            "corsPolicy",
        ],
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
        ],
        // A match's name only names the Envoy route; the route's name is
        // applied.
        &["name", "sourceLabels", "sourceNamespace", "statPrefix"],
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
        &["attempts", "perTryTimeout", "retryOn"],
        &["retryRemoteLocalities"],
    ),
    fields("Headers", &["request", "response"], &[]),
    fields("HeaderOperations", &["set", "add", "remove"], &[]),
    fields("TlsRoute", &["match", "route"], &[]),
    fields(
        "TlsMatchAttributes",
        &["sniHosts", "destinationSubnets", "port", "gateways"],
        &["sourceLabels", "sourceNamespace"],
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
        &[],
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
        &["loadBalancer", "connectionPool", "tls", "portLevelSettings"],
        &["outlierDetection", "tunnel", "proxyProtocol", "retryBudget"],
    ),
    fields(
        "PortTrafficPolicy",
        &["port", "loadBalancer", "connectionPool", "tls"],
        &["outlierDetection"],
    ),
    fields(
        "LoadBalancerSettings",
        &["simple"],
        &[
            "consistentHash",
            "localityLbSetting",
            "warmupDurationSecs",
            "warmup",
        ],
    ),
    fields("ConnectionPoolSettings", &["tcp", "http"], &[]),
    fields(
        "TcpSettings",
        &["maxConnections", "connectTimeout"],
        &["idleTimeout", "tcpKeepalive", "maxConnectionDuration"],
    ),
    fields(
        "HttpSettings",
        &[
            "http1MaxPendingRequests",
            "http2MaxRequests",
            "maxRequestsPerConnection",
            "maxRetries",
            "idleTimeout",
        ],
        &[
            "h2UpgradePolicy",
            "useClientProtocol",
            "maxConcurrentStreams",
        ],
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
    fields("WorkloadGroupMeta", &["labels", "annotations"], &[]),
];

/// Whether `field` is a valid Istio field this control plane does not
/// support, in a struct whose model fields are `expected` (as a decoding
/// error lists them). Structs with the same fields are all consulted.
pub fn is_not_supported(expected: &[&str], field: &str) -> bool {
    FIELDS
        .iter()
        .filter(|fields| same_set(fields.applied, expected))
        .any(|fields| fields.not_supported.contains(&field))
}

fn same_set(applied: &[&str], expected: &[&str]) -> bool {
    applied.len() == expected.len() && applied.iter().all(|field| expected.contains(field))
}

#[cfg(test)]
mod tests;
