//! Istio's `virtualservice.DestinationHostAnalyzer`: every route and mirror
//! destination of a VirtualService is a host of the registry visible in its
//! namespace (IST0101 `host`, `mirror host`), on a port the service has
//! (IST0101 `host:port`), and names its port when the service has several
//! (IST0112).

use super::generated;
use super::message::{
    DESTINATION_PORT_SELECTOR_REQUIRED, Message, REFERENCED_RESOURCE_NOT_FOUND, Subject, quoted,
};
use super::registry::Registry;
use crate::config::model::{Destination, VirtualService};
use crate::config::{ConfigSnapshot, Kind, Resource};

/// A destination and where it is written.
pub(super) struct Written<'v> {
    pub destination: &'v Destination,
    /// The field of its host, e.g. `spec.http[0].route[1].destination.host`.
    pub field: String,
    pub mirror: bool,
}

/// The route destinations (`http`, `tcp`, `tls`), then the HTTP mirrors.
pub(super) fn destinations(vs: &VirtualService) -> Vec<Written<'_>> {
    let mut out = Vec::new();
    for (i, http) in vs.http.iter().enumerate() {
        for (j, route) in http.route.iter().enumerate() {
            out.push(route_destination(&route.destination, "http", i, j));
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, route) in tcp.route.iter().enumerate() {
            out.push(route_destination(&route.destination, "tcp", i, j));
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, route) in tls.route.iter().enumerate() {
            out.push(route_destination(&route.destination, "tls", i, j));
        }
    }
    for (i, http) in vs.http.iter().enumerate() {
        if let Some(mirror) = &http.mirror {
            out.push(Written {
                destination: mirror,
                field: format!("spec.http[{i}].mirror.host"),
                mirror: true,
            });
        }
        for (j, policy) in http.mirrors.iter().enumerate() {
            out.push(Written {
                destination: &policy.destination,
                field: format!("spec.http[{i}].mirrors[{j}].destination.host"),
                mirror: true,
            });
        }
    }
    out
}

fn route_destination<'v>(
    destination: &'v Destination,
    rule: &str,
    index: usize,
    route: usize,
) -> Written<'v> {
    Written {
        destination,
        field: format!("spec.{rule}[{index}].route[{route}].destination.host"),
        mirror: false,
    }
}

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    let registry = Registry::new(snapshot);
    for vs in snapshot
        .virtual_services
        .iter()
        .filter(|vs| !generated(&vs.meta))
    {
        for written in destinations(&vs.spec) {
            check(&registry, vs, &written, out);
        }
    }
}

fn check(
    registry: &Registry,
    vs: &Resource<VirtualService>,
    written: &Written<'_>,
    out: &mut Vec<Message>,
) {
    let host = &written.destination.host;
    let subject = || Subject::of(Kind::VirtualService, vs, Some(written.field.clone()));
    let Some(ports) = registry.lookup(&vs.meta.namespace, &vs.spec.export_to, host) else {
        let what = if written.mirror {
            "mirror host"
        } else {
            "host"
        };
        out.push(Message::istio(
            REFERENCED_RESOURCE_NOT_FOUND,
            subject(),
            format!("Referenced {what} not found: {}", quoted(host)),
        ));
        return;
    };
    match written.destination.port {
        None if ports.len() > 1 => {
            let list: Vec<String> = ports.iter().map(u32::to_string).collect();
            out.push(Message::istio(
                DESTINATION_PORT_SELECTOR_REQUIRED,
                subject(),
                format!(
                    "This VirtualService routes to a service {} that exposes multiple ports [{}]. Specifying a port in the destination is required to disambiguate.",
                    quoted(host),
                    list.join(" ")
                ),
            ));
        }
        Some(port) if !ports.contains(&port.number) => {
            out.push(Message::istio(
                REFERENCED_RESOURCE_NOT_FOUND,
                subject(),
                format!(
                    "Referenced host:port not found: {}",
                    quoted(&format!("{host}:{}", port.number))
                ),
            ));
        }
        _ => {}
    }
}
