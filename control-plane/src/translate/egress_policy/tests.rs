//! The outbound policy as Istio selects its Sidecar (workload-selected, then
//! namespace-wide, then the root namespace's), the dry run, and the marks
//! the fall-through route and chains carry.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use shared::type_url;

use crate::config::ConfigSnapshot;
use crate::config::load::load_str;
use crate::config::model::OutboundMode;
use crate::translate::test_proxies::{sidecar_in, sidecar_with};
use crate::translate::tests as golden;
use crate::translate::{Proxy, to_json, translate};
use crate::xds::cache::SnapshotCache;
use crate::xds::state::MeshStatePublisher;

/// httpbin.org on port 80 (HTTP), so the sidecar has route `80`.
const HTTPBIN: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
";

/// A namespace-wide Sidecar in `namespace` with `mode`, annotated
/// `istio.io/dry-run: "<dry_run>"` when given.
fn sidecar(namespace: &str, mode: &str, dry_run: Option<&str>) -> String {
    let annotations = dry_run.map_or(String::new(), |v| {
        format!("  annotations: {{istio.io/dry-run: \"{v}\"}}\n")
    });
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  namespace: {namespace}\n{annotations}spec:\n  outboundTrafficPolicy: {{mode: {mode}}}\n"
    )
}

fn snapshot(documents: &[&str], mesh_mode: OutboundMode) -> ConfigSnapshot {
    let text = documents.join("---\n");
    let mut snapshot = load_str(Path::new("policy.yaml"), &text).expect("loads");
    snapshot.mesh.outbound_traffic_policy.mode = mesh_mode;
    snapshot
}

fn in_namespace(namespace: &str) -> Proxy {
    Proxy {
        namespace: namespace.to_string(),
        ..sidecar_with(&[])
    }
}

/// What the fall-through gives `proxy`: (route name, its metadata, the
/// virtualOutbound default chain's cluster, its metadata).
fn fallthrough(snapshot: &ConfigSnapshot, proxy: &Proxy) -> (Value, Value, Value, Value) {
    let resources = translate(snapshot, &[], proxy).into_typed();
    let json = to_json(&resources, &[type_url::ROUTE, type_url::LISTENER]).expect("converts");
    let route = json["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["name"] == "80")
        .expect("route 80");
    let host = route["virtualHosts"]
        .as_array()
        .expect("virtual hosts")
        .last()
        .expect("the fall-through is last");
    let outbound = json["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .find(|l| l["name"] == "virtualOutbound")
        .expect("virtualOutbound");
    let chain = &outbound["defaultFilterChain"];
    (
        host["routes"][0]["name"].clone(),
        host["routes"][0]["metadata"].clone(),
        chain["filters"][0]["typedConfig"]["cluster"].clone(),
        chain["metadata"].clone(),
    )
}

fn mark(value: &str) -> Value {
    json!({"filterMetadata": {"istio": {"egress_policy": value}}})
}

#[test]
fn allow_any_passes_through_unmarked() {
    let (route, route_meta, cluster, chain_meta) = fallthrough(
        &snapshot(&[HTTPBIN], OutboundMode::AllowAny),
        &in_namespace("default"),
    );
    assert_eq!(route, "allow_any");
    assert_eq!(route_meta, Value::Null);
    assert_eq!(cluster, "PassthroughCluster");
    assert_eq!(chain_meta, Value::Null);
}

#[test]
fn registry_only_blocks_and_marks_blocked() {
    let (route, route_meta, cluster, chain_meta) = fallthrough(
        &snapshot(&[HTTPBIN], OutboundMode::RegistryOnly),
        &in_namespace("default"),
    );
    assert_eq!(route, "block_all");
    assert_eq!(route_meta, mark("blocked"));
    assert_eq!(cluster, "BlackHoleCluster");
    assert_eq!(chain_meta, mark("blocked"));
}

#[test]
fn a_root_dry_run_sidecar_applies_mesh_wide_as_allow_any_marked_would_block() {
    let root = sidecar("istio-system", "REGISTRY_ONLY", Some("true"));
    let config = snapshot(&[HTTPBIN, &root], OutboundMode::AllowAny);
    for namespace in ["default", "shop"] {
        let (route, route_meta, cluster, chain_meta) =
            fallthrough(&config, &in_namespace(namespace));
        assert_eq!(route, "allow_any", "{namespace}");
        assert_eq!(route_meta, mark("would_block"), "{namespace}");
        assert_eq!(cluster, "PassthroughCluster", "{namespace}");
        assert_eq!(chain_meta, mark("would_block"), "{namespace}");
    }
}

#[test]
fn a_namespace_sidecar_takes_precedence_over_the_root_one() {
    let root = sidecar("istio-system", "REGISTRY_ONLY", Some("true"));
    let shop = sidecar("shop", "REGISTRY_ONLY", None);
    let config = snapshot(&[HTTPBIN, &root, &shop], OutboundMode::AllowAny);
    let (route, _, cluster, chain_meta) = fallthrough(&config, &in_namespace("shop"));
    assert_eq!(
        (route, cluster, chain_meta),
        (
            json!("block_all"),
            json!("BlackHoleCluster"),
            mark("blocked")
        )
    );
    let (route, _, _, chain_meta) = fallthrough(&config, &in_namespace("default"));
    assert_eq!(
        (route, chain_meta),
        (json!("allow_any"), mark("would_block"))
    );
}

#[test]
fn a_namespace_dry_run_applies_to_that_namespace_only() {
    let shop = sidecar("shop", "REGISTRY_ONLY", Some("true"));
    let config = snapshot(&[HTTPBIN, &shop], OutboundMode::RegistryOnly);
    let (_, _, cluster, chain_meta) = fallthrough(&config, &in_namespace("shop"));
    assert_eq!(
        (cluster, chain_meta),
        (json!("PassthroughCluster"), mark("would_block"))
    );
    let (_, _, cluster, chain_meta) = fallthrough(&config, &in_namespace("default"));
    assert_eq!(
        (cluster, chain_meta),
        (json!("BlackHoleCluster"), mark("blocked"))
    );
}

#[test]
fn dry_run_false_enforces_registry_only() {
    let root = sidecar("istio-system", "REGISTRY_ONLY", Some("false"));
    let config = snapshot(&[HTTPBIN, &root], OutboundMode::AllowAny);
    let (route, route_meta, ..) = fallthrough(&config, &in_namespace("default"));
    assert_eq!((route, route_meta), (json!("block_all"), mark("blocked")));
}

#[test]
fn block_all_answers_502_naming_the_host_in_plain_text() {
    let resources = translate(
        &snapshot(&[HTTPBIN], OutboundMode::RegistryOnly),
        &[],
        &in_namespace("default"),
    )
    .into_typed();
    let json = to_json(&resources, &[type_url::ROUTE]).expect("converts");
    let block_all = &json["routes"][0]["virtualHosts"]
        .as_array()
        .expect("virtual hosts")
        .last()
        .expect("block_all")["routes"][0]["directResponse"];
    assert_eq!(
        *block_all,
        json!({
            "status": 502,
            "bodyFormat": {
                "textFormatSource": {
                    "inlineString": "no ServiceEntry allows %REQ(:AUTHORITY)% (REGISTRY_ONLY)\n"
                },
                "contentType": "text/plain"
            }
        })
    );
}

/// A config reload publishes a new mesh state; the cache translates it
/// again, so removing the annotation turns the dry run into blocking at
/// run time.
#[tokio::test]
async fn a_reload_switches_running_proxies_between_dry_run_and_blocking() {
    let dry = sidecar("istio-system", "REGISTRY_ONLY", Some("true"));
    let enforced = sidecar("istio-system", "REGISTRY_ONLY", None);
    let publisher =
        MeshStatePublisher::new(Arc::new(snapshot(&[HTTPBIN, &dry], OutboundMode::AllowAny)));
    let cache = SnapshotCache::default();
    let proxy = in_namespace("default");
    let route_80 = |cache: &SnapshotCache| {
        let resources = cache.get(&publisher.current(), &proxy);
        let any = &resources.resources(type_url::ROUTE).expect("routes")["80"].any;
        proto::bytes_to_json(type_url::message_name(type_url::ROUTE), &any.value).expect("converts")
            ["virtualHosts"][1]["routes"][0]["name"]
            .clone()
    };
    assert_eq!(route_80(&cache), "allow_any");
    publisher.set_snapshot(Arc::new(snapshot(
        &[HTTPBIN, &enforced],
        OutboundMode::AllowAny,
    )));
    assert_eq!(route_80(&cache), "block_all");
}

/// Every walkthrough step under REGISTRY_ONLY with a root dry-run Sidecar:
/// the sidecar's xDS is ALLOW_ANY's, its fall-throughs marked
/// `would_block`.
#[test]
fn seed_steps_in_dry_run_match_golden_files() {
    let root = sidecar("istio-system", "REGISTRY_ONLY", Some("true"));
    let dry_run = load_str(Path::new("dry-run.yaml"), &root).expect("loads");
    for step in golden::seed_steps() {
        let json = golden::render_edited(
            &step,
            "registry-only.yaml",
            &sidecar_in("default"),
            |snapshot| snapshot.sidecars.extend(dry_run.sidecars.iter().cloned()),
        );
        golden::check_golden(&format!("{step}/registry-only-dry-run/sidecar"), &json);
    }
}
