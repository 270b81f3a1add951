//! Control-plane benchmarks, printed as plain numbers:
//! 1. translating 10,000 ServiceEntries for one sidecar;
//! 2. pushing a one-line change (a route timeout) to 1,000 connected ADS
//!    streams: time until every stream has the new route, and memory per
//!    connected proxy (resident-set growth of this process, which also
//!    holds the 1,000 client ends, divided by 1,000: an upper bound).
//!
//! Run: `cargo bench -p control-plane --bench xds`

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::ca::{CertificateAuthority, DEFAULT_WORKLOAD_CERT_TTL};
use control_plane::config::model::{
    HttpRoute, HttpRouteDestination, Location, Resolution, ServiceEntry, ServicePort,
    VirtualService,
};
use control_plane::config::{ConfigSnapshot, Meta, Origin, Resource};
use control_plane::metrics::Metrics;
use control_plane::translate::{self, Proxy};
use control_plane::xds::{self, XdsContext, state::MeshStatePublisher};
use proto::pb::envoy::service::discovery::v3::DiscoveryRequest;
use proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use shared::node::{NodeId, NodeType};
use shared::type_url;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const SERVICE_ENTRIES: usize = 10_000;
const PROXIES: usize = 1_000;
const STREAMS_PER_CONNECTION: usize = 100;

fn resource<T>(name: &str, spec: T) -> Resource<T> {
    Resource {
        meta: Meta {
            name: name.to_string(),
            namespace: "default".to_string(),
            ..Default::default()
        },
        origin: Origin {
            file: "bench.yaml".into(),
            document: 0,
        },
        spec,
    }
}

fn service_entry(i: usize) -> Resource<ServiceEntry> {
    resource(
        &format!("ext-{i}"),
        ServiceEntry {
            hosts: vec![format!("service-{i}.example.com")],
            ports: vec![
                ServicePort {
                    number: 80,
                    protocol: Some("HTTP".into()),
                    name: "http".into(),
                    target_port: None,
                },
                ServicePort {
                    number: 443,
                    protocol: Some("HTTPS".into()),
                    name: "https".into(),
                    target_port: None,
                },
            ],
            location: Location::MeshExternal,
            resolution: Resolution::Dns,
            ..Default::default()
        },
    )
}

fn timeout_vs(seconds: u64) -> Resource<VirtualService> {
    let yaml = format!("timeout: {seconds}s");
    let timeout = serde_yaml::from_str::<std::collections::BTreeMap<String, String>>(&yaml)
        .expect("yaml")["timeout"]
        .parse()
        .expect("duration");
    resource(
        "service-0",
        VirtualService {
            hosts: vec!["service-0.example.com".into()],
            http: vec![HttpRoute {
                timeout: Some(timeout),
                route: vec![HttpRouteDestination {
                    destination: control_plane::config::model::Destination {
                        host: "service-0.example.com".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    )
}

fn sidecar(i: usize) -> Proxy {
    Proxy {
        id: NodeId::new(
            NodeType::Sidecar,
            "10.0.0.1",
            &format!("app-{i}"),
            "default",
        )
        .to_string(),
        node_type: NodeType::Sidecar,
        namespace: "default".into(),
        labels: Default::default(),
        ips: vec![],
        service_account: "default".into(),
    }
}

fn bench_translate() {
    let snapshot = ConfigSnapshot {
        service_entries: (0..SERVICE_ENTRIES).map(service_entry).collect(),
        ..Default::default()
    };
    let proxy = sidecar(0);
    let runs = 5;
    let mut best = Duration::MAX;
    let mut resources = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = translate::translate(&snapshot, &[], &proxy).into_typed();
        best = best.min(start.elapsed());
        resources = out.values().map(|by_name| by_name.len()).sum();
    }
    println!(
        "translate: {SERVICE_ENTRIES} ServiceEntries (2 ports each) -> {resources} resources for one sidecar: best of {runs} {:.1} ms",
        best.as_secs_f64() * 1e3
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn bench_push() {
    let base = ConfigSnapshot {
        version: 1,
        service_entries: (0..100).map(service_entry).collect(),
        virtual_services: vec![timeout_vs(3)],
        ..Default::default()
    };
    let publisher = MeshStatePublisher::new(Arc::new(base.clone()));
    let ca =
        CertificateAuthority::generate("cluster.local", DEFAULT_WORKLOAD_CERT_TTL).expect("CA");
    let context = XdsContext::new(
        publisher.clone(),
        Arc::new(Metrics::default()),
        Arc::new(ca),
    );
    let listener = xds::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(xds::serve(
        listener,
        context.clone(),
        std::future::pending(),
    ));

    let rss_before = rss_kib();
    let (updates_tx, mut updates_rx) = mpsc::unbounded_channel::<Instant>();
    // 100 streams per HTTP/2 connection stays under the server's default
    // concurrent-stream limit and the process's file descriptor limit.
    let mut channels = Vec::new();
    for _ in 0..PROXIES.div_ceil(STREAMS_PER_CONNECTION) {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        channels.push(channel);
    }
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    for i in 0..PROXIES {
        let mut client =
            AggregatedDiscoveryServiceClient::new(channels[i / STREAMS_PER_CONNECTION].clone());
        let updates_tx = updates_tx.clone();
        let ready_tx = ready_tx.clone();
        tokio::spawn(async move {
            let (req_tx, req_rx) = mpsc::channel(4);
            let node = sidecar(i).to_node();
            req_tx
                .send(DiscoveryRequest {
                    node: Some(node),
                    type_url: type_url::ROUTE.into(),
                    resource_names: vec!["80".into()],
                    ..Default::default()
                })
                .await
                .expect("send");
            let mut responses = client
                .stream_aggregated_resources(ReceiverStream::new(req_rx))
                .await
                .expect("stream")
                .into_inner();
            let mut first = true;
            while let Ok(Some(response)) = responses.message().await {
                let _ = req_tx
                    .send(DiscoveryRequest {
                        type_url: type_url::ROUTE.into(),
                        resource_names: vec!["80".into()],
                        version_info: response.version_info.clone(),
                        response_nonce: response.nonce.clone(),
                        ..Default::default()
                    })
                    .await;
                if first {
                    first = false;
                    let _ = ready_tx.send(());
                } else {
                    let _ = updates_tx.send(Instant::now());
                }
            }
        });
    }
    for _ in 0..PROXIES {
        ready_rx
            .recv()
            .await
            .expect("every stream gets its first response");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let per_proxy_kib = rss_kib().saturating_sub(rss_before) as f64 / PROXIES as f64;

    let changed = ConfigSnapshot {
        version: 2,
        virtual_services: vec![timeout_vs(4)],
        ..base
    };
    let start = Instant::now();
    publisher.set_snapshot(Arc::new(changed));
    let mut last = start;
    for _ in 0..PROXIES {
        last = updates_rx
            .recv()
            .await
            .expect("every stream gets the change");
    }
    println!(
        "push: one-line change (route timeout) to {PROXIES} ADS streams: all converged in {:.1} ms",
        (last - start).as_secs_f64() * 1e3
    );
    println!(
        "memory: {per_proxy_kib:.1} KiB resident per connected proxy (server and client ends together)"
    );
}

fn main() {
    bench_translate();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench_push());
}
