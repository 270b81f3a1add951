//! Each analyzer on small configs, stating what Istio reports for them.

use std::path::Path;

use super::{Level, Message, analyze};
use crate::config::{check, load::load_str};

/// The messages for `yaml` (one file, `cfg.yaml`), as `code text` lines
/// (`- text` for a message without a code), Info left out.
fn report(yaml: &str) -> Vec<String> {
    let snapshot = load_str(Path::new("cfg.yaml"), yaml).expect("the YAML loads");
    analyze(&check(snapshot))
        .iter()
        .filter(|m| m.level > Level::Info)
        .map(line)
        .collect()
}

fn line(message: &Message) -> String {
    format!("{} {}", message.code.unwrap_or("-"), message.text)
}

fn messages(yaml: &str) -> Vec<Message> {
    let snapshot = load_str(Path::new("cfg.yaml"), yaml).expect("the YAML loads");
    analyze(&check(snapshot))
}

const CNN: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn}
spec:
  hosts: [edition.cnn.com]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS}
  resolution: DNS
---
";

const GATEWAY: &str = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [edition.cnn.com]
---
";

fn vs(gateways: &str, destination: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: cnn}}
spec:
  hosts: [edition.cnn.com]
  gateways: {gateways}
  http:
  - route:
    - destination: {destination}
---
"
    )
}

#[test]
fn a_missing_gateway_is_ist0101_and_its_hosts_ist0132() {
    let yaml = format!(
        "{CNN}{}",
        vs(
            "[mesh, missing]",
            "{host: edition.cnn.com, port: {number: 80}}"
        )
    );
    assert_eq!(
        report(&yaml),
        [
            "IST0101 Referenced gateway not found: \"missing\"",
            "IST0132 one or more host [edition.cnn.com] defined in VirtualService default/cnn not found in Gateway default/missing.",
        ]
    );
    let found = format!(
        "{CNN}{GATEWAY}{}",
        vs(
            "[istio-egressgateway]",
            "{host: edition.cnn.com, port: {number: 80}}"
        )
    );
    assert_eq!(report(&found), Vec::<String>::new());
}

#[test]
fn a_gateway_without_the_virtual_services_hosts_is_ist0132() {
    let other = GATEWAY.replace("hosts: [edition.cnn.com]", "hosts: [\"*.wikipedia.org\"]");
    let yaml = format!(
        "{CNN}{other}{}",
        vs(
            "[istio-egressgateway]",
            "{host: edition.cnn.com, port: {number: 80}}"
        )
    );
    assert_eq!(
        report(&yaml),
        [
            "IST0132 one or more host [edition.cnn.com] defined in VirtualService default/cnn not found in Gateway default/istio-egressgateway."
        ]
    );
    // `*/host` and `./host` entries count where they are visible.
    let namespaced = GATEWAY.replace("hosts: [edition.cnn.com]", "hosts: [\"./edition.cnn.com\"]");
    let yaml = format!(
        "{CNN}{namespaced}{}",
        vs(
            "[istio-egressgateway]",
            "{host: edition.cnn.com, port: {number: 80}}"
        )
    );
    assert_eq!(report(&yaml), Vec::<String>::new());
}

#[test]
fn destinations_are_hosts_and_ports_of_the_registry() {
    let unknown = vs("[mesh]", "{host: unknown.example.com}");
    assert_eq!(
        report(&unknown),
        ["IST0101 Referenced host not found: \"unknown.example.com\""]
    );
    let no_port = format!("{CNN}{}", vs("[mesh]", "{host: edition.cnn.com}"));
    assert_eq!(
        report(&no_port),
        [
            "IST0112 This VirtualService routes to a service \"edition.cnn.com\" that exposes multiple ports [80 443]. Specifying a port in the destination is required to disambiguate."
        ]
    );
    let wrong_port = format!(
        "{CNN}{}",
        vs("[mesh]", "{host: edition.cnn.com, port: {number: 8080}}")
    );
    assert_eq!(
        report(&wrong_port),
        ["IST0101 Referenced host:port not found: \"edition.cnn.com:8080\""]
    );
}

#[test]
fn a_wildcard_entry_declares_the_hosts_under_it_and_export_to_hides() {
    let wildcard = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wikipedia}
spec:
  hosts: [\"*.wikipedia.org\"]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: NONE
---
";
    let yaml = format!("{wildcard}{}", vs("[mesh]", "{host: en.wikipedia.org}"));
    assert_eq!(
        report(&yaml)
            .iter()
            .filter(|l| l.starts_with("IST0101"))
            .count(),
        0
    );
    let hidden = CNN.replace("resolution: DNS", "resolution: DNS\n  exportTo: [other]");
    let yaml = format!(
        "{hidden}{}",
        vs("[mesh]", "{host: edition.cnn.com, port: {number: 80}}")
    );
    assert_eq!(
        report(&yaml),
        ["IST0101 Referenced host not found: \"edition.cnn.com\""],
        "a host exported elsewhere is not found, and the validate warning is not repeated"
    );
}

#[test]
fn a_subset_no_destination_rule_defines_is_ist0101() {
    let rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cnn}
spec:
  host: edition.cnn.com
  subsets: [{name: v1}]
---
";
    let yaml = format!(
        "{CNN}{rule}{}",
        vs(
            "[mesh]",
            "{host: edition.cnn.com, subset: v2, port: {number: 80}}"
        )
    );
    assert_eq!(
        report(&yaml),
        ["IST0101 Referenced host+subset in destinationrule not found: \"edition.cnn.com+v2\""]
    );
    let defined = yaml.replace("subset: v2", "subset: v1");
    assert_eq!(report(&defined), Vec::<String>::new());
    // A Kubernetes service is found by its own namespace, whoever names it.
    let gateway_rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: gw, namespace: istio-system}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: cnn}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: gw, namespace: istio-system}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {istio: egressgateway}}
---
";
    let yaml = format!(
        "{gateway_rule}{}",
        vs(
            "[mesh]",
            "{host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn}"
        )
    );
    assert_eq!(report(&yaml), Vec::<String>::new());
}

#[test]
fn two_mesh_virtual_services_for_one_host_are_ist0109_on_each() {
    let second = vs("[mesh]", "{host: edition.cnn.com, port: {number: 80}}")
        .replace("name: cnn}", "name: cnn-2}");
    let yaml = format!(
        "{CNN}{}{second}",
        vs("[]", "{host: edition.cnn.com, port: {number: 80}}")
    );
    let text = "IST0109 The VirtualServices default/cnn,default/cnn-2 associated with mesh gateway define the same host edition.cnn.com which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.";
    assert_eq!(report(&yaml), [text, text]);
    let exported_apart =
        second.replace("gateways: [mesh]", "gateways: [mesh]\n  exportTo: [other]");
    let yaml = format!(
        "{CNN}{}{exported_apart}",
        vs("[]", "{host: edition.cnn.com, port: {number: 80}}")
    );
    assert_eq!(report(&yaml), Vec::<String>::new());
}

const GATEWAY_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system, labels: {istio: egressgateway}}
spec:
  selector: {istio: egressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
---
";

#[test]
fn a_credential_name_is_a_secret_of_the_gateway_workloads_namespace() {
    let tls_gateway = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [nginx.example.com]
    tls: {mode: SIMPLE, credentialName: nginx-credential}
---
";
    assert_eq!(
        report(&format!("{GATEWAY_SERVICE}{tls_gateway}")),
        ["IST0101 Referenced credentialName not found: \"nginx-credential\""]
    );
}

#[test]
fn a_gateway_port_no_service_port_targets_is_ist0162() {
    let gateway = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [\"*\"]
  - port: {number: 9090, name: http-other, protocol: HTTP}
    hosts: [\"*\"]
---
";
    assert_eq!(
        report(&format!("{GATEWAY_SERVICE}{gateway}")),
        [
            "IST0162 The gateway is listening on a target port (port 9090) that is not defined in the Service associated with its workload instances (Pod selector istio=egressgateway). If you need to access the gateway port through the gateway Service, it will not be available."
        ]
    );
    assert_eq!(
        report(gateway),
        Vec::<String>::new(),
        "without the gateway's Service there is nothing to compare"
    );
}

#[test]
fn gateways_with_one_selector_port_and_host_conflict() {
    let second = GATEWAY.replace("name: istio-egressgateway}", "name: other}");
    let report = report(&format!("{GATEWAY}{second}"));
    assert_eq!(
        report,
        [
            "IST0145 Conflict with gateways default/other (workload selector istio=egressgateway, port 80, hosts edition.cnn.com).",
            "IST0145 Conflict with gateways default/istio-egressgateway (workload selector istio=egressgateway, port 80, hosts edition.cnn.com).",
        ]
    );
}

#[test]
fn two_sidecars_without_a_selector_in_a_namespace_are_ist0111() {
    let sidecar = |name: &str| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}}}
spec:
  egress: [{{hosts: [\"./*\"]}}]
---
"
        )
    };
    let text = "IST0111 The Sidecars [default/a default/b] in namespace \"default\" have no workload selector, which can lead to undefined behavior.";
    assert_eq!(
        report(&format!("{}{}", sidecar("a"), sidecar("b"))),
        [text, text]
    );
    assert_eq!(report(&sidecar("a")), Vec::<String>::new());
}

#[test]
fn simple_tls_without_a_ca_is_ist0128_and_per_port_ist0129() {
    let rule = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cnn}
spec:
  host: edition.cnn.com
  trafficPolicy:
    tls: {mode: SIMPLE}
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem}
    - port: {number: 80}
      tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}
---
";
    assert_eq!(
        report(rule),
        [
            "IST0128 DestinationRule default/cnn in namespace default has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: edition.cnn.com",
            "IST0129 DestinationRule default/cnn in namespace default has TLS mode set to MUTUAL but no caCertificates are set to validate server identity for host: edition.cnn.com at port number:80",
        ]
    );
}

#[test]
fn a_service_port_named_for_no_protocol_is_ist0118_info() {
    let service = "\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - {name: web, port: 8000}
  - {name: http-web, port: 8001}
  - {name: other, port: 8002, appProtocol: grpc}
---
";
    let infos: Vec<String> = messages(service)
        .iter()
        .filter(|m| m.code == Some("IST0118"))
        .map(line)
        .collect();
    assert_eq!(
        infos,
        [
            "IST0118 Port name web (port: 8000, targetPort: 8000) doesn't follow the naming convention of Istio port."
        ]
    );
    assert!(messages(service).iter().all(|m| m.level == Level::Info));
}

#[test]
fn deprecated_fields_are_ist0002() {
    let yaml = format!(
        "{CNN}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: cnn}}
spec:
  hosts: [edition.cnn.com]
  http:
  - fault: {{delay: {{fixedDelay: 1s, percent: 10}}}}
    route:
    - destination: {{host: edition.cnn.com, port: {{number: 80}}}}
"
    );
    assert_eq!(
        report(&yaml),
        [
            "IST0002 Deprecated: HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage"
        ]
    );
}

#[test]
fn istios_own_validation_is_ist0106_and_this_control_planes_limits_have_no_code() {
    let bad = format!(
        "{CNN}{}",
        vs("[mesh]", "{host: edition.cnn.com, port: {number: 80}}")
    )
    .replace("  - route:\n", "  - timeout: 1.5ms\n    route:\n");
    let lines = report(&bad);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("IST0106 Schema validation error: spec.http[0].timeout: ")),
        "{lines:?}"
    );
    let twice = format!("{CNN}{CNN}");
    let lines = report(&twice);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("- ServiceEntry default/cnn is defined again")),
        "{lines:?}"
    );
}

#[test]
fn messages_come_errors_first_each_once() {
    let yaml = format!(
        "{CNN}{GATEWAY}{}",
        vs("[istio-egressgateway, missing]", "{host: edition.cnn.com}")
    );
    let levels: Vec<Level> = messages(&yaml).iter().map(|m| m.level).collect();
    let mut sorted = levels.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(levels, sorted);
    let lines = report(&yaml);
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(lines, unique);
}

#[test]
fn a_sidecar_egress_host_no_service_declares_is_a_warning_without_a_code() {
    let sidecar = "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress:
  - hosts: [\"./edition.cnn.com\", \"./missing.example.com\", \"istio-system/*\"]
---
";
    assert_eq!(
        report(&format!("{CNN}{sidecar}")),
        [
            "- egress host \"./missing.example.com\" is no host of a ServiceEntry or Kubernetes Service in the namespaces it selects, so the sidecar gets no configuration for it; declare it, or fix the name"
        ]
    );
    let elsewhere = sidecar.replace("./edition.cnn.com", "other/edition.cnn.com");
    assert_eq!(
        report(&format!("{CNN}{elsewhere}")).len(),
        2,
        "cnn is in default, not in other"
    );
}
