//! Gateways of class `istio`: their listeners, checked and converted into
//! one Istio Gateway each, and the Service of their proxy (a ServiceEntry
//! selecting the proxies started with the Gateway's labels).

use std::collections::BTreeMap;

use super::{Converted, GENERATED_SUFFIX, generated, invalid, namespace_of, unsupported};
use crate::config::Kind;
use crate::config::gateway_api::status::{
    Condition, ListenerStatus, ObjectStatus, RouteKind, StatusBody,
};
use crate::config::gateway_api::{
    FromNamespaces, GATEWAY_NAME_LABEL, GROUP, GatewayApi, ISTIO_CLASS, KubernetesGateway,
    Listener, SERVICE_TYPE_ANNOTATION, SERVICE_TYPES, TlsMode, deployment_name,
};
use crate::config::model::{
    Gateway, Location, Resolution, Server, ServerTlsMode, ServerTlsSettings, ServiceEntry,
    ServicePort, WorkloadSelector,
};
use crate::config::{ConfigSnapshot, Resource};
use shared::node::DOMAIN_SUFFIX;

/// A listener, as routes attach to it.
pub(super) struct ListenerState {
    pub namespace: String,
    pub gateway: String,
    pub name: String,
    pub port: u32,
    pub hostname: Option<String>,
    pub from: FromNamespaces,
    /// The route kinds it accepts.
    pub kinds: Vec<&'static str>,
    /// The generated Istio Gateway (`namespace/name`), when programmed.
    pub istio_gateway: Option<String>,
    conditions: Vec<Condition>,
    attached: u32,
}

/// The Gateway a run of listeners belongs to.
struct GatewayState {
    namespace: String,
    name: String,
    api_version: &'static str,
    origin: crate::config::Origin,
    conditions: Vec<Condition>,
    listeners: std::ops::Range<usize>,
}

/// Every listener of every Gateway converted.
pub(super) struct Listeners {
    pub listeners: Vec<ListenerState>,
    gateways: Vec<GatewayState>,
}

impl Listeners {
    pub(super) fn build(api: &GatewayApi, snapshot: &ConfigSnapshot, out: &mut Converted) -> Self {
        let mut all = Self {
            listeners: Vec::new(),
            gateways: Vec::new(),
        };
        for gateway in &api.gateways {
            if gateway.spec.gateway_class_name != ISTIO_CLASS {
                continue;
            }
            let errors = refused(gateway);
            if !errors.is_empty() {
                out.errors.extend(errors);
                continue;
            }
            all.add(gateway, api, snapshot, out);
        }
        all
    }

    fn add(
        &mut self,
        gateway: &Resource<KubernetesGateway>,
        api: &GatewayApi,
        snapshot: &ConfigSnapshot,
        out: &mut Converted,
    ) {
        let namespace = gateway.meta.namespace.as_str();
        let name = gateway.meta.name.as_str();
        let service_host = service_host(name, namespace);
        let start = self.listeners.len();
        let mut ports: BTreeMap<u32, ServicePort> = BTreeMap::new();
        for listener in &gateway.spec.listeners {
            let mut state = ListenerState {
                namespace: namespace.to_string(),
                gateway: name.to_string(),
                name: listener.name.clone(),
                port: listener.port,
                hostname: listener.hostname.clone(),
                from: listener
                    .allowed_routes
                    .as_ref()
                    .and_then(|allowed| allowed.namespaces.as_ref())
                    .map_or(FromNamespaces::Same, |namespaces| namespaces.from),
                kinds: Vec::new(),
                istio_gateway: None,
                conditions: Vec::new(),
                attached: 0,
            };
            match server(listener, gateway, api, snapshot) {
                Ok((server, kinds)) => {
                    let istio_name = format!("{name}-{GENERATED_SUFFIX}-{}", listener.name);
                    state.istio_gateway = Some(format!("{namespace}/{istio_name}"));
                    state.kinds = allowed_kinds(listener, kinds);
                    state.conditions = if state.kinds.is_empty() {
                        let message = "none of the kinds in allowedRoutes.kinds is supported by this listener's protocol";
                        vec![
                            Condition::ok("Accepted", "Accepted", "No errors found"),
                            Condition::failed("ResolvedRefs", "InvalidRouteKinds", message),
                            Condition::failed("Programmed", "Invalid", message),
                        ]
                    } else {
                        listener_ok()
                    };
                    ports
                        .entry(listener.port)
                        .or_insert_with(|| service_port(listener));
                    let spec = Gateway {
                        selector: gateway_labels(name),
                        servers: vec![server],
                    };
                    let parent = ("Gateway", &gateway.meta);
                    out.gateways
                        .push(generated(istio_name, parent, &gateway.origin, spec));
                }
                Err(conditions) => state.conditions = conditions,
            }
            self.listeners.push(state);
        }
        let assigned: Vec<String> = ports
            .keys()
            .map(|port| format!("{service_host}:{port}"))
            .collect();
        let programmed = programmed(gateway, &assigned);
        if !ports.is_empty() && !service_declared(snapshot, namespace, name) {
            let spec = ServiceEntry {
                hosts: vec![service_host],
                ports: ports.into_values().collect(),
                location: Location::MeshInternal,
                resolution: Resolution::Static,
                workload_selector: Some(WorkloadSelector {
                    labels: gateway_labels(name),
                }),
                ..ServiceEntry::default()
            };
            let service = generated(
                deployment_name(name),
                ("Gateway", &gateway.meta),
                &gateway.origin,
                spec,
            );
            out.service_entries.push(service);
        }
        self.gateways.push(GatewayState {
            namespace: namespace.to_string(),
            name: name.to_string(),
            api_version: api.api_version(Kind::KubernetesGateway, &gateway.meta),
            origin: gateway.origin.clone(),
            conditions: vec![
                Condition::ok("Accepted", "Accepted", "Resource accepted"),
                programmed,
            ],
            listeners: start..self.listeners.len(),
        });
    }

    /// Counts a route attached to listener `index`.
    pub(super) fn attach(&mut self, index: usize) {
        self.listeners[index].attached += 1;
    }

    /// Puts the Gateways' statuses first among `out.statuses`.
    pub(super) fn finish(self, out: &mut Converted) {
        let statuses: Vec<ObjectStatus> = self
            .gateways
            .into_iter()
            .map(|gateway| ObjectStatus {
                kind: "Gateway",
                api_version: gateway.api_version,
                namespace: gateway.namespace,
                name: gateway.name,
                origin: gateway.origin,
                body: StatusBody::Gateway {
                    conditions: gateway.conditions,
                    listeners: self.listeners[gateway.listeners]
                        .iter()
                        .map(|listener| ListenerStatus {
                            name: listener.name.clone(),
                            attached_routes: listener.attached,
                            supported_kinds: listener
                                .kinds
                                .iter()
                                .map(|kind| RouteKind { group: GROUP, kind })
                                .collect(),
                            conditions: listener.conditions.clone(),
                        })
                        .collect(),
                },
            })
            .collect();
        out.statuses.splice(0..0, statuses);
    }
}

/// The labels Istio gives the proxy it deploys for Gateway `name` (and
/// the generated Gateway and Service select).
pub fn gateway_labels(name: &str) -> crate::config::model::Labels {
    [(GATEWAY_NAME_LABEL.to_string(), name.to_string())].into()
}

/// Whether the config holds the Service Istio creates for Gateway `name`
/// (as `kubectl get svc` prints it from a cluster where Istio deployed the
/// gateway): that Service, with its target ports, then stands for the
/// gateway's proxy instead of a generated one.
fn service_declared(snapshot: &ConfigSnapshot, namespace: &str, name: &str) -> bool {
    let service = deployment_name(name);
    snapshot
        .services
        .iter()
        .any(|declared| declared.meta.namespace == namespace && declared.meta.name == service)
}

/// The host of the Service Istio creates for Gateway `name`: `<name>-istio`.
pub fn service_host(name: &str, namespace: &str) -> String {
    format!("{}.{namespace}.{DOMAIN_SUFFIX}", deployment_name(name))
}

fn listener_ok() -> Vec<Condition> {
    vec![
        Condition::ok("Accepted", "Accepted", "No errors found"),
        Condition::ok("ResolvedRefs", "ResolvedRefs", "No errors found"),
        Condition::ok("Programmed", "Programmed", "No errors found"),
    ]
}

/// The Gateway's Programmed condition: the Service's ports, and whether
/// the Service type asked for can be given.
fn programmed(gateway: &Resource<KubernetesGateway>, assigned: &[String]) -> Condition {
    if assigned.is_empty() {
        return Condition::failed(
            "Programmed",
            "Invalid",
            "no listener is valid: fix the listeners' conditions",
        );
    }
    let services = human_join(assigned);
    let service_type = gateway
        .meta
        .annotations
        .get(SERVICE_TYPE_ANNOTATION)
        .map_or("LoadBalancer", String::as_str);
    if service_type == "ClusterIP" {
        Condition::ok(
            "Programmed",
            "Programmed",
            format!("Resource programmed, assigned to service(s) {services}"),
        )
    } else {
        Condition::failed(
            "Programmed",
            "AddressNotAssigned",
            format!(
                "Assigned to service(s) {services}, but no {service_type} address can be assigned here: set the annotation {SERVICE_TYPE_ANNOTATION}: ClusterIP (the in-mesh Service is programmed)"
            ),
        )
    }
}

/// `a`, `a and b`, `a, b, and c`, as Istio joins service names.
fn human_join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

/// The fields of a Gateway this control plane cannot honour, and invalid
/// values: each leaves the Gateway out.
fn refused(gateway: &Resource<KubernetesGateway>) -> Vec<crate::config::ConfigError> {
    let kind = Kind::KubernetesGateway;
    let mut errors = Vec::new();
    let spec = &gateway.spec;
    if !spec.addresses.is_empty() {
        errors.push(unsupported(kind, gateway, "spec.addresses".into()));
    }
    if spec.infrastructure.is_some() {
        errors.push(unsupported(kind, gateway, "spec.infrastructure".into()));
    }
    if spec.backend_tls.is_some() {
        errors.push(unsupported(kind, gateway, "spec.backendTLS".into()));
    }
    if let Some(value) = gateway.meta.annotations.get(SERVICE_TYPE_ANNOTATION)
        && !SERVICE_TYPES.contains(&value.as_str())
    {
        errors.push(invalid(
            kind,
            gateway,
            format!("metadata.annotations[{SERVICE_TYPE_ANNOTATION}]"),
            format!("service type {value:?} is not a Kubernetes Service type"),
            "use ClusterIP, LoadBalancer or NodePort",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, listener) in spec.listeners.iter().enumerate() {
        let field = |name: &str| format!("spec.listeners[{i}].{name}");
        if !names.insert(listener.name.as_str()) {
            errors.push(invalid(
                kind,
                gateway,
                field("name"),
                format!("listener name {:?} is used twice", listener.name),
                "give each listener its own name",
            ));
        }
        if !(1..=65535).contains(&listener.port) {
            errors.push(invalid(
                kind,
                gateway,
                field("port"),
                format!("port {} is out of range", listener.port),
                "use a port between 1 and 65535",
            ));
        }
        if let Some(tls) = &listener.tls {
            for (key, value) in &tls.options {
                if key != TERMINATE_MODE_OPTION {
                    errors.push(unsupported(
                        kind,
                        gateway,
                        field(&format!("tls.options.{key}")),
                    ));
                } else if terminate_mode(value).is_none() {
                    errors.push(invalid(
                        kind,
                        gateway,
                        field(&format!("tls.options.{key}")),
                        format!("TLS terminate mode {value:?} is not known"),
                        "use SIMPLE, MUTUAL or ISTIO_MUTUAL",
                    ));
                }
            }
            if tls.frontend_validation.is_some() {
                errors.push(unsupported(kind, gateway, field("tls.frontendValidation")));
            }
        }
        let namespaces = listener
            .allowed_routes
            .as_ref()
            .and_then(|allowed| allowed.namespaces.as_ref());
        if let Some(namespaces) = namespaces
            && (namespaces.from == FromNamespaces::Selector || namespaces.selector.is_some())
        {
            // Namespaces and their labels are not part of the config read.
            errors.push(unsupported(
                kind,
                gateway,
                field("allowedRoutes.namespaces.selector"),
            ));
        }
    }
    errors
}

/// The listener option that sets how Istio terminates TLS.
const TERMINATE_MODE_OPTION: &str = "gateway.istio.io/tls-terminate-mode";

/// The server TLS mode a `gateway.istio.io/tls-terminate-mode` value asks for.
fn terminate_mode(value: &str) -> Option<ServerTlsMode> {
    match value {
        "SIMPLE" => Some(ServerTlsMode::Simple),
        "MUTUAL" => Some(ServerTlsMode::Mutual),
        "ISTIO_MUTUAL" => Some(ServerTlsMode::IstioMutual),
        _ => None,
    }
}

/// The route kinds a listener's protocol takes.
const HTTP_KINDS: [&str; 1] = ["HTTPRoute"];
const TLS_KINDS: [&str; 1] = ["TLSRoute"];
const TCP_KINDS: [&str; 1] = ["TCPRoute"];

/// The Istio server for `listener`, and the route kinds it takes; or the
/// listener's conditions when it cannot be programmed.
fn server(
    listener: &Listener,
    gateway: &Resource<KubernetesGateway>,
    api: &GatewayApi,
    snapshot: &ConfigSnapshot,
) -> Result<(Server, &'static [&'static str]), Vec<Condition>> {
    let mode = listener
        .tls
        .as_ref()
        .map(|tls| tls.mode.unwrap_or_default());
    let (protocol, kinds, tls) = match (listener.protocol.as_str(), mode) {
        ("HTTP", None) => ("HTTP", &HTTP_KINDS[..], None),
        ("HTTPS", Some(TlsMode::Terminate)) => (
            "HTTPS",
            &HTTP_KINDS[..],
            Some(terminate(listener, gateway, api, snapshot)?),
        ),
        ("TLS", Some(TlsMode::Passthrough)) => (
            "TLS",
            &TLS_KINDS[..],
            Some(ServerTlsSettings {
                mode: ServerTlsMode::Passthrough,
                ..ServerTlsSettings::default()
            }),
        ),
        ("TLS", Some(TlsMode::Terminate)) => (
            "TLS",
            &TCP_KINDS[..],
            Some(terminate(listener, gateway, api, snapshot)?),
        ),
        ("TCP", None) => ("TCP", &TCP_KINDS[..], None),
        (protocol @ ("HTTP" | "TCP"), Some(_)) => {
            return Err(listener_failed(
                "Accepted",
                "UnsupportedProtocol",
                format!("protocol {protocol} takes no tls; remove it or use HTTPS or TLS"),
            ));
        }
        (protocol @ ("HTTPS" | "TLS"), _) => {
            return Err(listener_failed(
                "Accepted",
                "UnsupportedProtocol",
                format!(
                    "protocol {protocol} needs tls.mode {}",
                    if protocol == "HTTPS" {
                        "Terminate"
                    } else {
                        "Passthrough or Terminate"
                    }
                ),
            ));
        }
        (protocol, _) => {
            return Err(listener_failed(
                "Accepted",
                "UnsupportedProtocol",
                format!("protocol {protocol} is not supported; use HTTP, HTTPS, TLS or TCP"),
            ));
        }
    };
    let host = listener.hostname.as_deref().unwrap_or("*");
    let namespace = match listener
        .allowed_routes
        .as_ref()
        .and_then(|allowed| allowed.namespaces.as_ref())
        .map_or(FromNamespaces::Same, |namespaces| namespaces.from)
    {
        FromNamespaces::All => "*",
        _ => gateway.meta.namespace.as_str(),
    };
    let server = Server {
        port: ServicePort {
            number: listener.port,
            protocol: Some(protocol.to_string()),
            name: listener.name.clone(),
            target_port: None,
            target_port_name: None,
        },
        hosts: vec![format!("{namespace}/{host}")],
        tls,
        name: String::new(),
    };
    Ok((server, kinds))
}

/// The listener's conditions when `kind` fails for `reason`: the others
/// fail with it, as Istio reports a listener that is not programmed.
fn listener_failed(kind: &'static str, reason: &str, message: String) -> Vec<Condition> {
    ["Accepted", "ResolvedRefs", "Programmed"]
        .into_iter()
        .map(|each| {
            if each == kind {
                Condition::failed(each, reason, message.clone())
            } else if each == "Programmed" {
                Condition::failed(each, "Invalid", "Bad TLS configuration or invalid listener")
            } else {
                Condition::ok(each, each, "No errors found")
            }
        })
        .collect()
}

/// TLS termination: with the mesh's certificates (`ISTIO_MUTUAL`, asked
/// by the `gateway.istio.io/tls-terminate-mode` option), or with the
/// listener's certificate, a Secret of the Gateway's namespace (proxies
/// read the Secrets of their own namespace).
fn terminate(
    listener: &Listener,
    gateway: &Resource<KubernetesGateway>,
    api: &GatewayApi,
    snapshot: &ConfigSnapshot,
) -> Result<ServerTlsSettings, Vec<Condition>> {
    let mode = listener
        .tls
        .as_ref()
        .and_then(|tls| tls.options.get(TERMINATE_MODE_OPTION))
        .and_then(|value| terminate_mode(value))
        .unwrap_or(ServerTlsMode::Simple);
    if mode == ServerTlsMode::IstioMutual {
        return Ok(ServerTlsSettings {
            mode,
            ..ServerTlsSettings::default()
        });
    }
    let refs = listener
        .tls
        .as_ref()
        .map(|tls| tls.certificate_refs.as_slice())
        .unwrap_or_default();
    let bad = |message: String| listener_failed("ResolvedRefs", "InvalidCertificateRef", message);
    let [reference] = refs else {
        return Err(bad(format!(
            "tls.certificateRefs holds {} references; give exactly one Secret",
            refs.len()
        )));
    };
    let (group, kind) = reference.group_kind();
    if !(group.is_empty() || group == "core") || kind != "Secret" {
        return Err(bad(format!(
            "certificateRef {group}/{kind} is not supported; refer to a Secret"
        )));
    }
    let own = gateway.meta.namespace.as_str();
    let namespace = namespace_of(reference.namespace.as_deref(), own);
    if namespace != own {
        let to = ("", "Secret", reference.name.as_str(), namespace);
        if !api.granted(("Gateway", own), to) {
            return Err(listener_failed(
                "ResolvedRefs",
                "RefNotPermitted",
                format!(
                    "certificateRef to Secret {namespace}/{} is not permitted by any ReferenceGrant",
                    reference.name
                ),
            ));
        }
        return Err(bad(format!(
            "Secret {namespace}/{} is in another namespace; the gateway proxy reads the Secrets of its own namespace ({own}): put the Secret there",
            reference.name
        )));
    }
    let exists = snapshot
        .secrets
        .iter()
        .any(|secret| secret.meta.namespace == own && secret.meta.name == reference.name);
    if !exists {
        return Err(bad(format!(
            "invalid certificate reference Secret {own}/{}: not found",
            reference.name
        )));
    }
    Ok(ServerTlsSettings {
        mode,
        credential_name: Some(reference.name.clone()),
        ..ServerTlsSettings::default()
    })
}

/// The route kinds a listener takes: its protocol's, narrowed by
/// `allowedRoutes.kinds`.
fn allowed_kinds(listener: &Listener, protocol_kinds: &[&'static str]) -> Vec<&'static str> {
    let asked = listener
        .allowed_routes
        .as_ref()
        .map(|allowed| allowed.kinds.as_slice())
        .unwrap_or_default();
    if asked.is_empty() {
        return protocol_kinds.to_vec();
    }
    protocol_kinds
        .iter()
        .copied()
        .filter(|kind| {
            asked.iter().any(|asked| {
                asked.kind == *kind && asked.group.as_deref().is_none_or(|group| group == GROUP)
            })
        })
        .collect()
}

/// The port of the Gateway's Service for `listener`.
fn service_port(listener: &Listener) -> ServicePort {
    ServicePort {
        number: listener.port,
        protocol: Some(listener.protocol.clone()),
        name: listener.name.clone(),
        target_port: None,
        target_port_name: None,
    }
}
