//! Gateway validation: selector, servers and server ports.

use super::*;

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
    // Deprecated in Istio and never applied to a gateway server.
    one_error(
        &servers(
            "  - port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}\n    hosts: ['*']\n",
        ),
        &[
            "spec.servers[0].port.targetPort: targetPort is not supported on gateway servers by this mesh; remove it",
        ],
    );
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
