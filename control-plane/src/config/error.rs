//! Config errors a user can act on.
//!
//! Each [`ConfigError`] is one problem, displayed as one line that says where
//! it is (file, line when known, document, resource, field), what is wrong and
//! what to do about it, for example:
//!
//! ```text
//! cfg/se.yaml: document 1: ServiceEntry default/httpbin-ext: spec.ports[0].number: port 0 is out of range; use a port between 1 and 65535
//! ```
//!
//! Document numbers in messages count from 1, like line numbers; the
//! `document` fields of [`Location`] and [`super::Origin`] count from 0.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Kind, Meta, Origin, Resource};

/// The resource a problem is about. `kind` is a string because a document
/// may name a kind this control plane does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceRef {
    pub fn new(kind: Kind, meta: &Meta) -> Self {
        Self {
            kind: kind.as_str().to_string(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "<unnamed>"
        } else {
            &self.name
        };
        write!(f, "{} {}/{}", self.kind, self.namespace, name)
    }
}

/// Where a problem is. Every part is optional: a file that cannot be read
/// has no document, a YAML syntax error has no resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    /// 1-based line in the file, when the YAML parser knows it.
    pub line: Option<usize>,
    /// 0-based index of the YAML document in the file, as in [`Origin`].
    pub document: Option<usize>,
    pub resource: Option<ResourceRef>,
    /// Path of the offending field inside the document, e.g. `spec.ports[0].number`.
    pub field: Option<String>,
}

impl Location {
    pub fn file(file: &Path) -> Self {
        Self {
            file: Some(file.to_path_buf()),
            ..Self::default()
        }
    }

    pub fn document(file: &Path, document: usize) -> Self {
        Self {
            document: Some(document),
            ..Self::file(file)
        }
    }

    /// The location of a loaded resource, optionally narrowed to one field.
    pub fn resource<T>(kind: Kind, resource: &Resource<T>) -> Self {
        Self::of(kind, &resource.meta, &resource.origin)
    }

    pub fn of(kind: Kind, meta: &Meta, origin: &Origin) -> Self {
        Self {
            resource: Some(ResourceRef::new(kind, meta)),
            ..Self::document(&origin.file, origin.document)
        }
    }

    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match (&self.file, self.line) {
            (Some(file), Some(line)) => parts.push(format!("{}:{line}", file.display())),
            (Some(file), None) => parts.push(file.display().to_string()),
            (None, Some(line)) => parts.push(format!("line {line}")),
            (None, None) => {}
        }
        if let Some(document) = self.document {
            parts.push(format!("document {}", document + 1));
        }
        if let Some(resource) = &self.resource {
            parts.push(resource.to_string());
        }
        if let Some(field) = &self.field {
            parts.push(field.clone());
        }
        if parts.is_empty() {
            parts.push("config".to_string());
        }
        f.write_str(&parts.join(": "))
    }
}

/// One problem in the config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct ConfigError {
    pub location: Location,
    pub problem: Problem,
}

impl ConfigError {
    pub fn new(location: Location, problem: Problem) -> Self {
        Self { location, problem }
    }
}

/// What is wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    // --- Reading files ---
    #[error("cannot read: {message}; check that the path exists and is readable")]
    Io { message: String },
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
        "kind {kind} of networking.istio.io is not supported; supported kinds are ServiceEntry, VirtualService, DestinationRule, Gateway, Sidecar, WorkloadEntry and WorkloadGroup (remove it or move it out of the config directory)"
    )]
    UnsupportedKind { kind: String },
    /// The document does not match the resource's schema: an unknown or
    /// misspelt field, a missing required field, a value of the wrong type.
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

    // --- WorkloadGroup ---
    #[error(
        "template is missing; set template to the WorkloadEntry (labels, ports, serviceAccount) each member gets"
    )]
    WorkloadGroupWithoutTemplate,
    #[error(
        "address {address:?} is set in the template; remove it (each member's address is its own)"
    )]
    TemplateWithAddress { address: String },
    #[error(
        "health probes are not run by this mesh; remove probe (members are endpoints while their proxy is connected)"
    )]
    ProbeNotSupported,
    #[error("{field} {value:?} is not supported by this mesh ({reason}); remove it")]
    TemplateFieldNotSupported {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    // --- VirtualService ---
    #[error("route has no destination; add at least one route destination{}", if *http { " (or a redirect)" } else { "" })]
    NoDestinations { http: bool },
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
    #[error(
        "gateway {gateway:?} does not exist (looked for Gateway {namespace}/{name}); create it, fix the name, or use `mesh` for sidecars"
    )]
    UnknownGateway {
        gateway: String,
        namespace: String,
        name: String,
    },
    #[error("TLS route has no match; add a match with sniHosts")]
    TlsRouteWithoutMatch,
    #[error("TLS match has no sniHosts; list the SNI host names this route applies to")]
    TlsMatchWithoutSni,

    // --- DestinationRule ---
    #[error("subset has no name; name every subset")]
    SubsetWithoutName,
    #[error("subset {name:?} is defined twice (also at {first}); give each subset its own name")]
    DuplicateSubset { name: String, first: String },

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
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}

/// Several config errors, reported together.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no config errors"),
            [only] => write!(f, "{only}"),
            errors => {
                write!(f, "{} config errors:", errors.len())?;
                for error in errors {
                    write!(f, "\n{error}")?;
                }
                Ok(())
            }
        }
    }
}

impl ConfigErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(errors: Vec<ConfigError>) -> Self {
        Self(errors)
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The config watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The first load found errors: there is no snapshot to start from.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The file system watch could not be set up.
    #[error("cannot watch {}: {error}; check that it exists and that inotify watches are available", path.display())]
    Notify { path: PathBuf, error: notify::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_line_with_every_part_of_the_location() {
        let meta = Meta {
            name: "httpbin-ext".into(),
            namespace: "default".into(),
            ..Meta::default()
        };
        let origin = Origin {
            file: PathBuf::from("cfg/se.yaml"),
            document: 0,
        };
        let error = ConfigError::new(
            Location::of(Kind::ServiceEntry, &meta, &origin).at("spec.ports[0].number"),
            Problem::PortOutOfRange { number: 0 },
        );
        assert_eq!(
            error.to_string(),
            "cfg/se.yaml: document 1: ServiceEntry default/httpbin-ext: spec.ports[0].number: \
             port 0 is out of range; use a port between 1 and 65535"
        );
    }

    #[test]
    fn line_is_shown_with_the_file() {
        let location = Location {
            line: Some(7),
            ..Location::document(Path::new("a.yaml"), 2)
        };
        let error = ConfigError::new(
            location,
            Problem::Syntax {
                message: "mapping values are not allowed".into(),
            },
        );
        let text = error.to_string();
        assert!(
            text.starts_with("a.yaml:7: document 3: YAML syntax error: "),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn schema_hint_is_optional() {
        let with = Problem::Schema {
            message: "unknown field `hostz`".into(),
            hint: "check the spelling",
        };
        let without = Problem::Schema {
            message: "bad".into(),
            hint: "",
        };
        assert_eq!(
            with.to_string(),
            "unknown field `hostz`; check the spelling"
        );
        assert_eq!(without.to_string(), "bad");
    }

    #[test]
    fn several_errors_are_counted_and_one_per_line() {
        let one = ConfigError::new(Location::file(Path::new("x.yaml")), Problem::NoHosts);
        let errors = ConfigErrors(vec![one.clone(), one.clone()]);
        assert_eq!(errors.to_string().lines().count(), 3);
        assert_eq!(ConfigErrors::from(one.clone()).to_string(), one.to_string());
    }
}
