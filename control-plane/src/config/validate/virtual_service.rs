//! VirtualService checks: hosts, routes and their destinations, matches, and
//! the gateways and DestinationRule subsets they refer to.

use super::check::Check;
use super::syntax::is_dns_label;
use crate::config::ConfigSnapshot;
use crate::config::error::Problem;
use crate::config::gateway_api::convert::is_generated;
use crate::config::gateways::{MESH_GATEWAY, gateway_named};
use crate::config::hosts;
use crate::config::model::{
    Destination, HttpMatchRequest, RouteDestination, StringMatch, VirtualService,
};
use shared::regex_limit::RegexError;

/// What a VirtualService's references are resolved against.
struct Scope<'a> {
    snapshot: &'a ConfigSnapshot,
    /// The VirtualService's exportTo.
    export_to: &'a [String],
}

impl Check<'_> {
    pub(super) fn virtual_service(&mut self, spec: &VirtualService, snapshot: &ConfigSnapshot) {
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
            if let Some(mirror) = &route.mirror {
                self.destination(&format!("{field}.mirror"), mirror, &scope);
            }
            for (at, mirror) in route.mirrors.iter().enumerate() {
                self.destination(
                    &format!("{field}.mirrors[{at}].destination"),
                    &mirror.destination,
                    &scope,
                );
            }
            self.http_policy(&field, route);
            self.route_headers(&field, route);
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
                self.l4_match(&here, attributes.port, &attributes.gateways, &scope);
                self.source_namespace(
                    &format!("{here}.sourceNamespace"),
                    &attributes.source_namespace,
                );
            }
            self.routes(&field, &route.route, &scope);
        }
        for (index, route) in spec.tcp.iter().enumerate() {
            let field = format!("spec.tcp[{index}]");
            for (at, attributes) in route.matches.iter().enumerate() {
                let here = format!("{field}.match[{at}]");
                self.l4_match(&here, attributes.port, &attributes.gateways, &scope);
            }
            self.routes(&field, &route.route, &scope);
        }
    }

    /// A match's `sourceNamespace`: empty, or a namespace name.
    fn source_namespace(&mut self, field: &str, namespace: &str) {
        if !namespace.is_empty() && !is_dns_label(namespace) {
            self.report(
                field,
                Problem::InvalidName {
                    what: "sourceNamespace",
                    value: namespace.to_string(),
                },
            );
        }
    }

    /// The port and gateways a TLS or TCP route's match `here` names.
    fn l4_match(&mut self, here: &str, port: Option<u32>, gateways: &[String], scope: &Scope<'_>) {
        if let Some(port) = port {
            self.port_number(format!("{here}.port"), port);
        }
        self.gateway_refs(&format!("{here}.gateways"), gateways, scope);
    }

    /// The destinations of a TLS or TCP route.
    fn routes(&mut self, field: &str, routes: &[RouteDestination], scope: &Scope<'_>) {
        if routes.is_empty() {
            self.report(
                format!("{field}.route"),
                Problem::NoDestinations { http: false },
            );
        }
        for (at, to) in routes.iter().enumerate() {
            self.destination(
                &format!("{field}.route[{at}].destination"),
                &to.destination,
                scope,
            );
        }
        let weights: Vec<Option<u32>> = routes.iter().map(|to| to.weight).collect();
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
            // istiod generates a destination without host for a Gateway API
            // backend that does not resolve: no cluster serves it.
            if !is_generated(self.meta) {
                self.report(format!("{field}.host"), Problem::DestinationWithoutHost);
            }
            return;
        }
        self.host(&format!("{field}.host"), &destination.host);
        if let Some(port) = destination.port {
            self.port_number(format!("{field}.port.number"), port.number);
        }
        if let Some(owners) = hidden_host(scope, &self.meta.namespace, &destination.host) {
            let problem = Problem::HostNotExported {
                host: destination.host.clone(),
                namespace: self.meta.namespace.clone(),
                owners,
            };
            self.report(format!("{field}.host"), problem);
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
                let here = format!("{field}.{name}.{key}");
                if name != "queryParams" {
                    self.match_header_name(&here, key);
                }
                self.string_match(&here, matcher);
            }
        }
        if let Some(port) = request.port {
            self.port_number(format!("{field}.port"), port);
        }
        self.source_namespace(
            &format!("{field}.sourceNamespace"),
            &request.source_namespace,
        );
        self.gateway_refs(&format!("{field}.gateways"), &request.gateways, scope);
    }

    pub(super) fn string_match(&mut self, field: &str, matcher: &StringMatch) {
        let StringMatch::Regex(regex) = matcher else {
            return;
        };
        let problem = match shared::regex_limit::compile(regex) {
            Ok(_) => return,
            Err(RegexError::Syntax(message)) => Problem::BadRegex {
                regex: regex.clone(),
                message,
            },
            Err(error) => Problem::RegexTooLarge {
                start: regex.chars().take(32).collect(),
                reason: error.to_string(),
            },
        };
        self.report(format!("{field}.regex"), problem);
    }

    fn gateway_refs(&mut self, field: &str, gateways: &[String], scope: &Scope<'_>) {
        for (index, gateway) in gateways.iter().enumerate() {
            if gateway == MESH_GATEWAY {
                continue;
            }
            let (namespace, name) = gateway_named(gateway, &self.meta.namespace);
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
}

/// The ServiceEntries and Kubernetes Services declaring `host` when none
/// of them is exported to `namespace` (a VirtualService there routes to a service its clients
/// cannot see); `None` when one is visible or none declares the host.
fn hidden_host(scope: &Scope<'_>, namespace: &str, host: &str) -> Option<String> {
    let wanted = hosts::resolve(host, namespace);
    let snapshot = scope.snapshot;
    let declaring: Vec<_> = snapshot
        .service_entries
        .iter()
        .map(|entry| ("ServiceEntry", entry))
        .chain(
            snapshot
                .kubernetes_service_entries()
                .iter()
                .map(|entry| ("Service", entry)),
        )
        .filter(|(_, entry)| {
            entry
                .spec
                .hosts
                .iter()
                .any(|declared| hosts::resolve(declared, &entry.meta.namespace) == wanted)
        })
        .collect();
    let visible = declaring.iter().any(|(_, entry)| {
        hosts::exported_to(&entry.spec.export_to, &entry.meta.namespace, namespace)
    });
    (!declaring.is_empty() && !visible).then(|| {
        declaring
            .iter()
            .map(|(kind, entry)| format!("{kind} {}/{}", entry.meta.namespace, entry.meta.name))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Whether a DestinationRule visible to a VirtualService in `namespace` defines
/// `subset` for `host`. A rule counts when it is exported to the
/// VirtualService's namespace, or sits in a namespace the VirtualService is
/// exported to (its clients there see both).
fn subset_defined(scope: &Scope<'_>, namespace: &str, host: &str, subset: &str) -> bool {
    let wanted = hosts::resolve(host, namespace);
    scope.snapshot.destination_rules.iter().any(|rule| {
        let rule_namespace = &rule.meta.namespace;
        let visible = hosts::exported_to(&rule.spec.export_to, rule_namespace, namespace)
            || hosts::exported_to(scope.export_to, namespace, rule_namespace);
        visible
            && hosts::matches(&hosts::resolve(&rule.spec.host, rule_namespace), &wanted)
            && rule
                .spec
                .subsets
                .iter()
                .any(|defined| defined.name == subset)
    })
}
