//! Loading as a user meets it: files, documents, Lists, schema errors
//! with lines and fields, and the mesh config file.

use std::fs;

use super::*;
use crate::config::DEFAULT_NAMESPACE;
use crate::config::error::Problem;
use crate::config::model::{MeshConfig, OutboundMode, Resolution, StringMatch};

fn load(text: &str) -> Result<ConfigSnapshot, ConfigErrors> {
    load_str(Path::new("test.yaml"), text)
}

fn only_error(text: &str) -> String {
    let errors = load(text).expect_err("the text should not load");
    assert_eq!(errors.len(), 1, "{errors}");
    errors.0[0].to_string()
}

const SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
";

#[test]
fn loads_a_service_entry_into_the_default_namespace() {
    let snapshot = load(SERVICE_ENTRY).expect("loads");
    assert_eq!(snapshot.version, 0);
    let [entry] = snapshot.service_entries.as_slice() else {
        panic!("one service entry expected: {snapshot:?}");
    };
    assert_eq!(entry.meta.name, "httpbin-ext");
    assert_eq!(entry.meta.namespace, DEFAULT_NAMESPACE);
    assert_eq!(entry.origin.document, 0);
    assert_eq!(entry.spec.hosts, ["httpbin.org"]);
    assert_eq!(entry.spec.resolution, Resolution::Dns);
}

#[test]
fn accepts_every_istio_version_and_keeps_namespace_and_labels() {
    for version in ISTIO_VERSIONS {
        let text = format!(
            "apiVersion: networking.istio.io/{version}\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: istio-system\n  labels: {{app: x}}\n  uid: abc\nspec:\n  selector: {{istio: egressgateway}}\nstatus: {{}}\n"
        );
        let snapshot = load(&text).expect("loads");
        assert_eq!(snapshot.gateways[0].meta.namespace, "istio-system");
        assert_eq!(snapshot.gateways[0].meta.labels["app"], "x");
    }
}

#[test]
fn skips_empty_and_comment_only_documents_and_counts_them() {
    // A comment before the first `---` is not a document of its own.
    let text = format!("# just a comment\n---\n---\n# another\n---\n{SERVICE_ENTRY}---\n");
    let snapshot = load(&text).expect("loads");
    assert_eq!(snapshot.service_entries.len(), 1);
    assert_eq!(snapshot.service_entries[0].origin.document, 2);
    let text = format!("---\n# only a comment\n---\n{SERVICE_ENTRY}");
    assert_eq!(
        load(&text).expect("loads").service_entries[0]
            .origin
            .document,
        1
    );
}

/// The documents `text` holds that are not handled, one line each.
fn not_handled(text: &str) -> Vec<String> {
    let mut loaded = Loaded::default();
    assert!(document::add_file(
        Path::new("test.yaml"),
        text,
        &mut loaded
    ));
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.not_handled.iter().map(ToString::to_string).collect()
}

#[test]
fn documents_of_other_kinds_are_read_past_and_named() {
    let text = format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\nspec:\n  podSelector: {{}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\ndata:\n  mesh: 'x'\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny\n  namespace: prod\n---\n{SERVICE_ENTRY}"
    );
    let snapshot = load(&text).expect("loads");
    assert_eq!(snapshot.service_entries.len(), 1);
    assert_eq!(snapshot.service_entries[0].origin.document, 3);
    assert_eq!(
        not_handled(&text),
        [
            "not handled: NetworkPolicy default/np (test.yaml, document 1): not a kind this control plane reads",
            "not handled: ConfigMap default/istio (test.yaml, document 2): not a kind this control plane reads",
            "not handled: AuthorizationPolicy prod/deny (test.yaml, document 3): security policies are not enforced by this control plane; nothing it serves depends on them",
        ]
    );
}

#[test]
fn the_gateway_api_envoy_filters_and_old_endpoint_slices_are_named_with_what_to_do() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: httpbin}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: r}\nspec: {gatewayClassName: envoy}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f, namespace: istio-system}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: discovery.k8s.io/v1beta1\n  kind: EndpointSlice\n  metadata: {name: s}\n";
    let lines = not_handled(text);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        lines[0],
        "not handled: Gateway default/r (test.yaml, document 2): its gatewayClassName is not istio: only Gateways of class istio are programmed by this control plane"
    );
    assert!(
        lines[1].starts_with("not handled: EnvoyFilter istio-system/f (test.yaml, document 3): this kind is not applied"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "not handled: EndpointSlice default/s (test.yaml, document 4, items[0]): only discovery.k8s.io/v1 EndpointSlices are read; write it as discovery.k8s.io/v1"
    );
}

#[test]
fn reads_the_items_of_a_kubernetes_list() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a, namespace: ns}\n  spec: {host: a.example.com}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n";
    let snapshot = load(text).expect("loads");
    assert_eq!(snapshot.destination_rules.len(), 1);
    assert_eq!(snapshot.destination_rules[0].meta.namespace, "ns");
}

#[test]
fn an_error_in_a_list_item_names_the_item() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a}\n  spec: {hots: a.example.com}\n";
    let line = only_error(text);
    assert!(
        line.contains("DestinationRule default/a: items[0].spec.hots: unknown field `hots`"),
        "{line}"
    );
}

#[test]
fn unknown_istio_kind_and_version_are_errors() {
    let line = only_error(
        "apiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntri\nmetadata: {name: f}\n",
    );
    assert!(
        line.starts_with(
            "test.yaml: document 1: kind: kind ServiceEntri is not a networking.istio.io kind; fix the spelling"
        ),
        "{line}"
    );
    let line =
        only_error("apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\n");
    assert!(
        line.contains("apiVersion networking.istio.io/v2 is not supported"),
        "{line}"
    );
}

#[test]
fn a_document_without_api_version_or_kind_is_an_error() {
    let line = only_error("hosts: [a]\n");
    assert!(
        line.contains("not a Kubernetes object: apiVersion and kind are missing"),
        "{line}"
    );
    let line = only_error("- a\n- b\n");
    assert!(line.contains("the document is a list"), "{line}");
}

#[test]
fn syntax_error_names_file_document_and_line() {
    let text = format!(
        "{SERVICE_ENTRY}---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: [oops\n"
    );
    let errors = load(&text).expect_err("syntax error");
    let line = errors.0[0].to_string();
    assert!(
        line.starts_with("test.yaml:18: document 2: YAML syntax error: "),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[test]
fn unknown_field_names_file_line_document_resource_and_field_and_the_nearest_field() {
    let text = format!("{SERVICE_ENTRY}  locaton: MESH_EXTERNAL\n");
    assert_eq!(
        only_error(&text),
        "test.yaml:13: document 1: ServiceEntry default/httpbin-ext: spec.locaton: unknown field `locaton`; did you mean `location`?"
    );
    let text = format!("{SERVICE_ENTRY}  zzz: 1\n");
    let line = only_error(&text);
    assert!(
        line.ends_with("spec.zzz: unknown field `zzz`; the fields here are hosts, addresses, ports, location, resolution, endpoints, workloadSelector, exportTo, subjectAltNames"),
        "nothing near: every field is listed: {line}"
    );
}

#[test]
fn a_valid_istio_field_that_is_not_applied_is_not_supported_not_unknown() {
    let route = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec:\n  hosts: [a.example.com]\n  http:\n  - directResponse: {status: 500}\n    route:\n    - destination: {host: a.example.com}\n";
    assert_eq!(
        only_error(route),
        "test.yaml:7: document 1: VirtualService default/vs: spec.http[0].directResponse: not supported by this control plane; remove `directResponse` (Istio would apply it, this control plane cannot)"
    );
    let rule = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr}\nspec:\n  host: a.example.com\n  trafficPolicy:\n    proxyProtocol: {version: V1}\n";
    let line = only_error(rule);
    assert!(
        line.contains("spec.trafficPolicy.proxyProtocol: not supported by this control plane"),
        "{line}"
    );
    let misspelt = rule.replace("proxyProtocol", "proxyProtocl");
    let line = only_error(&misspelt);
    assert!(
        line.contains("spec.trafficPolicy.proxyProtocl: unknown field `proxyProtocl`;"),
        "a misspelt unsupported field is unknown: {line}"
    );
    // istiod no longer reads the deprecated consecutiveErrors.
    let deprecated = rule.replace(
        "proxyProtocol: {version: V1}",
        "outlierDetection: {consecutiveErrors: 7}",
    );
    let line = only_error(&deprecated);
    assert!(
        line.contains("spec.trafficPolicy.outlierDetection.consecutiveErrors: not supported by this control plane"),
        "{line}"
    );
}

#[test]
fn type_error_names_the_field_path() {
    let text = SERVICE_ENTRY.replace("number: 80", "number: eighty");
    let line = only_error(&text);
    assert!(line.starts_with("test.yaml:9: document 1: ServiceEntry default/httpbin-ext: spec.ports[0].number: invalid type: string \"eighty\", expected u32; give a value of the expected type"), "{line}");
}

#[test]
fn bad_enum_value_and_duration_are_reported() {
    let line = only_error(&SERVICE_ENTRY.replace("resolution: DNS", "resolution: DNSS"));
    assert!(
        line.contains("spec.resolution: unknown variant `DNSS`, expected one of"),
        "{line}"
    );
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n  - timeout: 3\n    route:\n    - destination: {host: a}\n";
    let line = only_error(text);
    assert!(
        line.contains("VirtualService default/v: spec.http[0].timeout: invalid duration \"3\""),
        "{line}"
    );
}

#[test]
fn string_matches_are_maps_with_one_key() {
    let route = |matcher: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v}}\nspec:\n  hosts: [a]\n  http:\n  - match:\n    - uri: {matcher}\n    route:\n    - destination: {{host: a}}\n"
        )
    };
    let snapshot = load(&route("{prefix: /api}")).expect("loads");
    let uri = &snapshot.virtual_services[0].spec.http[0].matches[0].uri;
    assert_eq!(uri, &Some(StringMatch::Prefix("/api".into())));
    let line = only_error(&route("{prefix: /api, exact: /x}"));
    assert!(
        line.contains(
            "spec.http[0].match[0].uri: a string match needs exactly one of exact, prefix or regex"
        ),
        "{line}"
    );
    let line = only_error(&route("{prefx: /api}"));
    assert!(
        line.contains("spec.http[0].match[0].uri.prefx: unknown field `prefx`"),
        "{line}"
    );
}

#[test]
fn missing_required_field_is_reported() {
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {subset: x}\n";
    let line = only_error(text);
    assert!(
        line.contains("spec.http[0].route[0].destination: missing field `host`; add the field"),
        "{line}"
    );
}

#[test]
fn every_error_of_every_document_is_reported() {
    let bad = SERVICE_ENTRY.replace("hosts:", "hostz:");
    let text = format!("{bad}---\n{bad}");
    let errors = load(&text).expect_err("two errors");
    assert_eq!(errors.len(), 2);
    assert!(errors.0[1].to_string().contains("document 2"));
}

#[test]
fn mesh_config_defaults_to_allow_any() {
    assert_eq!(
        parse_mesh(Path::new("m"), "").expect("empty"),
        MeshConfig::default()
    );
    assert_eq!(
        parse_mesh(Path::new("m"), "# nothing\n")
            .expect("comment")
            .outbound_traffic_policy
            .mode,
        OutboundMode::AllowAny
    );
}

#[test]
fn mesh_config_is_read_plain_or_from_the_istio_config_map() {
    let plain = parse_mesh(
        Path::new("m"),
        "outboundTrafficPolicy: \n  mode: REGISTRY_ONLY\naccessLogFile: /dev/stdout\n",
    )
    .expect("plain");
    assert_eq!(
        plain.outbound_traffic_policy.mode,
        OutboundMode::RegistryOnly
    );
    let map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n  namespace: istio-system\ndata:\n  mesh: |-\n    accessLogFile: /dev/stdout\n    outboundTrafficPolicy:\n      mode: REGISTRY_ONLY\n  meshNetworks: 'networks: {}'\n";
    let from_map = parse_mesh(Path::new("m"), map).expect("config map");
    assert_eq!(
        from_map.outbound_traffic_policy.mode,
        OutboundMode::RegistryOnly
    );
}

#[test]
fn mesh_config_errors_name_the_field() {
    let error = parse_mesh(
        Path::new("mesh.yaml"),
        "outboundTrafficPolicy:\n  mode: BLOCK\n",
    )
    .expect_err("bad mode");
    let line = error.to_string();
    assert!(
        line.starts_with("mesh.yaml:2: outboundTrafficPolicy.mode: unknown variant `BLOCK`"),
        "{line}"
    );
    let map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: \"outboundTrafficPolicy: {mode: BLOCK}\"\n";
    let line = parse_mesh(Path::new("cm.yaml"), map)
        .expect_err("bad mode")
        .to_string();
    assert!(
        line.starts_with("cm.yaml: data.mesh.outboundTrafficPolicy.mode: unknown variant `BLOCK`"),
        "{line}"
    );
    let line = parse_mesh(
        Path::new("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
    )
    .expect_err("no mesh")
    .to_string();
    assert!(line.contains("ConfigMap has no string data.mesh"), "{line}");
}

#[test]
fn load_dir_reads_yaml_files_recursively_in_order_and_skips_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("b/nested")).expect("mkdir");
    fs::create_dir_all(root.join("..data")).expect("mkdir");
    let named = |name: &str| SERVICE_ENTRY.replace("httpbin-ext", name);
    fs::write(root.join("b/nested/z.yml"), named("z")).expect("write");
    fs::write(root.join("a.yaml"), named("a")).expect("write");
    fs::write(root.join("..data/a.yaml"), named("hidden")).expect("write");
    fs::write(root.join(".#a.yaml"), "not: [yaml").expect("write");
    fs::write(root.join("README.md"), "# not config").expect("write");
    fs::write(
        root.join("mesh.yaml"),
        "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n",
    )
    .expect("write");
    let snapshot = load_dir(root, Some(&root.join("mesh.yaml"))).expect("loads");
    let names: Vec<_> = snapshot
        .service_entries
        .iter()
        .map(|entry| entry.meta.name.as_str())
        .collect();
    assert_eq!(names, ["a", "z"]);
    assert_eq!(
        snapshot.mesh.outbound_traffic_policy.mode,
        OutboundMode::RegistryOnly
    );
}

#[test]
fn load_dir_reads_a_single_file_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("se.yaml");
    fs::write(&file, SERVICE_ENTRY).expect("write");
    let snapshot = load_dir(&file, None).expect("loads");
    assert_eq!(snapshot.service_entries[0].origin.file, file);
}

#[test]
fn load_dir_reports_a_missing_directory_and_mesh_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let errors = load_dir(&missing, Some(&dir.path().join("mesh.yaml"))).expect_err("missing");
    assert_eq!(errors.len(), 2, "{errors}");
    assert!(
        errors
            .0
            .iter()
            .all(|error| matches!(error.problem, Problem::Io { .. }))
    );
}

#[test]
fn a_file_that_does_not_parse_adds_nothing_and_is_named_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let broken = root.join("broken.yaml");
    // The first document is complete, but the file is not YAML as a whole.
    fs::write(&broken, format!("{SERVICE_ENTRY}---\nhosts: [unclosed\n")).expect("write");
    fs::write(
        root.join("good.yaml"),
        SERVICE_ENTRY.replace("httpbin-ext", "good"),
    )
    .expect("write");
    let loaded = read_dir(root, None);
    assert_eq!(loaded.unreadable, std::slice::from_ref(&broken));
    assert!(!loaded.mesh_failed);
    let names: Vec<_> = loaded
        .snapshot
        .service_entries
        .iter()
        .map(|entry| entry.meta.name.as_str())
        .collect();
    assert_eq!(names, ["good"]);
    assert!(matches!(
        loaded.errors.as_slice(),
        [error] if matches!(error.problem, Problem::Syntax { .. })
    ));

    // What the file held at the last load is kept, in the place a fresh
    // load gives it: broken.yaml sorts before good.yaml, so its resources
    // come first (the first VirtualService for a host wins, so order is
    // precedence).
    let last = load_dir(&root.join("good.yaml"), None).expect("loads");
    let mut last = last;
    last.service_entries[0].origin.file = broken;
    last.service_entries[0].meta.name = "kept".into();
    let mut loaded = loaded;
    keep_unreadable(&mut loaded, &last);
    let names: Vec<_> = loaded
        .snapshot
        .service_entries
        .iter()
        .map(|entry| entry.meta.name.as_str())
        .collect();
    assert_eq!(names, ["kept", "good"]);
}

#[test]
fn deep_nesting_is_refused_with_its_place_and_keeps_nothing_of_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deep = dir.path().join("deep.yaml");
    // 200 KB of nesting: minutes of parsing before the depth was bounded.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let text = format!(
        "{SERVICE_ENTRY}---\n{}",
        SERVICE_ENTRY.replace("- httpbin.org", &format!("- {nested}"))
    );
    fs::write(&deep, text).expect("write");
    let loaded = read_dir(dir.path(), None);
    assert_eq!(loaded.unreadable, std::slice::from_ref(&deep));
    assert!(loaded.snapshot.service_entries.is_empty());
    let [error] = loaded.errors.as_slice() else {
        panic!("{:?}", loaded.errors);
    };
    assert_eq!(error.location.document, Some(1));
    assert!(
        error
            .to_string()
            .contains("nested more than 64 levels deep"),
        "{error}"
    );
    let mesh = dir.path().join("mesh.yaml");
    fs::write(&mesh, format!("outboundTrafficPolicy: {nested}\n")).expect("write");
    let errors = load_mesh_file(&mesh).expect_err("too deep");
    assert!(errors.to_string().contains("levels deep"), "{errors}");
}

#[test]
fn a_file_that_is_not_utf8_is_told_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("latin1.yaml"),
        b"metadata:\n  name: caf\xe9\n",
    )
    .expect("write");
    let errors = load_dir(dir.path(), None).expect_err("not UTF-8");
    let text = errors.to_string();
    assert!(text.contains("save the file as UTF-8"), "{text}");
    assert!(!text.contains("check that the path exists"), "{text}");
    eprintln!("{text}");
}
