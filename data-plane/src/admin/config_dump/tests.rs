//! The config dump: Envoy's JSON shape, written in chunks a few ahead of
//! the client, stopped when the client goes, and at most
//! [`MAX_CONCURRENT_DUMPS`] written at once.

use std::time::Duration;

use http_body_util::BodyExt;
use proto::pack;
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use serde_json::Value;

use super::*;

fn store_with_clusters(count: usize) -> Arc<ConfigStore> {
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    let clusters: Vec<Any> = (0..count)
        .map(|index| {
            let cluster = Cluster {
                name: format!("outbound|443||host-{index}.example.com"),
                cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
                ..Default::default()
            };
            pack(type_url::CLUSTER, &cluster)
        })
        .collect();
    store.update(type_url::CLUSTER, &clusters).unwrap();
    Arc::new(store)
}

fn dump_text(store: &ConfigStore) -> String {
    let mut out = Vec::new();
    write(&store.accepted(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[test]
fn the_dump_has_envoys_shape_and_pretty_printing() {
    let store = store_with_clusters(2);
    let endpoints = ClusterLoadAssignment {
        cluster_name: "outbound|443||host-0.example.com".into(),
        ..Default::default()
    };
    store
        .update(type_url::ENDPOINT, &[pack(type_url::ENDPOINT, &endpoints)])
        .unwrap();
    let text = dump_text(&store);
    let dump: Value = serde_json::from_str(&text).expect("the dump is JSON");
    let configs = dump["configs"].as_array().unwrap();
    let types: Vec<&str> = configs
        .iter()
        .map(|c| c["@type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
            "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
        ],
        "one dump per type, in Envoy's order"
    );
    let clusters = configs[0]["dynamic_active_clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    assert_eq!(clusters[0]["client_status"], "ACKED");
    assert_eq!(
        clusters[1]["cluster"]["@type"],
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    assert_eq!(
        clusters[1]["cluster"]["name"],
        "outbound|443||host-1.example.com"
    );
    assert_eq!(
        clusters[1]["cluster"]["type"], "EDS",
        "the resource's own fields, by their .proto names"
    );
    assert_eq!(
        configs[1]["dynamic_endpoint_configs"][0]["endpoint_config"]["cluster_name"],
        "outbound|443||host-0.example.com"
    );
    assert_eq!(
        configs[2].as_object().unwrap().len(),
        1,
        "a type with no resources has only its @type, as protobuf JSON omits empty lists"
    );
    assert_eq!(
        dump,
        whole_dump(&store),
        "written piece by piece, the dump is what building it whole gives"
    );
    assert!(
        text.lines()
            .all(|line| (line.len() - line.trim_start().len()) % 2 == 0),
        "every line indented by two spaces a level:\n{text}"
    );
}

/// The dump built whole from the `*ConfigDump` messages, as Envoy defines
/// it (clusters and endpoints here).
fn whole_dump(store: &ConfigStore) -> Value {
    use proto::pb::envoy::admin::v3::{
        ClustersConfigDump, EndpointsConfigDump, ListenersConfigDump, RoutesConfigDump,
    };
    let accepted = store.accepted();
    let clusters = ClustersConfigDump {
        dynamic_active_clusters: accepted[type_url::CLUSTER]
            .iter()
            .map(|cluster| DynamicCluster {
                cluster: Some(cluster.clone()),
                client_status: ACKED,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let endpoints = EndpointsConfigDump {
        dynamic_endpoint_configs: accepted[type_url::ENDPOINT]
            .iter()
            .map(|endpoint_config| DynamicEndpointConfig {
                endpoint_config: Some(endpoint_config.clone()),
                client_status: ACKED,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let configs: Vec<Value> = [
        proto::pack_named("envoy.admin.v3.ClustersConfigDump", &clusters),
        proto::pack_named("envoy.admin.v3.EndpointsConfigDump", &endpoints),
        proto::pack_named(
            "envoy.admin.v3.ListenersConfigDump",
            &ListenersConfigDump::default(),
        ),
        proto::pack_named(
            "envoy.admin.v3.RoutesConfigDump",
            &RoutesConfigDump::default(),
        ),
    ]
    .iter()
    .map(|any| proto::any_to_json_proto_names(any).unwrap())
    .collect();
    serde_json::json!({ "configs": configs })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_dump_streams_a_few_chunks_ahead_of_its_client() {
    let store = store_with_clusters(20_000);
    let whole = dump_text(&store);
    let dumps = Arc::new(Dumps::default());
    let mut body = stream(store, dumps.clone());
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    eventually("the writer waits for the client", || dumps.active() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ahead = dumps.bytes();
    assert!(
        ahead <= ((CHUNKS_AHEAD + 2) * 2 * CHUNK) as u64,
        "a client that does not read holds back the writer: {ahead} bytes written of {}",
        whole.len()
    );
    let mut received = first.to_vec();
    let mut frames = 1;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.len() < 2 * CHUNK, "chunks stay small: {}", data.len());
        received.extend_from_slice(&data);
        frames += 1;
    }
    assert!(frames > 10, "streamed in {frames} chunks");
    assert_eq!(String::from_utf8(received).unwrap(), whole);
    eventually("the dump is over", || dumps.active() == 0).await;
    assert_eq!(dumps.cancelled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_stops_when_its_client_goes() {
    let store = store_with_clusters(20_000);
    let whole = dump_text(&store).len() as u64;
    let dumps = Arc::new(Dumps::default());
    let mut body = stream(store, dumps.clone());
    body.frame().await.unwrap().unwrap();
    drop(body);
    eventually("the writer stops", || dumps.active() == 0).await;
    assert_eq!(dumps.cancelled(), 1);
    assert!(
        dumps.bytes() < whole / 2,
        "the rest was never written: {} of {whole} bytes",
        dumps.bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumps_wait_their_turn_and_an_abandoned_one_never_starts() {
    let store = store_with_clusters(20_000);
    let dumps = Arc::new(Dumps::default());
    let mut running: Vec<_> = (0..MAX_CONCURRENT_DUMPS)
        .map(|_| stream(store.clone(), dumps.clone()))
        .collect();
    for body in &mut running {
        body.frame().await.unwrap().unwrap();
    }
    let waiting = stream(store.clone(), dumps.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(dumps.active(), MAX_CONCURRENT_DUMPS, "the third waits");
    drop(waiting);
    eventually("the waiting dump is dropped", || dumps.cancelled() == 1).await;
    assert_eq!(dumps.active(), MAX_CONCURRENT_DUMPS);
    drop(running);
    eventually("the running dumps stop", || dumps.active() == 0).await;
    assert_eq!(dumps.cancelled(), 1 + MAX_CONCURRENT_DUMPS as u64);
}
