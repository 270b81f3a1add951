//! One YAML file's documents: what each is (an Istio resource, a List, or
//! something not handled, named), decoded into the snapshot with errors
//! that say where.

use std::path::Path;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_yaml::Value;

use super::depth::check_depth;
use super::errors::{schema_error, syntax_error, too_deep};
use super::not_handled::NotHandled;
use super::not_used::NotUsed;
use super::secret_error::secret_schema_error;
use super::{ISTIO_GROUP, ISTIO_VERSIONS, Loaded};
use crate::config::error::{ConfigError, Location, Problem, ResourceRef};
use crate::config::gateway_api;
use crate::config::model::Labels;
use crate::config::model::kube::unused_fields;
use crate::config::{DEFAULT_NAMESPACE, Kind, Meta, Origin, Resource};

/// What a document is, judged from its apiVersion and kind.
enum Class {
    Empty,
    Istio(Kind),
    List,
    Other(NotHandled),
}

/// The kinds of networking.istio.io this control plane does not apply:
/// named, not refused.
const ISTIO_KINDS_NOT_HANDLED: [&str; 2] = ["EnvoyFilter", "ProxyConfig"];

fn classify(
    value: &Value,
    location: &Location,
    origin: &Origin,
) -> Result<Class, Box<ConfigError>> {
    let not_an_object = |what: &str| {
        let what = what.to_string();
        Box::new(ConfigError::new(
            location.clone(),
            Problem::NotAnObject { what },
        ))
    };
    let mapping = match value {
        Value::Null => return Ok(Class::Empty),
        Value::Mapping(mapping) => mapping,
        Value::Sequence(_) => return Err(not_an_object("the document is a list")),
        _ => return Err(not_an_object("the document is a single value")),
    };
    let api_version = mapping.get("apiVersion").and_then(Value::as_str);
    let kind = mapping.get("kind").and_then(Value::as_str);
    let (api_version, kind) = match (api_version, kind) {
        (Some(api_version), Some(kind)) => (api_version, kind),
        (None, Some(_)) => return Err(not_an_object("apiVersion is missing")),
        (Some(_), None) => return Err(not_an_object("kind is missing")),
        (None, None) => return Err(not_an_object("apiVersion and kind are missing")),
    };
    // Inside a List, the field is the item's (`items[3]`): name its fields under it.
    let at = |name: &str| {
        let field = match &location.field {
            Some(item) => format!("{item}.{name}"),
            None => name.to_string(),
        };
        location.clone().at(field)
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group == ISTIO_GROUP {
        if !ISTIO_VERSIONS.contains(&version) {
            let api_version = api_version.to_string();
            let problem = Problem::UnsupportedApiVersion { api_version };
            return Err(Box::new(ConfigError::new(at("apiVersion"), problem)));
        }
        return match kind_from_str(kind) {
            Some(kind) => Ok(Class::Istio(kind)),
            None if ISTIO_KINDS_NOT_HANDLED.contains(&kind) => Ok(Class::Other(NotHandled::new(
                api_version,
                kind,
                value,
                origin,
                location.field.as_deref(),
            ))),
            None => {
                let kind = kind.to_string();
                let problem = Problem::UnsupportedKind { kind };
                Err(Box::new(ConfigError::new(at("kind"), problem)))
            }
        };
    }
    if group == gateway_api::GROUP {
        return gateway_api_class(value, version, kind, location, origin);
    }
    if group.is_empty() && kind == "List" {
        return Ok(Class::List);
    }
    if let Some(kind) = kubernetes_kind(group, version, kind) {
        return Ok(Class::Istio(kind));
    }
    Ok(Class::Other(NotHandled::new(
        api_version,
        kind,
        value,
        origin,
        location.field.as_deref(),
    )))
}

/// A Gateway API document: a kind read in one of its versions, a Gateway of
/// another class (named, not handled), or a kind not read (named).
fn gateway_api_class(
    value: &Value,
    version: &str,
    kind: &str,
    location: &Location,
    origin: &Origin,
) -> Result<Class, Box<ConfigError>> {
    let api_version = format!("{}/{version}", gateway_api::GROUP);
    let other = || {
        Ok(Class::Other(NotHandled::new(
            &api_version,
            kind,
            value,
            origin,
            location.field.as_deref(),
        )))
    };
    let read = match kind {
        "Gateway" => Kind::KubernetesGateway,
        "HTTPRoute" => Kind::HttpRoute,
        "TLSRoute" => Kind::TlsRoute,
        "TCPRoute" => Kind::TcpRoute,
        "ReferenceGrant" => Kind::ReferenceGrant,
        _ => return other(),
    };
    if !gateway_api::versions(kind).contains(&version) {
        let field = match &location.field {
            Some(item) => format!("{item}.apiVersion"),
            None => "apiVersion".to_string(),
        };
        let problem = Problem::Schema {
            message: format!("{kind} is not read in version {api_version}"),
            hint: gateway_api_versions_hint(kind),
        };
        return Err(Box::new(ConfigError::new(
            location.clone().at(field),
            problem,
        )));
    }
    let class = value
        .get("spec")
        .and_then(|spec| spec.get("gatewayClassName"))
        .and_then(Value::as_str);
    if read == Kind::KubernetesGateway
        && class.is_some_and(|class| class != gateway_api::ISTIO_CLASS)
    {
        return other();
    }
    Ok(Class::Istio(read))
}

fn gateway_api_versions_hint(kind: &str) -> &'static str {
    match kind {
        "TLSRoute" | "TCPRoute" => "use gateway.networking.k8s.io/v1alpha2",
        "ReferenceGrant" => "use gateway.networking.k8s.io/v1beta1",
        _ => "use gateway.networking.k8s.io/v1 or v1beta1",
    }
}

fn kind_from_str(kind: &str) -> Option<Kind> {
    [
        Kind::ServiceEntry,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::Gateway,
        Kind::Sidecar,
        Kind::WorkloadEntry,
        Kind::WorkloadGroup,
    ]
    .into_iter()
    .find(|known| known.as_str() == kind)
}

/// The Kubernetes kinds read: Secrets for `credentialName`, and the
/// registry's Services, Endpoints and EndpointSlices.
fn kubernetes_kind(group: &str, version: &str, kind: &str) -> Option<Kind> {
    let kinds: &[Kind] = match (group, version) {
        ("", "v1") => &[Kind::Secret, Kind::Service, Kind::Endpoints],
        ("discovery.k8s.io", "v1") => &[Kind::EndpointSlice],
        _ => &[],
    };
    kinds.iter().copied().find(|known| known.as_str() == kind)
}

/// Adds the resources of one file's text to `snapshot`. False, with nothing
/// added, if the text is not YAML.
pub(super) fn add_file(file: &Path, text: &str, loaded: &mut Loaded) -> bool {
    if let Err(deep) = check_depth(text) {
        loaded.errors.push(too_deep(file, deep));
        return false;
    }
    // First pass: the structure of every document, to know what each is.
    let mut values = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(error) => {
                // The parser cannot resynchronise after a syntax error, and
                // the file's documents before it may be incomplete.
                loaded.errors.push(syntax_error(file, index, &error));
                return false;
            }
        }
    }
    let last = values.iter().rposition(|value| !value.is_null());
    loaded.last_documents.insert(file.to_path_buf(), last);
    // Second pass: decode each Istio document from the text itself, so that
    // schema errors carry line numbers.
    for ((index, document), value) in serde_yaml::Deserializer::from_str(text)
        .enumerate()
        .zip(&values)
    {
        let origin = Origin {
            file: file.to_path_buf(),
            document: index,
        };
        let location = Location::document(file, index);
        match classify(value, &location, &origin) {
            Ok(Class::Istio(kind)) => {
                let target = Target {
                    kind,
                    origin: &origin,
                    prefix: "",
                    loose: value,
                };
                add_resource(target, document, loaded);
            }
            Ok(Class::List) => add_list(value, &origin, loaded),
            Ok(Class::Other(other)) => loaded.not_handled.push(other),
            Ok(Class::Empty) => {}
            Err(error) => loaded.errors.push(*error),
        }
    }
    true
}

fn add_list(list: &Value, origin: &Origin, loaded: &mut Loaded) {
    let Some(items) = list.get("items").and_then(Value::as_sequence) else {
        return;
    };
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("items[{index}].");
        let location =
            Location::document(&origin.file, origin.document).at(format!("items[{index}]"));
        match classify(item, &location, origin) {
            Ok(Class::Istio(kind)) => {
                let target = Target {
                    kind,
                    origin,
                    prefix: &prefix,
                    loose: item,
                };
                add_resource(target, item, loaded);
            }
            Ok(Class::List) => add_list(item, origin, loaded),
            Ok(Class::Other(other)) => loaded.not_handled.push(other),
            Ok(Class::Empty) => {}
            Err(error) => loaded.errors.push(*error),
        }
    }
}

/// Where a decoded resource goes and how to name it in errors.
struct Target<'a> {
    kind: Kind,
    origin: &'a Origin,
    /// Field path of the object inside its document (`items[3].` in a List).
    prefix: &'a str,
    /// The object as loosely parsed YAML, to name it when decoding fails.
    loose: &'a Value,
}

fn add_resource<'de, D>(target: Target<'_>, document: D, loaded: &mut Loaded)
where
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    let snapshot = &mut loaded.snapshot;
    let errors = &mut loaded.errors;
    let schema = |location, within: &str, error: &_| {
        schema_error(location, &format!("{}{within}", target.prefix), error)
    };
    let added = match target.kind {
        Kind::ServiceEntry => push(&mut snapshot.service_entries, &target, document, errors),
        Kind::VirtualService => push(&mut snapshot.virtual_services, &target, document, errors),
        Kind::DestinationRule => push(&mut snapshot.destination_rules, &target, document, errors),
        Kind::Gateway => push(&mut snapshot.gateways, &target, document, errors),
        Kind::Sidecar => push(&mut snapshot.sidecars, &target, document, errors),
        Kind::WorkloadEntry => push(&mut snapshot.workload_entries, &target, document, errors),
        Kind::WorkloadGroup => push(&mut snapshot.workload_groups, &target, document, errors),
        // A Secret's errors never quote a value.
        Kind::Secret => push_object(
            &mut snapshot.secrets,
            &target,
            document,
            errors,
            |location, within, error| secret_schema_error(location, target.prefix, within, error),
        ),
        Kind::Service => push_object(&mut snapshot.services, &target, document, errors, schema),
        Kind::Endpoints => push_object(&mut snapshot.endpoints, &target, document, errors, schema),
        Kind::EndpointSlice => push_object(
            &mut snapshot.endpoint_slices,
            &target,
            document,
            errors,
            schema,
        ),
        Kind::KubernetesGateway => push(
            &mut snapshot.gateway_api.gateways,
            &target,
            document,
            errors,
        ),
        Kind::HttpRoute => push(
            &mut snapshot.gateway_api.http_routes,
            &target,
            document,
            errors,
        ),
        Kind::TlsRoute => push(
            &mut snapshot.gateway_api.tls_routes,
            &target,
            document,
            errors,
        ),
        Kind::TcpRoute => push(
            &mut snapshot.gateway_api.tcp_routes,
            &target,
            document,
            errors,
        ),
        Kind::ReferenceGrant => push(
            &mut snapshot.gateway_api.reference_grants,
            &target,
            document,
            errors,
        ),
    };
    if added && let Some(written) = target.loose.get("apiVersion").and_then(Value::as_str) {
        let version = written.rsplit('/').next().unwrap_or(written);
        snapshot.gateway_api.record_version(target.kind, version);
    }
    if added {
        let fields = unused_fields(target.kind, target.loose);
        if !fields.is_empty() {
            let meta = loose_ref(target.kind, target.loose);
            let item = target.prefix.trim_end_matches('.');
            let item = (!item.is_empty()).then_some(item);
            let not_used = NotUsed::new(meta, target.origin, item, fields);
            loaded.not_used.push(not_used);
        }
    }
}

fn push<'de, T, D>(
    list: &mut Vec<Resource<T>>,
    target: &Target<'_>,
    document: D,
    errors: &mut Vec<ConfigError>,
) -> bool
where
    T: DeserializeOwned + Default,
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    match serde_path_to_error::deserialize::<_, Envelope<T>>(document) {
        Ok(envelope) => {
            list.push(Resource {
                meta: envelope.metadata.unwrap_or_default().into_meta(),
                origin: target.origin.clone(),
                spec: envelope.spec.unwrap_or_default(),
            });
            true
        }
        Err(error) => {
            let mut location = Location::document(&target.origin.file, target.origin.document);
            location.resource = Some(loose_ref(target.kind, target.loose));
            errors.push(schema_error(location, target.prefix, &error));
            false
        }
    }
}

/// A Kubernetes object whose fields sit beside its metadata (Secret,
/// Service, Endpoints, EndpointSlice): decoded whole from the text itself
/// (not through `flatten`, which loses them) so that an error has its field
/// and line, then its metadata from the object. `error_of` words a decoding
/// error, given the path (`metadata.` for the metadata decoded alone) it
/// lies under.
fn push_object<'de, T, D>(
    list: &mut Vec<Resource<T>>,
    target: &Target<'_>,
    document: D,
    errors: &mut Vec<ConfigError>,
    error_of: impl Fn(Location, &str, &serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError,
) -> bool
where
    T: DeserializeOwned,
    D: Deserializer<'de, Error = serde_yaml::Error>,
{
    let mut location = Location::document(&target.origin.file, target.origin.document);
    location.resource = Some(loose_ref(target.kind, target.loose));
    let object = match serde_path_to_error::deserialize::<_, T>(document) {
        Ok(object) => object,
        Err(error) => {
            errors.push(error_of(location, "", &error));
            return false;
        }
    };
    let metadata = target.loose.get("metadata").cloned().unwrap_or(Value::Null);
    match serde_path_to_error::deserialize::<_, Option<ObjectMeta>>(metadata) {
        Ok(metadata) => {
            list.push(Resource {
                meta: metadata.unwrap_or_default().into_meta(),
                origin: target.origin.clone(),
                spec: object,
            });
            true
        }
        Err(error) => {
            errors.push(error_of(location, "metadata.", &error));
            false
        }
    }
}

/// The parts of a Kubernetes object this control plane reads; `apiVersion`,
/// `kind` and `status` are ignored here.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Envelope<T> {
    metadata: Option<ObjectMeta>,
    spec: Option<T>,
}

/// Kubernetes object metadata; fields set by the API server (uid,
/// resourceVersion, managedFields, ...) are accepted and ignored.
#[derive(Default, Deserialize)]
struct ObjectMeta {
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<Labels>,
    annotations: Option<Labels>,
}

impl ObjectMeta {
    fn into_meta(self) -> Meta {
        Meta {
            name: self.name.unwrap_or_default(),
            namespace: self
                .namespace
                .filter(|namespace| !namespace.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            labels: self.labels.unwrap_or_default(),
            annotations: self.annotations.unwrap_or_default(),
        }
    }
}

/// Names a resource from loosely parsed YAML, for an error about it.
fn loose_ref(kind: Kind, value: &Value) -> ResourceRef {
    let meta = |key: &str| {
        value
            .get("metadata")
            .and_then(|meta| meta.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ResourceRef {
        kind: kind.as_str().to_string(),
        namespace: meta("namespace")
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        name: meta("name").unwrap_or_default(),
    }
}
