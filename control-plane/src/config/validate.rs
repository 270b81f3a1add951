//! Checks a loaded [`ConfigSnapshot`] for mistakes a user can fix: the
//! problems Istio's own validation rejects, references to things that do not
//! exist (subsets, gateways), and conflicts between resources.
//!
//! Pure: no I/O. Errors come out in snapshot order, resource by resource.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use super::error::{ConfigError, Location, Problem};
use super::model::{
    Destination, DestinationRule, Gateway, HttpMatchRequest, Resolution, ServiceEntry, ServicePort,
    Sidecar, StringMatch, TrafficPolicy, VirtualService, WorkloadEntry,
};
use super::{ConfigSnapshot, Kind, Meta, Origin, Resource};

/// The protocols Istio knows for a port (compared case-insensitively).
pub const PROTOCOLS: [&str; 12] = [
    "HTTP",
    "HTTPS",
    "HTTP2",
    "GRPC",
    "GRPC-WEB",
    "HTTP_PROXY",
    "TCP",
    "TLS",
    "UDP",
    "MONGO",
    "MYSQL",
    "REDIS",
];

/// The gateway name that stands for every sidecar of the mesh.
pub const MESH_GATEWAY: &str = "mesh";

/// Every problem found in `snapshot`; empty when it is fine.
pub fn validate(snapshot: &ConfigSnapshot) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    duplicates(snapshot, &mut errors);
    for resource in &snapshot.service_entries {
        let mut check = Check::new(Kind::ServiceEntry, resource, &mut errors);
        check.meta();
        check.service_entry(&resource.spec);
    }
    service_entry_conflicts(snapshot, &mut errors);
    for resource in &snapshot.virtual_services {
        let mut check = Check::new(Kind::VirtualService, resource, &mut errors);
        check.meta();
        check.virtual_service(&resource.spec, snapshot);
    }
    for resource in &snapshot.destination_rules {
        let mut check = Check::new(Kind::DestinationRule, resource, &mut errors);
        check.meta();
        check.destination_rule(&resource.spec);
    }
    for resource in &snapshot.gateways {
        let mut check = Check::new(Kind::Gateway, resource, &mut errors);
        check.meta();
        check.gateway(&resource.spec);
    }
    for resource in &snapshot.sidecars {
        let mut check = Check::new(Kind::Sidecar, resource, &mut errors);
        check.meta();
        check.sidecar(&resource.spec);
    }
    for resource in &snapshot.workload_entries {
        let mut check = Check::new(Kind::WorkloadEntry, resource, &mut errors);
        check.meta();
        check.workload_entry(&resource.spec, "spec", false);
    }
    errors
}

/// What a VirtualService's references are resolved against.
struct Scope<'a> {
    snapshot: &'a ConfigSnapshot,
    /// The VirtualService's exportTo.
    export_to: &'a [String],
}

/// Checks of one resource, reporting against its location.
struct Check<'a> {
    kind: Kind,
    meta: &'a Meta,
    origin: &'a Origin,
    errors: &'a mut Vec<ConfigError>,
}

impl<'a> Check<'a> {
    fn new<T>(kind: Kind, resource: &'a Resource<T>, errors: &'a mut Vec<ConfigError>) -> Self {
        Self {
            kind,
            meta: &resource.meta,
            origin: &resource.origin,
            errors,
        }
    }

    fn report(&mut self, field: impl Into<String>, problem: Problem) {
        let location = Location::of(self.kind, self.meta, self.origin).at(field);
        self.errors.push(ConfigError::new(location, problem));
    }

    fn meta(&mut self) {
        let name = &self.meta.name;
        if name.is_empty() {
            self.report("metadata.name", Problem::MissingName);
        } else if !is_dns_subdomain(name) {
            let value = name.clone();
            self.report(
                "metadata.name",
                Problem::InvalidName {
                    what: "name",
                    value,
                },
            );
        }
        if !is_dns_label(&self.meta.namespace) {
            let value = self.meta.namespace.clone();
            self.report(
                "metadata.namespace",
                Problem::InvalidName {
                    what: "namespace",
                    value,
                },
            );
        }
    }

    fn hosts(&mut self, field: &str, hosts: &[String]) {
        if hosts.is_empty() {
            self.report(field, Problem::NoHosts);
        }
        for (index, host) in hosts.iter().enumerate() {
            self.host(&format!("{field}[{index}]"), host);
        }
    }

    fn host(&mut self, field: &str, host: &str) {
        if host.is_empty() {
            self.report(field, Problem::EmptyHost);
        } else if !is_host(host) {
            self.report(
                field,
                Problem::InvalidHost {
                    host: host.to_string(),
                },
            );
        }
    }

    fn port_number(&mut self, field: impl Into<String>, number: u32) {
        if !(1..=65535).contains(&number) {
            self.report(field, Problem::PortOutOfRange { number });
        }
    }

    /// A port's number, protocol and target port; `require_protocol` for
    /// Gateway servers, where Istio needs it.
    fn port(&mut self, field: &str, port: &ServicePort, require_protocol: bool) {
        self.port_number(format!("{field}.number"), port.number);
        match &port.protocol {
            Some(protocol) if !is_protocol(protocol) => {
                let protocol = protocol.clone();
                self.report(
                    format!("{field}.protocol"),
                    Problem::UnknownProtocol { protocol },
                );
            }
            None if require_protocol => {
                self.report(format!("{field}.protocol"), Problem::MissingProtocol)
            }
            _ => {}
        }
        if let Some(target) = port.target_port {
            self.port_number(format!("{field}.targetPort"), target);
        }
    }

    /// Ports of a list, each once by number and by name.
    fn port_list(&mut self, field: &str, ports: &[ServicePort]) {
        let mut numbers: HashMap<u32, String> = HashMap::new();
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, port) in ports.iter().enumerate() {
            let here = format!("{field}[{index}]");
            self.port(&here, port, false);
            match numbers.entry(port.number) {
                Entry::Occupied(first) => {
                    let first = first.get().clone();
                    self.report(
                        format!("{here}.number"),
                        Problem::DuplicatePort {
                            number: port.number,
                            first,
                        },
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(here.clone());
                }
            }
            if port.name.is_empty() {
                continue;
            }
            match names.entry(port.name.as_str()) {
                Entry::Occupied(first) => {
                    let first = first.get().clone();
                    let name = port.name.clone();
                    self.report(
                        format!("{here}.name"),
                        Problem::DuplicatePortName { name, first },
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(here);
                }
            }
        }
    }

    fn service_entry(&mut self, spec: &ServiceEntry) {
        self.hosts("spec.hosts", &spec.hosts);
        for (index, address) in spec.addresses.iter().enumerate() {
            if !is_ip_or_cidr(address) {
                let address = address.clone();
                self.report(
                    format!("spec.addresses[{index}]"),
                    Problem::InvalidAddress { address },
                );
            }
        }
        self.port_list("spec.ports", &spec.ports);
        if !spec.endpoints.is_empty() && spec.workload_selector.is_some() {
            self.report("spec.workloadSelector", Problem::EndpointsAndSelector);
        }
        let is_static = spec.resolution == Resolution::Static;
        if is_static && spec.endpoints.is_empty() && spec.workload_selector.is_none() {
            self.report("spec.resolution", Problem::StaticWithoutEndpoints);
        }
        let dns = match spec.resolution {
            Resolution::Dns => Some("DNS"),
            Resolution::DnsRoundRobin => Some("DNS_ROUND_ROBIN"),
            Resolution::None | Resolution::Static => None,
        };
        if let Some(resolution) = dns
            && spec.endpoints.is_empty()
        {
            for (index, host) in spec.hosts.iter().enumerate() {
                if host.starts_with('*') {
                    let host = host.clone();
                    self.report(
                        format!("spec.hosts[{index}]"),
                        Problem::WildcardWithDns { resolution, host },
                    );
                }
            }
        }
        let port_names: Vec<&str> = spec.ports.iter().map(|port| port.name.as_str()).collect();
        for (index, endpoint) in spec.endpoints.iter().enumerate() {
            let field = format!("spec.endpoints[{index}]");
            self.workload_entry(endpoint, &field, is_static);
            for name in endpoint.ports.keys() {
                if !port_names.contains(&name.as_str()) {
                    let name = name.clone();
                    self.report(
                        format!("{field}.ports.{name}"),
                        Problem::UnknownEndpointPort { name },
                    );
                }
            }
        }
    }

    /// A WorkloadEntry, alone (`field` = `spec`) or as a ServiceEntry endpoint.
    fn workload_entry(&mut self, entry: &WorkloadEntry, field: &str, needs_ip: bool) {
        let address = entry.address.as_str();
        if address.is_empty() {
            // Without an address, a network names the gateway that reaches it.
            if entry.network.is_empty() {
                self.report(format!("{field}.address"), Problem::EndpointWithoutAddress);
            }
        } else if needs_ip && !address.starts_with("unix://") && address.parse::<IpAddr>().is_err()
        {
            let address = address.to_string();
            self.report(
                format!("{field}.address"),
                Problem::StaticEndpointNotIp { address },
            );
        }
        for (name, number) in &entry.ports {
            self.port_number(format!("{field}.ports.{name}"), *number);
        }
    }

    fn virtual_service(&mut self, spec: &VirtualService, snapshot: &ConfigSnapshot) {
        let scope = Scope {
            snapshot,
            export_to: &spec.export_to,
        };
        self.hosts("spec.hosts", &spec.hosts);
        self.gateway_refs("spec.gateways", &spec.gateways, &scope);
        for (index, route) in spec.http.iter().enumerate() {
            let field = format!("spec.http[{index}]");
            for (at, request) in route.matches.iter().enumerate() {
                self.http_match(&format!("{field}.match[{at}]"), request, &scope);
            }
            if route.route.is_empty() && route.redirect.is_none() {
                self.report(
                    format!("{field}.route"),
                    Problem::NoDestinations { http: true },
                );
            }
            let weights: Vec<Option<u32>> = route.route.iter().map(|to| to.weight).collect();
            self.weights(&format!("{field}.route"), &weights);
            for (at, to) in route.route.iter().enumerate() {
                self.destination(
                    &format!("{field}.route[{at}].destination"),
                    &to.destination,
                    &scope,
                );
            }
            if let Some(port) = route.redirect.as_ref().and_then(|redirect| redirect.port) {
                self.port_number(format!("{field}.redirect.port"), port);
            }
        }
        for (index, route) in spec.tls.iter().enumerate() {
            let field = format!("spec.tls[{index}]");
            if route.matches.is_empty() {
                self.report(format!("{field}.match"), Problem::TlsRouteWithoutMatch);
            }
            for (at, attributes) in route.matches.iter().enumerate() {
                let here = format!("{field}.match[{at}]");
                if attributes.sni_hosts.is_empty() {
                    self.report(format!("{here}.sniHosts"), Problem::TlsMatchWithoutSni);
                }
                for (sni, host) in attributes.sni_hosts.iter().enumerate() {
                    self.host(&format!("{here}.sniHosts[{sni}]"), host);
                }
                if let Some(port) = attributes.port {
                    self.port_number(format!("{here}.port"), port);
                }
                self.gateway_refs(&format!("{here}.gateways"), &attributes.gateways, &scope);
            }
            self.routes(
                &field,
                route.route.iter().map(|to| (&to.destination, to.weight)),
                &scope,
            );
        }
        for (index, route) in spec.tcp.iter().enumerate() {
            let field = format!("spec.tcp[{index}]");
            for (at, attributes) in route.matches.iter().enumerate() {
                let here = format!("{field}.match[{at}]");
                if let Some(port) = attributes.port {
                    self.port_number(format!("{here}.port"), port);
                }
                self.gateway_refs(&format!("{here}.gateways"), &attributes.gateways, &scope);
            }
            self.routes(
                &field,
                route.route.iter().map(|to| (&to.destination, to.weight)),
                &scope,
            );
        }
    }

    /// The destinations of a TLS or TCP route.
    fn routes<'d>(
        &mut self,
        field: &str,
        routes: impl ExactSizeIterator<Item = (&'d Destination, Option<u32>)>,
        scope: &Scope<'_>,
    ) {
        if routes.len() == 0 {
            self.report(
                format!("{field}.route"),
                Problem::NoDestinations { http: false },
            );
        }
        let mut weights = Vec::new();
        for (at, (destination, weight)) in routes.enumerate() {
            self.destination(
                &format!("{field}.route[{at}].destination"),
                destination,
                scope,
            );
            weights.push(weight);
        }
        self.weights(&format!("{field}.route"), &weights);
    }

    fn weights(&mut self, field: &str, weights: &[Option<u32>]) {
        if weights.len() > 1 {
            let sum: u64 = weights
                .iter()
                .map(|weight| u64::from(weight.unwrap_or(0)))
                .sum();
            if sum != 100 {
                self.report(field, Problem::WeightSum { sum });
            }
        }
    }

    fn destination(&mut self, field: &str, destination: &Destination, scope: &Scope<'_>) {
        if destination.host.is_empty() {
            self.report(format!("{field}.host"), Problem::DestinationWithoutHost);
            return;
        }
        self.host(&format!("{field}.host"), &destination.host);
        if let Some(port) = destination.port {
            self.port_number(format!("{field}.port.number"), port.number);
        }
        let subset = destination.subset.as_str();
        if !subset.is_empty()
            && !subset_defined(scope, &self.meta.namespace, &destination.host, subset)
        {
            let problem = Problem::UnknownSubset {
                host: destination.host.clone(),
                subset: subset.to_string(),
            };
            self.report(format!("{field}.subset"), problem);
        }
    }

    fn http_match(&mut self, field: &str, request: &HttpMatchRequest, scope: &Scope<'_>) {
        let singles = [
            ("uri", &request.uri),
            ("scheme", &request.scheme),
            ("method", &request.method),
            ("authority", &request.authority),
        ];
        for (name, matcher) in singles {
            if let Some(matcher) = matcher {
                self.string_match(&format!("{field}.{name}"), matcher);
            }
        }
        let maps = [
            ("headers", &request.headers),
            ("queryParams", &request.query_params),
            ("withoutHeaders", &request.without_headers),
        ];
        for (name, map) in maps {
            for (key, matcher) in map {
                self.string_match(&format!("{field}.{name}.{key}"), matcher);
            }
        }
        if let Some(port) = request.port {
            self.port_number(format!("{field}.port"), port);
        }
        self.gateway_refs(&format!("{field}.gateways"), &request.gateways, scope);
    }

    fn string_match(&mut self, field: &str, matcher: &StringMatch) {
        if let StringMatch::Regex(regex) = matcher
            && let Err(error) = regex::Regex::new(regex)
        {
            // The regex crate's message spans several lines; keep its last.
            let text = error.to_string();
            let message = text.lines().last().unwrap_or_default().trim().to_string();
            let problem = Problem::BadRegex {
                regex: regex.clone(),
                message,
            };
            self.report(format!("{field}.regex"), problem);
        }
    }

    fn gateway_refs(&mut self, field: &str, gateways: &[String], scope: &Scope<'_>) {
        for (index, gateway) in gateways.iter().enumerate() {
            if gateway == MESH_GATEWAY {
                continue;
            }
            let (namespace, name) = gateway_ref(gateway, &self.meta.namespace);
            let exists = scope
                .snapshot
                .gateways
                .iter()
                .any(|known| known.meta.namespace == namespace && known.meta.name == name);
            if !exists {
                let problem = Problem::UnknownGateway {
                    gateway: gateway.clone(),
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                };
                self.report(format!("{field}[{index}]"), problem);
            }
        }
    }

    fn destination_rule(&mut self, spec: &DestinationRule) {
        self.host("spec.host", &spec.host);
        if let Some(policy) = &spec.traffic_policy {
            self.traffic_policy("spec.trafficPolicy", policy);
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, subset) in spec.subsets.iter().enumerate() {
            let field = format!("spec.subsets[{index}]");
            if subset.name.is_empty() {
                self.report(format!("{field}.name"), Problem::SubsetWithoutName);
            } else if let Some(first) = names.get(subset.name.as_str()) {
                let problem = Problem::DuplicateSubset {
                    name: subset.name.clone(),
                    first: first.clone(),
                };
                self.report(format!("{field}.name"), problem);
            } else {
                names.insert(&subset.name, field.clone());
            }
            if let Some(policy) = &subset.traffic_policy {
                self.traffic_policy(&format!("{field}.trafficPolicy"), policy);
            }
        }
    }

    fn traffic_policy(&mut self, field: &str, policy: &TrafficPolicy) {
        for (index, setting) in policy.port_level_settings.iter().enumerate() {
            if let Some(port) = setting.port {
                self.port_number(
                    format!("{field}.portLevelSettings[{index}].port.number"),
                    port.number,
                );
            }
        }
    }

    fn gateway(&mut self, spec: &Gateway) {
        if spec.selector.is_empty() {
            self.report("spec.selector", Problem::EmptySelector);
        }
        if spec.servers.is_empty() {
            self.report("spec.servers", Problem::NoServers);
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, server) in spec.servers.iter().enumerate() {
            let field = format!("spec.servers[{index}]");
            self.port(&format!("{field}.port"), &server.port, true);
            let protocol = server
                .port
                .protocol
                .as_deref()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if matches!(protocol.as_str(), "HTTPS" | "TLS") && server.tls.is_none() {
                self.report(
                    format!("{field}.tls"),
                    Problem::ServerWithoutTls {
                        protocol: protocol.clone(),
                    },
                );
            }
            if server.hosts.is_empty() {
                self.report(format!("{field}.hosts"), Problem::NoHosts);
            }
            for (at, host) in server.hosts.iter().enumerate() {
                let (_, dns_name) = split_namespace(host);
                self.host(&format!("{field}.hosts[{at}]"), dns_name);
            }
            if !server.port.name.is_empty() {
                match names.entry(server.port.name.as_str()) {
                    Entry::Occupied(first) => {
                        let first = first.get().clone();
                        let name = server.port.name.clone();
                        self.report(
                            format!("{field}.port.name"),
                            Problem::DuplicatePortName { name, first },
                        );
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(format!("{field}.port"));
                    }
                }
            }
            for (other_index, other) in spec.servers[..index].iter().enumerate() {
                if other.port.number != server.port.number {
                    continue;
                }
                let other_protocol = other
                    .port
                    .protocol
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let reason = if protocol_family(&protocol) != protocol_family(&other_protocol) {
                    Some(format!(
                        "protocols {other_protocol} and {protocol} cannot share a port"
                    ))
                } else {
                    server
                        .hosts
                        .iter()
                        .find(|host| other.hosts.contains(host))
                        .map(|host| format!("both serve host {host}"))
                };
                if let Some(reason) = reason {
                    let problem = Problem::ServerPortConflict {
                        number: server.port.number,
                        first: format!("spec.servers[{other_index}]"),
                        reason,
                    };
                    self.report(format!("{field}.port.number"), problem);
                }
            }
        }
    }

    fn sidecar(&mut self, spec: &Sidecar) {
        for (index, listener) in spec.egress.iter().enumerate() {
            let field = format!("spec.egress[{index}]");
            if let Some(port) = &listener.port {
                self.port(&format!("{field}.port"), port, false);
            }
            if listener.hosts.is_empty() {
                self.report(format!("{field}.hosts"), Problem::EgressWithoutHosts);
            }
            for (at, host) in listener.hosts.iter().enumerate() {
                let here = format!("{field}.hosts[{at}]");
                match split_namespace(host) {
                    (Some(_), dns_name) => self.host(&here, dns_name),
                    (None, _) => {
                        let host = host.clone();
                        self.report(here, Problem::EgressHostWithoutNamespace { host });
                    }
                }
            }
        }
    }
}

/// The same kind, namespace and name defined twice, anywhere.
fn duplicates(snapshot: &ConfigSnapshot, errors: &mut Vec<ConfigError>) {
    fn check<T>(kind: Kind, resources: &[Resource<T>], errors: &mut Vec<ConfigError>) {
        let mut seen: HashMap<(&str, &str), &Origin> = HashMap::new();
        for resource in resources {
            let meta = &resource.meta;
            if meta.name.is_empty() {
                continue;
            }
            match seen.entry((meta.namespace.as_str(), meta.name.as_str())) {
                Entry::Occupied(first) => {
                    let problem = Problem::Duplicate {
                        kind: kind.as_str().to_string(),
                        namespace: meta.namespace.clone(),
                        name: meta.name.clone(),
                        first: describe(first.get()),
                    };
                    errors.push(ConfigError::new(
                        Location::resource(kind, resource),
                        problem,
                    ));
                }
                Entry::Vacant(slot) => {
                    slot.insert(&resource.origin);
                }
            }
        }
    }
    check(Kind::ServiceEntry, &snapshot.service_entries, errors);
    check(Kind::VirtualService, &snapshot.virtual_services, errors);
    check(Kind::DestinationRule, &snapshot.destination_rules, errors);
    check(Kind::Gateway, &snapshot.gateways, errors);
    check(Kind::Sidecar, &snapshot.sidecars, errors);
    check(Kind::WorkloadEntry, &snapshot.workload_entries, errors);
}

/// Two ServiceEntries of one namespace giving one host and port different
/// protocols: Istio would pick one of them arbitrarily.
fn service_entry_conflicts(snapshot: &ConfigSnapshot, errors: &mut Vec<ConfigError>) {
    struct Seen<'a> {
        protocol: String,
        resource: &'a Resource<ServiceEntry>,
    }
    let mut seen: HashMap<(&str, String, u32), Seen<'_>> = HashMap::new();
    for resource in &snapshot.service_entries {
        for host in &resource.spec.hosts {
            for (index, port) in resource.spec.ports.iter().enumerate() {
                let Some(protocol) = &port.protocol else {
                    continue;
                };
                let protocol = protocol.to_ascii_uppercase();
                let key = (
                    resource.meta.namespace.as_str(),
                    host.to_ascii_lowercase(),
                    port.number,
                );
                match seen.entry(key) {
                    Entry::Occupied(first) => {
                        let first = first.get();
                        if first.protocol == protocol || std::ptr::eq(first.resource, resource) {
                            continue;
                        }
                        let other = &first.resource.meta;
                        let problem = Problem::ConflictingProtocol {
                            host: host.clone(),
                            number: port.number,
                            protocol,
                            other_protocol: first.protocol.clone(),
                            other: format!(
                                "ServiceEntry {}/{} ({})",
                                other.namespace,
                                other.name,
                                describe(&first.resource.origin)
                            ),
                        };
                        let location = Location::resource(Kind::ServiceEntry, resource)
                            .at(format!("spec.ports[{index}].protocol"));
                        errors.push(ConfigError::new(location, problem));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(Seen { protocol, resource });
                    }
                }
            }
        }
    }
}

fn describe(origin: &Origin) -> String {
    format!("{} document {}", origin.file.display(), origin.document + 1)
}

/// Whether a DestinationRule visible to a VirtualService in `namespace` defines
/// `subset` for `host`. A rule counts when it is exported to the
/// VirtualService's namespace, or sits in a namespace the VirtualService is
/// exported to (its clients there see both).
fn subset_defined(scope: &Scope<'_>, namespace: &str, host: &str, subset: &str) -> bool {
    let domain = &scope.snapshot.mesh.trust_domain;
    let wanted = fqdn(host, namespace, domain);
    scope.snapshot.destination_rules.iter().any(|rule| {
        let rule_namespace = &rule.meta.namespace;
        let visible = exported_to(&rule.spec.export_to, rule_namespace, namespace)
            || exported_to(scope.export_to, namespace, rule_namespace);
        visible
            && host_matches(&fqdn(&rule.spec.host, rule_namespace, domain), &wanted)
            && rule
                .spec
                .subsets
                .iter()
                .any(|defined| defined.name == subset)
    })
}

/// A short name (`reviews`) completed as Kubernetes resolves it from
/// `namespace`; anything with a dot is already fully qualified.
fn fqdn(host: &str, namespace: &str, domain: &str) -> String {
    if host.contains('.') || host.starts_with('*') {
        host.to_ascii_lowercase()
    } else {
        format!("{}.{namespace}.svc.{domain}", host.to_ascii_lowercase())
    }
}

/// Whether a rule for `pattern` (possibly `*.example.com` or `*`) applies to `host`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => pattern == host,
    }
}

/// Istio's exportTo: empty or `*` is everywhere, `.` the owner's namespace,
/// `~` nowhere, otherwise the listed namespaces.
fn exported_to(export_to: &[String], owner: &str, viewer: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|to| match to.as_str() {
            "*" => true,
            "." => owner == viewer,
            other => other == viewer,
        })
}

/// The Gateway a VirtualService names: `ns/name`, the older
/// `name.ns.svc.<domain>` form, or a bare name in the VirtualService's namespace.
fn gateway_ref<'a>(gateway: &'a str, namespace: &'a str) -> (&'a str, &'a str) {
    if let Some((namespace, name)) = gateway.split_once('/') {
        return (namespace, name);
    }
    let mut labels = gateway.split('.');
    match (labels.next(), labels.next()) {
        (Some(name), Some(namespace)) => (namespace, name),
        _ => (namespace, gateway),
    }
}

/// Splits `ns/host` (Gateway server and Sidecar hosts) into its parts.
fn split_namespace(host: &str) -> (Option<&str>, &str) {
    match host.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, host),
    }
}

fn is_protocol(protocol: &str) -> bool {
    PROTOCOLS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(protocol))
}

/// Protocols that can share one Gateway port: HTTP ones on one plain-text
/// listener, TLS ones told apart by SNI; any other protocol only with itself.
fn protocol_family(protocol: &str) -> &str {
    match protocol {
        "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY" => "HTTP",
        "HTTPS" | "TLS" => "TLS",
        other => other,
    }
}

/// A DNS name, optionally with a wildcard first label (`*` or `*.x.y`), or
/// an IP address.
fn is_host(host: &str) -> bool {
    if host == "*" || host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A Kubernetes namespace: an RFC 1123 label.
fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A Kubernetes object name: an RFC 1123 subdomain.
fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

fn is_ip_or_cidr(text: &str) -> bool {
    match text.split_once('/') {
        None => text.parse::<IpAddr>().is_ok(),
        Some((address, bits)) => match (address.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(bits)) => bits <= 32,
            (Ok(IpAddr::V6(_)), Ok(bits)) => bits <= 128,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests;
