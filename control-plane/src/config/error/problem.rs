//! What can be wrong in the config ([`Problem`]), what to do about it, and whether it leaves the resource out ([`Severity`]).

/// What is wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    // --- Reading files ---
    #[error("cannot read: {message}; {hint}")]
    Io { message: String, hint: &'static str },
    #[error(
        "the file holds no document (a write in progress?); it keeps serving what it held before: delete the file to remove its config"
    )]
    EmptyFileKept,
    #[error(
        "the file's last document is cut short or invalid (a write in progress?); the file keeps serving what it held before until it is complete and valid"
    )]
    IncompleteFileKept,
    #[error(
        "the file is still being written; it keeps serving what it held before until it stops changing"
    )]
    ChangingFileKept,
    #[error(
        "YAML nested more than {limit} levels deep; Istio resources nest far less: remove the nesting"
    )]
    TooDeep { limit: usize },
    #[error(
        "YAML syntax error: {message}; fix the indentation, a missing ':' or an unclosed quote there"
    )]
    Syntax { message: String },
    #[error(
        "not a Kubernetes object: {what}; every document needs apiVersion and kind (move other YAML files out of the config directory)"
    )]
    NotAnObject { what: String },
    #[error(
        "apiVersion {api_version} is not supported; use networking.istio.io/v1, v1beta1 or v1alpha3"
    )]
    UnsupportedApiVersion { api_version: String },
    #[error(
        "kind {kind} is not a networking.istio.io kind; fix the spelling: the kinds are ServiceEntry, VirtualService, DestinationRule, Gateway, Sidecar, WorkloadEntry, WorkloadGroup, EnvoyFilter and ProxyConfig"
    )]
    UnsupportedKind { kind: String },
    /// A valid Istio field this control plane does not apply: refused, so
    /// that it is never accepted and ignored.
    #[error(
        "not supported by this control plane; remove `{field}` (Istio would apply it, this control plane cannot)"
    )]
    NotSupported { field: String },
    /// A field the resource does not have, with the nearest one it has.
    #[error("unknown field `{field}`; {}", match suggestion {
        Some(known) => format!("did you mean `{known}`?"),
        None => format!("the fields here are {}", expected.join(", ")),
    })]
    UnknownField {
        field: String,
        suggestion: Option<String>,
        expected: Vec<String>,
    },
    /// The document does not match the resource's schema: a missing
    /// required field, a value of the wrong type.
    #[error("{message}{}", hint_suffix(hint))]
    Schema { message: String, hint: &'static str },
    #[error(
        "ConfigMap has no string data.mesh; put the MeshConfig YAML under data.mesh as `kubectl get configmap istio -n istio-system -o yaml` shows it"
    )]
    MeshConfigMapWithoutMesh,
    #[error(
        "{kind} {namespace}/{name} is defined again (first in {first}); delete one or rename it"
    )]
    Duplicate {
        kind: String,
        namespace: String,
        name: String,
        first: String,
    },

    // --- Metadata ---
    #[error("metadata.name is missing; give every resource a name")]
    MissingName,
    #[error(
        "{what} {value:?} is not a valid Kubernetes name; use lowercase letters, digits, '-' (and '.' in names), starting and ending with a letter or digit"
    )]
    InvalidName { what: &'static str, value: String },

    // --- Hosts, ports, protocols, addresses ---
    #[error("no hosts; list at least one host")]
    NoHosts,
    #[error("host is empty; set a host name")]
    EmptyHost,
    #[error(
        "host {host:?} is not a valid host name; use a DNS name such as api.example.com, optionally with a leading '*.'"
    )]
    InvalidHost { host: String },
    #[error("port {number} is out of range; use a port between 1 and 65535")]
    PortOutOfRange { number: u32 },
    #[error("port {number} is declared twice (also at {first}); declare each port once")]
    DuplicatePort { number: u32, first: String },
    #[error("port name {name:?} is used twice (also at {first}); give each port its own name")]
    DuplicatePortName { name: String, first: String },
    #[error(
        "protocol {protocol:?} is not an Istio protocol; use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, UDP, MONGO, MYSQL, REDIS"
    )]
    UnknownProtocol { protocol: String },
    #[error("protocol is missing; set the port's protocol (HTTP, HTTPS, TCP, TLS, ...)")]
    MissingProtocol,
    #[error("{address:?} is not an IP address or CIDR range; use e.g. 10.0.0.1 or 10.0.0.0/24")]
    InvalidAddress { address: String },
    #[error(
        "host {host:?} port {number} is declared with protocol {protocol} here but {other_protocol} in {other}; use one protocol per host and port in a namespace"
    )]
    ConflictingProtocol {
        host: String,
        number: u32,
        protocol: String,
        other_protocol: String,
        other: String,
    },
    #[error(
        "host {host:?} port {number} shares the wildcard sidecar listener 0.0.0.0_{number} with HTTP host {http_host:?} of {http}, which takes it: this port of {host:?} is not served (istiod would tell them apart by protocol sniffing, which is not supported); give this ServiceEntry an address, or use another port"
    )]
    HiddenByHttp {
        host: String,
        number: u32,
        http_host: String,
        http: String,
    },

    // --- ServiceEntry / WorkloadEntry ---
    #[error(
        "resolution STATIC needs endpoints; add endpoints with IP addresses or a workloadSelector"
    )]
    StaticWithoutEndpoints,
    #[error(
        "resolution {resolution} cannot resolve wildcard host {host:?}; add endpoints, list concrete hosts, or use resolution NONE"
    )]
    WildcardWithDns {
        resolution: &'static str,
        host: String,
    },
    #[error("endpoints and workloadSelector are both set; use only one of them")]
    EndpointsAndSelector,
    #[error(
        "endpoint has no address; set address (an IP, a DNS name for DNS resolution, or unix:///path)"
    )]
    EndpointWithoutAddress,
    #[error(
        "endpoint port {name:?} is not a port name of this ServiceEntry; use one of the names under spec.ports"
    )]
    UnknownEndpointPort { name: String },
    #[error(
        "endpoint address {address:?} is not an IP address; resolution STATIC needs IPs (or unix:///path); use resolution DNS for host names"
    )]
    StaticEndpointNotIp { address: String },

    // --- Kubernetes Service / Endpoints / EndpointSlice ---
    #[error("type ExternalName needs externalName; set it to the DNS name the Service stands for")]
    ExternalNameMissing,
    #[error("{address:?} is not an IP address; use e.g. 10.0.0.1 (or None for a headless Service)")]
    NotAnIp { address: String },

    // --- WorkloadGroup ---
    #[error(
        "template is missing; set template to the WorkloadEntry (labels, ports, serviceAccount) each member gets"
    )]
    WorkloadGroupWithoutTemplate,
    #[error(
        "address {address:?} is set in the template; remove it (each member's address is its own)"
    )]
    TemplateWithAddress { address: String },

    // --- VirtualService ---
    #[error("route has no destination; add at least one route destination{}", if *http { " (or a redirect)" } else { "" })]
    NoDestinations { http: bool },
    #[error(
        "host {host:?} is declared by {owners}, which is not exported to namespace {namespace}; add {namespace} (or \"*\") to its exportTo, or route from a namespace it is exported to"
    )]
    HostNotExported {
        host: String,
        namespace: String,
        owners: String,
    },
    #[error("destination host is empty; set the host traffic goes to")]
    DestinationWithoutHost,
    #[error(
        "route weights add up to {sum}, not 100; make the weights of this route's destinations sum to 100"
    )]
    WeightSum { sum: u64 },
    #[error(
        "subset {subset:?} of host {host:?} is not defined by any DestinationRule visible here; add it to the subsets of a DestinationRule for {host:?} or fix the name"
    )]
    UnknownSubset { host: String, subset: String },
    #[error(
        "invalid regex {regex:?}: {message}; use RE2 syntax (no look-around or back-references)"
    )]
    BadRegex { regex: String, message: String },
    #[error("regex {start:?}... is too large: {reason}")]
    RegexTooLarge { start: String, reason: String },
    #[error(
        "gateway {gateway:?} does not exist (looked for Gateway {namespace}/{name}); create it, fix the name, or use `mesh` for sidecars"
    )]
    UnknownGateway {
        gateway: String,
        namespace: String,
        name: String,
    },
    #[error("fault has neither delay nor abort; add a delay, an abort, or remove fault")]
    FaultWithoutDelayOrAbort,
    #[error("delay has no fixedDelay; set fixedDelay, e.g. 5s")]
    DelayWithoutFixedDelay,
    #[error("abort has no httpStatus; set httpStatus, e.g. 503 (or grpcStatus)")]
    AbortWithoutStatus,
    #[error("abort has both httpStatus and grpcStatus; keep one")]
    AbortWithTwoStatuses,
    #[error("HTTP status {status} is not in range 200-599; use a status between 200 and 599")]
    HttpStatusOutOfRange { status: u32 },
    #[error(
        "gRPC status {status:?} is not supported; use a name from https://github.com/grpc/grpc/blob/master/doc/statuscodes.md, e.g. UNAVAILABLE"
    )]
    UnknownGrpcStatus { status: String },
    #[error("percentage {value} is not between 0 and 100")]
    PercentOutOfRange { value: String },
    #[error(
        "{what} cannot be set with a redirect (a redirect is answered, never forwarded); remove one"
    )]
    WithRedirect { what: &'static str },
    #[error("duration {duration:?} is less than 1ms; Istio needs at least 1ms")]
    DurationBelowOneMillisecond { duration: String },
    #[error(
        "duration {duration:?} is not a whole number of milliseconds; Istio supports ms precision only"
    )]
    DurationFinerThanMilliseconds { duration: String },
    #[error("maxAge {duration:?} is not a whole number of seconds; CORS max age is in seconds")]
    MaxAgeFinerThanSeconds { duration: String },
    #[error(
        "{method:?} is not a supported HTTP method; use GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE or *"
    )]
    UnsupportedCorsMethod { method: String },
    #[error(
        "header name {name:?} is not a valid header name; use letters, digits and !#$%&'*+-.^_`|~"
    )]
    InvalidHeaderName { name: String },
    #[error(
        "header {name:?} cannot be edited (pseudo-headers and host belong to Envoy); use rewrite.authority or a request :authority set to change the host"
    )]
    InternalHeader { name: String },
    #[error(
        "the request authority is set twice ({first:?}, then {again:?}); set it once, in rewrite.authority or the route's request headers"
    )]
    AuthoritySetTwice { first: String, again: String },
    #[error(
        "allowOrigins entry is empty; give the origin to match, e.g. exact: https://example.com"
    )]
    EmptyOrigin,
    #[error(
        "retry policy configured when attempts are 0 (retries disabled); set attempts or remove the other retry fields"
    )]
    RetryWithoutAttempts,
    #[error(
        "{condition:?} is not a valid retryOn condition; use Envoy's (5xx, gateway-error, reset, reset-before-request, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable) or an HTTP status code"
    )]
    UnknownRetryOn { condition: String },
    #[error("TLS route has no match; add a match with sniHosts")]
    TlsRouteWithoutMatch,
    #[error("TLS match has no sniHosts; list the SNI host names this route applies to")]
    TlsMatchWithoutSni,

    // --- DestinationRule ---
    #[error("subset has no name; name every subset")]
    SubsetWithoutName,
    #[error("subset {name:?} is defined twice (also at {first}); give each subset its own name")]
    DuplicateSubset { name: String, first: String },
    #[error("connection pool must have at least one field; set tcp or http")]
    EmptyConnectionPool,
    #[error("useClientProtocol must not be true when h2UpgradePolicy is UPGRADE; keep one of them")]
    UpgradeWithClientProtocol,
    #[error("only one of {fields} can be set (one of them in Istio's API); keep one")]
    OneOf { fields: &'static str },
    #[error("name required for httpCookie; set the cookie's name")]
    CookieWithoutName,
    #[error("tableSize {size} for maglev {reason}; use a prime number below 5000011, e.g. 65537")]
    MaglevTableSize { size: u64, reason: &'static str },

    // --- Gateway ---
    #[error("no servers; add at least one server with a port and hosts")]
    NoServers,
    #[error(
        "selector is empty, so this Gateway would apply to every gateway proxy; set selector labels, e.g. istio: egressgateway"
    )]
    EmptySelector,
    #[error(
        "server port {number} conflicts with {first} ({reason}); use another port or merge the servers"
    )]
    ServerPortConflict {
        number: u32,
        first: String,
        reason: String,
    },
    #[error(
        "protocol {protocol} needs tls settings; add tls: {{mode: PASSTHROUGH}} or SIMPLE with a credentialName"
    )]
    ServerWithoutTls { protocol: String },

    #[error(
        "tls mode {mode} needs a certificate; set credentialName (a Secret with tls.crt and tls.key) or serverCertificate and privateKey"
    )]
    ServerTlsWithoutCertificate { mode: String },
    #[error(
        "credentialName and {field} are both set; use the Secret of credentialName or the files, not both"
    )]
    ServerTlsCredentialAndFiles { field: &'static str },
    #[error(
        "tls mode {mode} verifies client certificates and needs caCertificates with serverCertificate; add it, or use credentialName with a ca.crt"
    )]
    ServerTlsWithoutCa { mode: String },
    #[error(
        "no CA for credentialName {credential}: Secret {namespace}/{credential} has no ca.crt (or cacert) and there is no Secret {namespace}/{credential}-cacert, so the proxy waits for kubernetes://{credential}-cacert; add ca.crt to the Secret, or create {credential}-cacert with the CA that verifies the peer"
    )]
    CredentialWithoutCa {
        credential: String,
        namespace: String,
    },
    #[error("tls mode ISTIO_MUTUAL uses the gateway's mesh certificate; remove {field}")]
    IstioMutualWithCredentials { field: &'static str },
    #[error("{field} is not supported on gateway servers by this mesh; remove it")]
    ServerTlsFieldNotSupported { field: &'static str },

    // --- Secret ---
    #[error(
        "{reason}; a TLS credential needs tls.crt and tls.key (or cert and key), and ca.crt (or cacert) to verify peers"
    )]
    SecretWithoutCredential { reason: String },
    #[error(
        "{message}; give PEM text (-----BEGIN CERTIFICATE----- or -----BEGIN PRIVATE KEY-----)"
    )]
    SecretBadPem { message: String },
    #[error(
        "the private key in {key} does not match the certificate in {certificate}; put the key the certificate was issued for"
    )]
    SecretKeyMismatch { certificate: String, key: String },

    // --- Sidecar ---
    #[error(
        "egress listener has no hosts; list hosts as namespace/dnsName, e.g. ./* or istio-system/*"
    )]
    EgressWithoutHosts,
    #[error("egress host {host:?} must be namespace/dnsName; use e.g. ./{host} or */{host}")]
    EgressHostWithoutNamespace { host: String },
    #[error(
        "istio.io/dry-run applies only to a Sidecar whose outboundTrafficPolicy.mode is REGISTRY_ONLY; set that mode or remove the annotation"
    )]
    DryRunWithoutRegistryOnly,
    #[error("istio.io/dry-run must be \"true\" or \"false\", not {value:?}")]
    DryRunNotBool { value: String },
}

/// Whether a problem leaves its resource out of the served config.
///
/// istiod validates each resource alone and rejects it on an error; what it
/// can only judge against other resources (a subset or gateway that no
/// resource defines, a host its ServiceEntries hide by `exportTo`) is
/// reported as a warning, and the resource is served as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Problem {
    pub fn severity(&self) -> Severity {
        match self {
            Problem::UnknownSubset { .. }
            | Problem::UnknownGateway { .. }
            | Problem::HostNotExported { .. }
            | Problem::HiddenByHttp { .. }
            | Problem::CredentialWithoutCa { .. }
            | Problem::EmptyFileKept
            | Problem::IncompleteFileKept
            | Problem::ChangingFileKept => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}
