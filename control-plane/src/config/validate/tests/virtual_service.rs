//! VirtualService validation: hosts, routes, subsets, matches and gateways.

use super::*;

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
fn subset_hosts_resolve_in_the_cluster_domain_and_keep_their_case() {
    let vs = virtual_service(
        "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n",
    );
    let rule = |host: &str| {
        let spec = format!("  host: {host}\n  subsets:\n  - name: v1\n");
        format!("{}---\n{vs}", destination_rule("r", "default", &spec))
    };
    // A short name takes the cluster's DNS suffix, whatever the trust domain.
    let text = rule("reviews.default.svc.cluster.local");
    let mut snapshot = load_str(Path::new("cfg.yaml"), &text).expect("loads");
    snapshot.mesh.trust_domain = "example.org".into();
    let lines: Vec<String> = validate(&snapshot)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(lines.is_empty(), "{lines:#?}");
    // Hosts compare as written, as the rule would be applied.
    one_error(
        &rule("Reviews.default.svc.cluster.local"),
        &["subset \"v1\" of host \"reviews\" is not defined"],
    );
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
fn regexes_past_the_size_limits_are_refused_cheaply() {
    // 200 regexes 2,000 bytes long, and one that is short but compiles to
    // a program past Envoy's size limit (Unicode letters \pL{1000}).
    let long = "a".repeat(2000);
    let mut matches: String = (0..200)
        .map(|_| format!("    - uri: {{regex: '{long}'}}\n"))
        .collect();
    matches.push_str("    - uri: {regex: '\\pL{1000}'}\n");
    let text = virtual_service(&format!(
        "  hosts: [a.example.com]\n  http:\n  - match:\n{matches}    route:\n    - destination: {{host: a.example.com}}\n"
    ));
    let start = std::time::Instant::now();
    let lines = errors(&text);
    let took = start.elapsed();
    assert_eq!(lines.len(), 201, "{:#?}", &lines[..2]);
    assert!(
        lines[0].contains("spec.http[0].match[0].uri.regex: regex \"aaaa")
            && lines[0].contains("is 2000 bytes long, over the limit of 1024"),
        "{}",
        lines[0]
    );
    assert!(lines[0].len() < 300, "the regex is not quoted whole");
    assert!(
        lines[200].contains("spec.http[0].match[200].uri.regex")
            && lines[200].contains("past the program size limit"),
        "{}",
        lines[200]
    );
    eprintln!("201 regexes past the limits refused in {took:?}");
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
    for own_namespace in ["gw", "./gw"] {
        valid(&format!(
            "{gw}---\n{}",
            vs(own_namespace).replace("name: vs", "name: vs\n  namespace: istio-system")
        ));
    }
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

#[test]
fn headers_of_each_of_several_destinations_are_valid() {
    valid(&virtual_service(
        "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: a.example.com}\n      weight: 50\n      headers: {request: {set: {x-a: '1'}}}\n    - destination: {host: b.example.com}\n      weight: 50\n",
    ));
}

#[test]
fn a_source_namespace_is_a_namespace_name() {
    valid(&virtual_service(
        "  hosts: [a.example.com]\n  http:\n  - match: [{sourceNamespace: team-a, sourceLabels: {app: sleep}}]\n    route:\n    - destination: {host: a.example.com}\n",
    ));
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - match: [{sourceNamespace: Team_A}]\n    route:\n    - destination: {host: a.example.com}\n",
        ),
        &[
            "spec.http[0].match[0].sourceNamespace: sourceNamespace \"Team_A\" is not a valid Kubernetes name",
        ],
    );
}

#[test]
fn a_destination_host_hidden_by_export_to_is_a_warning() {
    let entry = |export_to: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: httpbin\n  namespace: other\nspec:\n  hosts: [httpbin.org]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: DNS\n  exportTo: [{export_to}]\n"
        )
    };
    let route = virtual_service(
        "  hosts: [httpbin.org]\n  http:\n  - route:\n    - destination: {host: httpbin.org}\n",
    );
    let hidden = format!("{}---\n{route}", entry("'.'"));
    one_error(
        &hidden,
        &[
            "VirtualService default/vs: spec.http[0].route[0].destination.host: host \"httpbin.org\" is declared by ServiceEntry other/httpbin, which is not exported to namespace default",
        ],
    );
    let checked = check(load_str(Path::new("cfg.yaml"), &hidden).expect("loads"));
    assert!(checked.errors.is_empty());
    assert_eq!(checked.warnings.len(), 1, "a warning: the route is served");
    valid(&format!("{}---\n{route}", entry("default")));
    valid(&format!("{}---\n{route}", entry("'*'")));
}

#[test]
fn a_kubernetes_service_hidden_by_its_export_to_annotation_is_a_warning_too() {
    let service = |export_to: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: other\n  annotations: {{networking.istio.io/exportTo: '{export_to}'}}\nspec:\n  clusterIP: 10.96.0.20\n  ports: [{{name: http, port: 9080}}]\n"
        )
    };
    let route = virtual_service(
        "  hosts: [reviews.other.svc.cluster.local]\n  http:\n  - route:\n    - destination: {host: reviews.other.svc.cluster.local}\n",
    );
    one_error(
        &format!("{}---\n{route}", service(".")),
        &[
            "destination.host: host \"reviews.other.svc.cluster.local\" is declared by Service other/reviews, which is not exported to namespace default",
        ],
    );
    valid(&format!("{}---\n{route}", service("*")));
}
