//! The count: `control-plane validate` on every example collected from
//! istio.io (`fixtures/docs/`: the egress tasks' snippets and the reference
//! pages' examples), each with the snippets it builds on, against a table
//! of what must come of it: it applies (warnings allowed, as istiod applies
//! a resource `istioctl analyze` warns about), or validate reports the
//! field it does not support. Prints "N examples tried, M apply".

use std::fs;

use anyhow::{Context, Result};
use integration_tests::control_plane::{ConfigDir, validate};
use integration_tests::docs::{ClientCredential, expand, in_namespace, snippet};
use integration_tests::tls::TestCa;

/// What `validate` says of an example.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Exit 0, and no line naming the example's file is an error or says
    /// "not supported" (warnings allowed).
    Applies,
    /// A line naming the example's file says this field is not supported.
    NotSupported(&'static str),
    /// Its kind is named as one the control plane does not handle.
    NotHandled,
    /// Anything else: the first line naming the example, or the exit.
    Rejected(String),
}

/// What `validate` must say of an example.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Applies,
    /// Not supported, naming this field.
    NotSupported(&'static str),
    /// Its kind named as not handled (istiod would apply it).
    NotHandled,
    /// Rejected, saying this (as Kubernetes or istiod would reject it).
    Rejected(&'static str),
}

impl Expected {
    fn is(&self, verdict: &Verdict) -> bool {
        match (self, verdict) {
            (Expected::Applies, Verdict::Applies) => true,
            (Expected::NotSupported(field), Verdict::NotSupported(got)) => field == got,
            (Expected::NotHandled, Verdict::NotHandled) => true,
            (Expected::Rejected(text), Verdict::Rejected(line)) => line.contains(text),
            _ => false,
        }
    }
}

/// One example: a file of `fixtures/docs`, the files it builds on, and the
/// namespace `kubectl apply -n` puts it in (if the docs say so).
struct Example {
    file: &'static str,
    context: &'static [&'static str],
    namespace: Option<&'static str>,
    expected: Expected,
}

const fn applies(file: &'static str, context: &'static [&'static str]) -> Example {
    Example {
        file,
        context,
        namespace: None,
        expected: Expected::Applies,
    }
}

const fn applies_in(
    file: &'static str,
    context: &'static [&'static str],
    namespace: &'static str,
) -> Example {
    Example {
        file,
        context,
        namespace: Some(namespace),
        expected: Expected::Applies,
    }
}

const fn rejected(
    file: &'static str,
    context: &'static [&'static str],
    text: &'static str,
) -> Example {
    Example {
        file,
        context,
        namespace: None,
        expected: Expected::Rejected(text),
    }
}

const fn not_handled(file: &'static str) -> Example {
    Example {
        file,
        context: &[],
        namespace: None,
        expected: Expected::NotHandled,
    }
}

const fn not_supported(file: &'static str, field: &'static str) -> Example {
    Example {
        file,
        context: &[],
        namespace: None,
        expected: Expected::NotSupported(field),
    }
}

const GATEWAY_HTTP: &[&str] = &[
    "egress-gateway/egress_gateway_for_http_traffic_1.yaml",
    "egress-gateway/egress_gateway_for_http_traffic_3.yaml",
];
const GATEWAY_TLS_ORIGINATION: &[&str] = &[
    "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_1.yaml",
    "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_3.yaml",
];
const GATEWAY_MTLS: &[&str] =
    &["egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_2.yaml"];
const SDS_MTLS: &[&str] = &[
    "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_2.yaml",
];
const SDS_SIMPLE: &[&str] = &[
    "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_2.yaml",
];

/// Every example, task by task, then the reference pages'.
fn examples() -> Vec<Example> {
    vec![
        applies("egress-control/access_an_external_http_service_1.yaml", &[]),
        applies(
            "egress-control/access_an_external_https_service_1.yaml",
            &[],
        ),
        applies(
            "egress-control/manage_traffic_to_external_services_2.yaml",
            &["egress-control/access_an_external_http_service_1.yaml"],
        ),
        applies("egress-tls-origination/apply_simple.yaml", &[]),
        applies("egress-tls-origination/apply_origination.yaml", &[]),
        applies("egress-tls-origination/client_credential_secret.yaml", &[]),
        applies(
            "egress-tls-origination/mutual_tls_origination_at_sidecar.yaml",
            &["egress-tls-origination/client_credential_secret.yaml"],
        ),
        applies("egress-gateway/egress_gateway_for_http_traffic_1.yaml", &[]),
        applies("egress-gateway/egress_gateway_for_http_traffic_3.yaml", &[]),
        applies(
            "egress-gateway/egress_gateway_for_http_traffic_5.yaml",
            GATEWAY_HTTP,
        ),
        applies(
            "egress-gateway/egress_gateway_for_https_traffic_1.yaml",
            &[],
        ),
        applies(
            "egress-gateway/egress_gateway_for_https_traffic_3.yaml",
            &["egress-gateway/egress_gateway_for_https_traffic_1.yaml"],
        ),
        applies(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_1.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_3.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_4.yaml",
            GATEWAY_TLS_ORIGINATION,
        ),
        applies(
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_1.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_2.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_3.yaml",
            GATEWAY_MTLS,
        ),
        applies_in(
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_4.yaml",
            &[
                "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_1.yaml",
            ],
            "istio-system",
        ),
        applies(
            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_1.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_2.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_3.yaml",
            SDS_SIMPLE,
        ),
        applies_in(
            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_4.yaml",
            &[
                "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_1.yaml",
            ],
            "istio-system",
        ),
        applies(
            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_1.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_2.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_3.yaml",
            SDS_MTLS,
        ),
        applies_in(
            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_4.yaml",
            &[
                "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_1.yaml",
            ],
            "istio-system",
        ),
        applies(
            "wildcard-egress-hosts/configure_direct_traffic_to_a_wildcard_host_1.yaml",
            &[],
        ),
        applies(
            "wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_1.yaml",
            &[],
        ),
        applies(
            "wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_3.yaml",
            &["wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_1.yaml"],
        ),
        // The Gateway API tabs.
        applies(
            "egress-gateway/gateway-api/egress_gateway_for_http_traffic_4.yaml",
            &[],
        ),
        applies(
            "egress-gateway/gateway-api/egress_gateway_for_http_traffic_6.yaml",
            &[],
        ),
        applies(
            "egress-gateway/gateway-api/egress_gateway_for_https_traffic_4.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/gateway-api/perform_tls_origination_with_an_egress_gateway_4.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/gateway-api/perform_tls_origination_with_an_egress_gateway_6.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/gateway-api/perform_tls_origination_with_an_egress_gateway_7.yaml",
            &[
                "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_1.yaml",
            ],
        ),
        applies(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_2.yaml",
            &[],
        ),
        // The Gateway applies; the Role and RoleBinding that let the
        // gateway read its Secret are Kubernetes RBAC, named as not handled.
        not_handled(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_4.yaml",
        ),
        applies(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_6.yaml",
            &[],
        ),
        applies(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_8.yaml",
            &[
                "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_2.yaml",
            ],
        ),
        applies(
            "wildcard-egress-hosts/gateway-api/configure_egress_gateway_traffic_to_a_wildcard_host_2.yaml",
            &[],
        ),
        // Kubernetes Services and Endpoints are the registry.
        applies(
            "egress-kubernetes-services/kubernetes_externalname_service_to_access_an_external_service_1.yaml",
            &[],
        ),
        applies(
            "egress-kubernetes-services/kubernetes_externalname_service_to_access_an_external_service_4.yaml",
            &[],
        ),
        applies(
            "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_1.yaml",
            &[],
        ),
        applies(
            "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_2.yaml",
            &[
                "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_1.yaml",
            ],
        ),
        applies(
            "egress-kubernetes-services/use_a_kubernetes_service_with_endpoints_to_access_an_external_service_5.yaml",
            &[],
        ),
        applies(
            "http-proxy/configure_traffic_to_external_https_proxy_1.yaml",
            &[],
        ),
        applies(
            "blog-egress-tcp/mesh_external_service_entry_for_an_external_mysql_instance.yaml",
            &[],
        ),
        applies(
            "blog-egress-mongo/control_tcp_egress_traffic_without_a_gateway.yaml",
            &[],
        ),
        applies(
            "blog-egress-mongo/direct_tcp_egress_traffic_through_an_egress_gateway.yaml",
            &["blog-egress-mongo/control_tcp_egress_traffic_without_a_gateway.yaml"],
        ),
        applies("reference/service-entry/01-external-svc-https.yaml", &[]),
        applies(
            "reference/service-entry/02-external-svc-mongocluster.yaml",
            &[],
        ),
        applies(
            "reference/service-entry/03-mtls-mongocluster.yaml",
            &["reference/service-entry/02-external-svc-mongocluster.yaml"],
        ),
        applies("reference/service-entry/04-external-svc-redirect.yaml", &[]),
        applies(
            "reference/service-entry/05-tls-routing.yaml",
            &["reference/service-entry/04-external-svc-redirect.yaml"],
        ),
        applies("reference/service-entry/06-external-svc-httpbin.yaml", &[]),
        applies("reference/service-entry/07-istio-egressgateway.yaml", &[]),
        // The short gateway name means egress/istio-egressgateway, which
        // does not exist: istiod applies it, and istioctl analyze warns.
        applies(
            "reference/service-entry/08-gateway-routing.yaml",
            &[
                "reference/service-entry/06-external-svc-httpbin.yaml",
                "reference/service-entry/07-istio-egressgateway.yaml",
            ],
        ),
        applies(
            "reference/service-entry/09-external-svc-wildcard-example.yaml",
            &[],
        ),
        not_supported(
            "reference/service-entry/10-unix-domain-socket-example.yaml",
            "spec.endpoints[0].address",
        ),
        applies("reference/service-entry/11-external-svc-dns.yaml", &[]),
        applies(
            "reference/service-entry/12-httpbin-subject-alt-names.yaml",
            &[],
        ),
        applies(
            "reference/service-entry/13-details-vm-workload-entries.yaml",
            &[],
        ),
        applies(
            "reference/service-entry/14-details-svc.yaml",
            &["reference/service-entry/13-details-vm-workload-entries.yaml"],
        ),
        applies("reference/gateway/01-my-gateway.yaml", &[]),
        applies(
            "reference/gateway/02-bookinfo-rule.yaml",
            &["reference/gateway/01-my-gateway.yaml"],
        ),
        // A comment continued on the next line: not YAML, as kubectl says too.
        rejected(
            "reference/gateway/03-bookinfo-Mongo.yaml",
            &["reference/gateway/01-my-gateway.yaml"],
            "YAML syntax error",
        ),
        applies("reference/gateway/04-my-gateway-namespaced-hosts.yaml", &[]),
        applies("reference/gateway/05-my-ingress.yaml", &[]),
        applies("reference/gateway/06-my-tcp-ingress.yaml", &[]),
        applies("reference/gateway/07-my-tls-ingress.yaml", &[]),
        applies("reference/workload-entry/01-details-svc-vm.yaml", &[]),
        applies(
            "reference/workload-entry/02-details-svc-static.yaml",
            &["reference/workload-entry/01-details-svc-vm.yaml"],
        ),
        applies("reference/workload-entry/03-details-svc-vm-dns.yaml", &[]),
        applies(
            "reference/workload-entry/04-details-svc-dns.yaml",
            &["reference/workload-entry/03-details-svc-vm-dns.yaml"],
        ),
        applies("reference/sidecar/01-default-istio-config.yaml", &[]),
        applies("reference/sidecar/02-default-prod-us1.yaml", &[]),
        not_supported("reference/sidecar/03-ratings.yaml", "spec.ingress"),
        not_handled("reference/sidecar/04-ratings-istio-mtls-exception-peerauthentication.yaml"),
        applies(
            "reference/sidecar/05-ratings-istio-mtls-exception-destinationrule.yaml",
            &[],
        ),
        not_supported("reference/sidecar/06-no-ip-tables.yaml", "spec.ingress"),
        applies("reference/sidecar/07-external-svc-mysql.yaml", &[]),
        not_supported(
            "reference/sidecar/08-partial-ip-tables.yaml",
            "spec.ingress",
        ),
        applies(
            "reference/destination-rule/01-bookinfo-ratings-least-conn.yaml",
            &[],
        ),
        applies(
            "reference/destination-rule/02-bookinfo-ratings-subset.yaml",
            &[],
        ),
        applies(
            "reference/destination-rule/03-bookinfo-ratings-port.yaml",
            &[],
        ),
        applies("reference/destination-rule/04-bookinfo-redis.yaml", &[]),
        applies(
            "reference/destination-rule/05-bookinfo-ratings-round-robin.yaml",
            &[],
        ),
        applies(
            "reference/destination-rule/06-bookinfo-ratings-consistent-hash.yaml",
            &[],
        ),
        // istiod no longer reads the deprecated consecutiveErrors.
        not_supported(
            "reference/destination-rule/07-reviews-cb-policy.yaml",
            "spec.trafficPolicy.outlierDetection.consecutiveErrors",
        ),
        applies("reference/destination-rule/08-db-mtls.yaml", &[]),
        applies("reference/destination-rule/09-tls-foo.yaml", &[]),
        applies("reference/destination-rule/10-ratings-istio-mtls.yaml", &[]),
        applies(
            "reference/virtual-service/01-reviews-route.yaml",
            &["reference/virtual-service/02-reviews-destination.yaml"],
        ),
        applies("reference/virtual-service/02-reviews-destination.yaml", &[]),
        applies("reference/virtual-service/03-ratings-route-cors.yaml", &[]),
        applies(
            "reference/virtual-service/04-reviews-route-short-names.yaml",
            &["reference/virtual-service/05-reviews-destination-short-name.yaml"],
        ),
        applies(
            "reference/virtual-service/05-reviews-destination-short-name.yaml",
            &[],
        ),
        applies("reference/virtual-service/06-my-productpage-rule.yaml", &[]),
        // Two documents without `---` between them: one mapping with
        // duplicate keys, which kubectl refuses too.
        rejected(
            "reference/virtual-service/07-external-svc-wikipedia-and-my-wiki-rule.yaml",
            &[],
            "duplicate entry",
        ),
    ]
}

/// The example's file name in the config directory (unique per run).
fn file_name(path: &str) -> String {
    path.replace('/', "--")
}

/// A snippet as the docs' shell and kubectl hand it over: the addresses
/// and ports the docs leave to shell variables, a Secret's files.
fn applied(path: &str, namespace: Option<&str>, credential: &ClientCredential) -> Result<String> {
    let mut values = credential.secret_values();
    values.extend([
        ("PROXY_IP", "192.0.2.10".to_string()),
        ("PROXY_PORT", "3128".to_string()),
        ("MONGODB_IP", "192.0.2.20".to_string()),
        ("MONGODB_PORT", "27017".to_string()),
        ("EGRESS_GATEWAY_MONGODB_PORT", "7777".to_string()),
        ("MYSQL_DB_HOST", "mysqldb.example.com".to_string()),
        ("MYSQL_DB_IP", "192.0.2.30".to_string()),
        ("MYSQL_DB_PORT", "3306".to_string()),
    ]);
    let yaml = expand(&snippet(path)?, &values);
    match namespace {
        Some(namespace) => in_namespace(&yaml, namespace),
        None => Ok(yaml),
    }
}

/// What validate says of `example`, with its context beside it.
fn verdict(example: &Example, credential: &ClientCredential) -> Result<(Verdict, String)> {
    let dir = ConfigDir::new()?;
    for path in example.context {
        dir.write(&file_name(path), &applied(path, None, credential)?)?;
    }
    let name = file_name(example.file);
    dir.write(
        &name,
        &applied(example.file, example.namespace, credential)?,
    )?;
    let output = validate(dir.path(), None)?;
    let text = format!("{}{}", output.stdout, output.stderr);
    let about_example: Vec<&str> = text.lines().filter(|line| line.contains(&name)).collect();
    let not_supported = about_example
        .iter()
        .find(|line| line.contains("not supported"));
    let error = about_example
        .iter()
        .find(|line| line.trim_start().starts_with("error"));
    let verdict = match (not_supported, error) {
        (Some(line), _) => match example.expected {
            Expected::NotSupported(field) if line.contains(field) => Verdict::NotSupported(field),
            _ => Verdict::Rejected(line.to_string()),
        },
        (None, Some(line)) => Verdict::Rejected(line.to_string()),
        (None, None)
            if output.success()
                && about_example
                    .iter()
                    .any(|line| line.starts_with("not handled")) =>
        {
            Verdict::NotHandled
        }
        (None, None) if output.success() => Verdict::Applies,
        (None, None) => Verdict::Rejected(format!("exit {:?}", output.code())),
    };
    Ok((verdict, text))
}

#[test]
fn every_docs_example_applies_or_names_what_is_not_supported() -> Result<()> {
    let ca = TestCa::new()?;
    let credential = ClientCredential::new(&ca)?;
    let examples = examples();
    let mut applying = 0;
    let mut failures = Vec::new();
    for example in &examples {
        let (verdict, output) =
            verdict(example, &credential).with_context(|| example.file.to_string())?;
        if verdict == Verdict::Applies {
            applying += 1;
        }
        let mark = if example.expected.is(&verdict) {
            "ok "
        } else {
            "BAD"
        };
        println!("{mark} {:<100} {verdict:?}", example.file);
        if !example.expected.is(&verdict) {
            failures.push(format!(
                "{}: expected {:?}, got {verdict:?}\n{output}",
                example.file, example.expected
            ));
        }
    }
    println!("{} examples tried, {applying} apply", examples.len());
    let collected = fixture_count()?;
    assert_eq!(
        collected,
        examples.len(),
        "every fixture under fixtures/docs (but harness/) is in the table"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

/// How many example files `fixtures/docs` holds (its harness stand-ins
/// aside).
fn fixture_count() -> Result<usize> {
    fn count(dir: &std::path::Path) -> Result<usize> {
        let mut total = 0;
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "harness") {
                    total += count(&path)?;
                }
            } else if path.extension().is_some_and(|ext| ext == "yaml") {
                total += 1;
            }
        }
        Ok(total)
    }
    count(&integration_tests::docs::docs_dir())
}
