//! istio.io's egress-kubernetes-services task, applied as published
//! (`fixtures/docs/egress-kubernetes-services/`, byte for byte): the
//! ExternalName Service `my-httpbin` for httpbin.org and the
//! DestinationRule that turns Istio's mutual TLS off for it. The app's curl
//! to `my-httpbin.default.svc.cluster.local`, as the task sends it, goes
//! through our agent and then through Envoy 1.40 on the same control plane
//! ([`integration_tests::parity`]); both must reach httpbin.org (resolved
//! by the test's DNS server) with the decorator the task's output shows.
//!
//! The task's second part, a Service with Endpoints at Wikipedia's public
//! addresses reached through its cluster IP, needs those addresses: its
//! snippets are only validated (`docs_examples.rs`).
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

use anyhow::Result;
use integration_tests::docs_tasks::{doc, run_task};
use integration_tests::parity::{Outcome, Ready, Request, Scenario};

const MY_HTTPBIN_CLUSTER: &str = "outbound|80||my-httpbin.default.svc.cluster.local";

#[test]
fn egress_kubernetes_services_externalname_applies_as_published() -> Result<()> {
    run_task(
        "egress_kubernetes_services_externalname_applies_as_published",
        |_| {
            Ok(vec![
                Scenario::new(
                    "egress-kubernetes-services: ExternalName Service my-httpbin",
                    Request::get("http://my-httpbin.default.svc.cluster.local/headers"),
                    Outcome::http(200)
                        .x_envoy(&["x-envoy-upstream-service-time"])
                        .decorator("my-httpbin.default.svc.cluster.local:80/*")
                        .from_sidecar("200 -"),
                )
                .files(vec![
                    doc(
                        "egress-kubernetes-services/kubernetes_externalname_service_to_access_an_external_service_1.yaml",
                    )?,
                    doc(
                        "egress-kubernetes-services/kubernetes_externalname_service_to_access_an_external_service_4.yaml",
                    )?,
                ])
                .ready(vec![Ready::Has("80", MY_HTTPBIN_CLUSTER)]),
            ])
        },
    )
}
