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

/// The entry of the struct named `name`.
pub fn entry(name: &str) -> Option<&'static Fields> {
    FIELDS.iter().find(|fields| fields.name == name)
}

mod nested;

pub use nested::{NESTED, Shape, is_not_supported, struct_at};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod uses;
