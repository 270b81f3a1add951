use std::path::Path;

use super::*;
use crate::config::load::load_str;

/// The error lines `validate` gives for one file's YAML.
fn errors(text: &str) -> Vec<String> {
    let snapshot =
        load_str(Path::new("cfg.yaml"), text).unwrap_or_else(|errors| panic!("loads: {errors}"));
    validate(&snapshot)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Asserts exactly one error, containing every one of `parts`.
fn one_error(text: &str, parts: &[&str]) {
    let lines = errors(text);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    for part in parts {
        assert!(lines[0].contains(part), "{part:?} not in {:?}", lines[0]);
    }
}

fn valid(text: &str) {
    let lines = errors(text);
    assert!(lines.is_empty(), "{lines:#?}");
}

fn service_entry(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: se\nspec:\n{spec}"
    )
}

const SE_HTTP: &str = "  hosts: [httpbin.org]\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  resolution: DNS\n";

fn virtual_service(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\nspec:\n{spec}"
    )
}

fn destination_rule(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )
}

fn gateway(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: istio-system\nspec:\n{spec}"
    )
}

// --- metadata and duplicates ---

#[test]
fn a_valid_service_entry_has_no_errors() {
    valid(&service_entry(SE_HTTP));
}

#[test]
fn missing_and_invalid_names_are_reported() {
    let text = service_entry(SE_HTTP).replace("  name: se\n", "  namespace: default\n");
    one_error(
        &text,
        &[
            "cfg.yaml: document 1: ServiceEntry default/<unnamed>: metadata.name: metadata.name is missing",
        ],
    );
    let text = service_entry(SE_HTTP).replace("name: se", "name: My_Entry");
    one_error(
        &text,
        &["metadata.name: name \"My_Entry\" is not a valid Kubernetes name"],
    );
    let text = service_entry(SE_HTTP).replace("name: se", "name: se\n  namespace: Test");
    one_error(
        &text,
        &["metadata.namespace: namespace \"Test\" is not a valid Kubernetes name"],
    );
}

#[test]
fn duplicates_across_documents_name_the_first() {
    let text = format!("{}---\n{}", service_entry(SE_HTTP), service_entry(SE_HTTP));
    one_error(
        &text,
        &[
            "cfg.yaml: document 2: ServiceEntry default/se: ServiceEntry default/se is defined again (first in cfg.yaml document 1)",
        ],
    );
    let other_namespace =
        service_entry(SE_HTTP).replace("name: se", "name: se\n  namespace: other");
    valid(&format!("{}---\n{other_namespace}", service_entry(SE_HTTP)));
}

#[test]
fn duplicates_across_files_are_reported() {
    let mut snapshot = load_str(Path::new("a.yaml"), &service_entry(SE_HTTP)).expect("loads");
    let second = load_str(Path::new("b.yaml"), &service_entry(SE_HTTP)).expect("loads");
    snapshot.service_entries.extend(second.service_entries);
    let lines: Vec<String> = validate(&snapshot)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "b.yaml: document 1: ServiceEntry default/se: ServiceEntry default/se is defined again (first in a.yaml document 1); delete one or rename it"
        ]
    );
}

// --- ServiceEntry ---

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
        "{spec}  endpoints: [{{address: 10.0.0.1}}, {{address: 'unix:///var/run/db.sock'}}]\n"
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
    valid(&service_entry(&format!(
        "{spec}  endpoints: [{{network: remote}}]\n"
    )));
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

// --- VirtualService ---

#[test]
fn virtual_service_needs_hosts_and_destinations() {
    one_error(
        &virtual_service("  http:\n  - route:\n    - destination: {host: a.example.com}\n"),
        &["spec.hosts: no hosts"],
    );
    one_error(
        &virtual_service("  hosts: [a.example.com]\n  http:\n  - timeout: 3s\n"),
        &[
            "spec.http[0].route: route has no destination; add at least one route destination (or a redirect)",
        ],
    );
    valid(&virtual_service(
        "  hosts: [a.example.com]\n  http:\n  - redirect: {uri: /new}\n",
    ));
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: ''}\n",
        ),
        &["spec.http[0].route[0].destination.host: destination host is empty"],
    );
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: a.example.com, port: {number: 0}}\n",
        ),
        &["spec.http[0].route[0].destination.port.number: port 0 is out of range"],
    );
}

#[test]
fn weights_of_several_destinations_sum_to_100() {
    let route = |first: &str, second: &str| {
        virtual_service(&format!(
            "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {{host: a.example.com}}\n{first}    - destination: {{host: b.example.com}}\n{second}"
        ))
    };
    valid(&route("      weight: 60\n", "      weight: 40\n"));
    one_error(
        &route("      weight: 50\n", "      weight: 40\n"),
        &["spec.http[0].route: route weights add up to 90, not 100"],
    );
    one_error(&route("", ""), &["route weights add up to 0, not 100"]);
    let single = "  hosts: [a.example.com]\n  tcp:\n  - route:\n    - destination: {host: a.example.com}\n      weight: 100\n";
    valid(&virtual_service(single));
}

#[test]
fn dangling_subset_names_file_document_resource_and_field() {
    let text = format!(
        "{}---\n{}",
        destination_rule(
            "cnn",
            "default",
            "  host: edition.cnn.com\n  subsets:\n  - name: tls-origination\n"
        ),
        virtual_service(
            "  hosts: [edition.cnn.com]\n  http:\n  - route:\n    - destination: {host: edition.cnn.com, subset: tls-orgination}\n"
        )
    );
    one_error(
        &text,
        &[
            "cfg.yaml: document 2: VirtualService default/vs: spec.http[0].route[0].destination.subset: subset \"tls-orgination\" of host \"edition.cnn.com\" is not defined by any DestinationRule visible here",
        ],
    );
    valid(&text.replace("tls-orgination", "tls-origination"));
}

#[test]
fn subsets_are_found_by_short_name_wildcard_and_namespace() {
    let vs = virtual_service(
        "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n",
    );
    let subsets = "  subsets:\n  - name: v1\n";
    valid(&format!(
        "{}---\n{vs}",
        destination_rule(
            "r",
            "default",
            &format!("  host: reviews.default.svc.cluster.local\n{subsets}")
        )
    ));
    valid(&format!(
        "{}---\n{vs}",
        destination_rule("r", "default", &format!("  host: reviews\n{subsets}"))
    ));
    valid(&format!(
        "{}---\n{vs}",
        destination_rule(
            "r",
            "istio-system",
            &format!("  host: '*.svc.cluster.local'\n{subsets}")
        )
    ));
    // `reviews` in another namespace is another service.
    one_error(
        &format!(
            "{}---\n{vs}",
            destination_rule("r", "other", &format!("  host: reviews\n{subsets}"))
        ),
        &["subset \"v1\" of host \"reviews\" is not defined"],
    );
    // A rule kept to its own namespace is not visible from `default`...
    let private = destination_rule(
        "r",
        "other",
        &format!("  host: reviews.default.svc.cluster.local\n{subsets}  exportTo: ['.']\n"),
    );
    let local_vs = vs.replace(
        "  hosts: [reviews]\n",
        "  hosts: [reviews]\n  exportTo: ['.']\n",
    );
    one_error(
        &format!("{private}---\n{local_vs}"),
        &["subset \"v1\" of host \"reviews\" is not defined"],
    );
    // ...but counts where the VirtualService is exported too: clients there see both.
    valid(&format!("{private}---\n{vs}"));
    let exported = vs.replace(
        "  hosts: [reviews]\n",
        "  hosts: [reviews]\n  exportTo: ['.', other]\n",
    );
    valid(&format!("{private}---\n{exported}"));
}

#[test]
fn bad_regex_is_reported_with_its_field() {
    let text = virtual_service(
        "  hosts: [a.example.com]\n  http:\n  - match:\n    - uri: {regex: '/v1/(.*'}\n      headers:\n        x-user: {regex: '(?<=a)b'}\n        x-ok: {regex: '^[a-z]+$'}\n    route:\n    - destination: {host: a.example.com}\n",
    );
    let lines = errors(&text);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("spec.http[0].match[0].uri.regex: invalid regex \"/v1/(.*\": "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("spec.http[0].match[0].headers.x-user.regex: invalid regex"),
        "{}",
        lines[1]
    );
    assert!(lines.iter().all(|line| !line.contains('\n')));
}

#[test]
fn gateways_must_exist() {
    let gw = gateway(
        "  selector: {istio: egressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [edition.cnn.com]\n",
    );
    let vs = |gateways: &str| {
        virtual_service(&format!(
            "  hosts: [edition.cnn.com]\n  gateways: [{gateways}]\n  http:\n  - match:\n    - gateways: [mesh]\n    route:\n    - destination: {{host: edition.cnn.com}}\n"
        ))
    };
    valid(&format!("{gw}---\n{}", vs("mesh, istio-system/gw")));
    valid(&format!(
        "{gw}---\n{}",
        vs("gw.istio-system.svc.cluster.local")
    ));
    one_error(
        &format!("{gw}---\n{}", vs("mesh, gw")),
        &[
            "VirtualService default/vs: spec.gateways[1]: gateway \"gw\" does not exist (looked for Gateway default/gw)",
        ],
    );
    valid(&format!(
        "{gw}---\n{}",
        vs("gw").replace("name: vs", "name: vs\n  namespace: istio-system")
    ));
    let in_match = virtual_service(
        "  hosts: [edition.cnn.com]\n  tls:\n  - match:\n    - {gateways: [egress], port: 443, sniHosts: [edition.cnn.com]}\n    route:\n    - destination: {host: edition.cnn.com}\n",
    );
    one_error(
        &in_match,
        &["spec.tls[0].match[0].gateways[0]: gateway \"egress\" does not exist"],
    );
}

#[test]
fn tls_routes_need_sni_matches() {
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  tls:\n  - route:\n    - destination: {host: a.example.com}\n",
        ),
        &["spec.tls[0].match: TLS route has no match"],
    );
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  tls:\n  - match: [{port: 443}]\n    route:\n    - destination: {host: a.example.com}\n",
        ),
        &["spec.tls[0].match[0].sniHosts: TLS match has no sniHosts"],
    );
    one_error(
        &virtual_service("  hosts: [a.example.com]\n  tcp:\n  - match: [{port: 5432}]\n"),
        &["spec.tcp[0].route: route has no destination; add at least one route destination"],
    );
}

// --- DestinationRule ---

#[test]
fn destination_rule_needs_a_host_and_unique_subsets() {
    one_error(
        &destination_rule("d", "default", "  host: ''\n"),
        &["DestinationRule default/d: spec.host: host is empty"],
    );
    let lines = errors(&destination_rule(
        "d",
        "default",
        "  host: a.example.com\n  subsets:\n  - name: v1\n  - name: v1\n  - name: ''\n",
    ));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains(
            "spec.subsets[1].name: subset \"v1\" is defined twice (also at spec.subsets[0])"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("spec.subsets[2].name: subset has no name"),
        "{}",
        lines[1]
    );
    one_error(
        &destination_rule(
            "d",
            "default",
            "  host: a.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 0}\n      tls: {mode: SIMPLE}\n",
        ),
        &["spec.trafficPolicy.portLevelSettings[0].port.number: port 0 is out of range"],
    );
}

// --- Gateway ---

#[test]
fn gateway_needs_a_selector_and_servers() {
    let lines = errors(&gateway("  selector: {}\n"));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("Gateway istio-system/gw: spec.selector: selector is empty"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("spec.servers: no servers"),
        "{}",
        lines[1]
    );
}

#[test]
fn gateway_servers_are_checked() {
    let servers = |servers: &str| {
        gateway(&format!(
            "  selector: {{istio: egressgateway}}\n  servers:\n{servers}"
        ))
    };
    one_error(
        &servers(
            "  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [edition.cnn.com]\n",
        ),
        &["spec.servers[0].tls: protocol TLS needs tls settings"],
    );
    one_error(
        &servers("  - port: {number: 80, name: http}\n    hosts: ['*']\n"),
        &["spec.servers[0].port.protocol: protocol is missing"],
    );
    one_error(
        &servers("  - port: {number: 80, name: http, protocol: HTTP}\n"),
        &["spec.servers[0].hosts: no hosts"],
    );
    valid(&servers(
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['istio-system/*.cnn.com', './a.example.com']\n",
    ));
}

#[test]
fn gateway_server_ports_do_not_conflict() {
    let servers = |servers: &str| {
        gateway(&format!(
            "  selector: {{istio: egressgateway}}\n  servers:\n{servers}"
        ))
    };
    let http = |name: &str, host: &str| {
        format!("  - port: {{number: 80, name: {name}, protocol: HTTP}}\n    hosts: [{host}]\n")
    };
    let tls = |name: &str, host: &str| {
        format!(
            "  - port: {{number: 80, name: {name}, protocol: TLS}}\n    hosts: [{host}]\n    tls: {{mode: PASSTHROUGH}}\n"
        )
    };
    valid(&servers(
        &(http("a", "a.example.com") + &http("b", "b.example.com")),
    ));
    one_error(
        &servers(&(http("a", "a.example.com") + &http("b", "a.example.com"))),
        &[
            "spec.servers[1].port.number: server port 80 conflicts with spec.servers[0] (both serve host a.example.com)",
        ],
    );
    one_error(
        &servers(&(http("a", "a.example.com") + &tls("b", "b.example.com"))),
        &[
            "spec.servers[1].port.number: server port 80 conflicts with spec.servers[0] (protocols HTTP and TLS cannot share a port)",
        ],
    );
    one_error(
        &servers(
            &(http("a", "a.example.com")
                + &http("a", "b.example.com").replace("number: 80", "number: 8080")),
        ),
        &[
            "spec.servers[1].port.name: port name \"a\" is used twice (also at spec.servers[0].port)",
        ],
    );
}

// --- Sidecar and WorkloadEntry ---

#[test]
fn sidecar_egress_hosts_need_a_namespace() {
    let sidecar = |egress: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\nspec:\n  egress:\n{egress}"
        )
    };
    valid(&sidecar("  - hosts: ['./*', 'istio-system/*']\n"));
    one_error(
        &sidecar("  - hosts: [edition.cnn.com]\n"),
        &["spec.egress[0].hosts[0]: egress host \"edition.cnn.com\" must be namespace/dnsName"],
    );
    one_error(
        &sidecar("  - port: {number: 80, protocol: HTTP}\n"),
        &["spec.egress[0].hosts: egress listener has no hosts"],
    );
}

#[test]
fn workload_entry_needs_an_address() {
    let entry = |spec: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: vm\nspec:\n{spec}"
        )
    };
    valid(&entry("  address: 10.0.0.7\n  labels: {app: vm}\n"));
    one_error(
        &entry("  labels: {app: vm}\n"),
        &["WorkloadEntry default/vm: spec.address: endpoint has no address"],
    );
}

#[test]
fn every_line_is_one_line() {
    let text =
        service_entry("  hosts: []\n  ports: [{number: 0, protocol: BAD}]\n  resolution: STATIC\n");
    let lines = errors(&text);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines.iter().all(|line| !line.contains('\n')
        && line.starts_with("cfg.yaml: document 1: ServiceEntry default/se: spec.")));
}
