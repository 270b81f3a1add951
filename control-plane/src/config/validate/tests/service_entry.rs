//! ServiceEntry validation: hosts, ports, protocols, resolution and endpoints.

use super::*;

#[test]
fn service_entry_needs_hosts() {
    one_error(
        &service_entry("  ports: [{number: 80, name: http, protocol: HTTP}]\n"),
        &["spec.hosts: no hosts"],
    );
    one_error(
        &service_entry("  hosts: ['bad host']\n"),
        &["spec.hosts[0]: host \"bad host\" is not a valid host name"],
    );
}

#[test]
fn bad_port_names_file_document_resource_and_field() {
    let text = format!(
        "{}---\n{}",
        service_entry(SE_HTTP).replace("name: se", "name: ok"),
        service_entry(SE_HTTP).replace("number: 80", "number: 0")
    );
    one_error(
        &text,
        &[
            "cfg.yaml: document 2: ServiceEntry default/se: spec.ports[0].number: port 0 is out of range; use a port between 1 and 65535",
        ],
    );
    one_error(
        &service_entry(&SE_HTTP.replace("number: 80", "number: 70000")),
        &["spec.ports[0].number: port 70000 is out of range"],
    );
    one_error(
        &service_entry(&SE_HTTP.replace("protocol: HTTP}", "protocol: HTTP, targetPort: 0}")),
        &["spec.ports[0].targetPort: port 0 is out of range"],
    );
}

#[test]
fn duplicate_port_numbers_and_names_are_reported() {
    let spec = "  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  - {number: 80, name: http2, protocol: HTTP2}\n  - {number: 81, name: http, protocol: HTTP}\n  resolution: DNS\n";
    let lines = errors(&service_entry(spec));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0]
            .contains("spec.ports[1].number: port 80 is declared twice (also at spec.ports[0])"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(
            "spec.ports[2].name: port name \"http\" is used twice (also at spec.ports[0])"
        ),
        "{}",
        lines[1]
    );
}

#[test]
fn protocols_are_checked_case_insensitively() {
    valid(&service_entry(
        &SE_HTTP.replace("protocol: HTTP", "protocol: http"),
    ));
    valid(&service_entry(
        &SE_HTTP.replace("protocol: HTTP", "protocol: grpc-web"),
    ));
    one_error(
        &service_entry(&SE_HTTP.replace("protocol: HTTP", "protocol: HTTPX")),
        &["spec.ports[0].protocol: protocol \"HTTPX\" is not an Istio protocol"],
    );
}

#[test]
fn static_resolution_needs_endpoints_or_a_selector() {
    let spec = "  hosts: [db.internal]\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n  resolution: STATIC\n";
    one_error(
        &service_entry(spec),
        &["spec.resolution: resolution STATIC needs endpoints"],
    );
    valid(&service_entry(&format!(
        "{spec}  endpoints: [{{address: 10.0.0.1}}]\n"
    )));
    valid(&service_entry(&format!(
        "{spec}  workloadSelector: {{labels: {{app: db}}}}\n"
    )));
    one_error(
        &service_entry(&format!(
            "{spec}  endpoints: [{{address: db.example.com}}]\n"
        )),
        &["spec.endpoints[0].address: endpoint address \"db.example.com\" is not an IP address"],
    );
}

#[test]
fn endpoints_are_checked() {
    let spec = "  hosts: [db.internal]\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n  resolution: DNS\n";
    one_error(
        &service_entry(&format!(
            "{spec}  endpoints: [{{address: db.example.com}}]\n  workloadSelector: {{labels: {{app: db}}}}\n"
        )),
        &["spec.workloadSelector: endpoints and workloadSelector are both set"],
    );
    one_error(
        &service_entry(&format!("{spec}  endpoints: [{{labels: {{a: b}}}}]\n")),
        &["spec.endpoints[0].address: endpoint has no address"],
    );
    assert_eq!(
        load_error(&service_entry(&format!(
            "{spec}  endpoints: [{{address: 10.0.0.1, network: remote}}]\n"
        ))),
        "cfg.yaml:9: document 1: ServiceEntry default/se: spec.endpoints[0].network: not supported by this control plane; remove `network` (Istio would apply it, this control plane cannot)",
        "a network is reached through its gateway, which this mesh does not have"
    );
    one_error(
        &service_entry(&format!(
            "{spec}  endpoints: [{{address: db.example.com, ports: {{postgres: 5433}}}}]\n"
        )),
        &[
            "spec.endpoints[0].ports.postgres: endpoint port \"postgres\" is not a port name of this ServiceEntry",
        ],
    );
    one_error(
        &service_entry(&format!(
            "{spec}  endpoints: [{{address: db.example.com, ports: {{tcp: 0}}}}]\n"
        )),
        &["spec.endpoints[0].ports.tcp: port 0 is out of range"],
    );
}

#[test]
fn dns_resolution_cannot_resolve_a_wildcard() {
    let spec = "  hosts: ['*.example.com']\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS\n";
    one_error(
        &service_entry(spec),
        &["spec.hosts[0]: resolution DNS cannot resolve wildcard host \"*.example.com\""],
    );
    valid(&service_entry(&spec.replace("DNS", "NONE")));
    valid(&service_entry(&format!(
        "{spec}  endpoints: [{{address: proxy.example.com}}]\n"
    )));
}

#[test]
fn addresses_must_be_ips_or_cidrs() {
    valid(&service_entry(&format!(
        "{SE_HTTP}  addresses: [10.0.0.1, 10.1.0.0/16, 'fd00::/8']\n"
    )));
    one_error(
        &service_entry(&format!("{SE_HTTP}  addresses: [10.0.0.0/33]\n")),
        &["spec.addresses[0]: \"10.0.0.0/33\" is not an IP address or CIDR range"],
    );
}

#[test]
fn one_host_and_port_has_one_protocol_per_namespace() {
    let https = service_entry(&SE_HTTP.replace("protocol: HTTP", "protocol: HTTPS"))
        .replace("name: se", "name: se2");
    one_error(
        &format!("{}---\n{https}", service_entry(SE_HTTP)),
        &[
            "document 2: ServiceEntry default/se2: spec.ports[0].protocol: host \"httpbin.org\" port 80 is declared with protocol HTTPS here but HTTP in ServiceEntry default/se (cfg.yaml document 1)",
        ],
    );
    valid(&format!(
        "{}---\n{}",
        service_entry(SE_HTTP),
        https.replace("name: se2", "name: se2\n  namespace: other")
    ));
    let same = service_entry(&SE_HTTP.replace("protocol: HTTP", "protocol: http"))
        .replace("name: se", "name: se2");
    valid(&format!("{}---\n{same}", service_entry(SE_HTTP)));
}

#[test]
fn unix_socket_addresses_and_endpoints_are_not_supported() {
    let endpoint = "  hosts: [example.unix.local]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - address: unix:///var/run/example/socket\n";
    one_error(
        &service_entry(endpoint),
        &[
            "spec.endpoints[0].address: not supported by this control plane; remove `address unix:///var/run/example/socket`",
        ],
    );
    let address = "  hosts: [example.unix.local]\n  addresses: [unix:///var/run/example/socket]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: NONE\n";
    one_error(
        &service_entry(address),
        &["spec.addresses[0]: not supported by this control plane"],
    );
}
