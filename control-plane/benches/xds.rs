//! Control-plane benchmarks, printed as plain numbers:
//! 1. translating 10,000 ServiceEntries for one sidecar;
//! 2. pushing a one-line change (a route timeout) to 1,000 connected ADS
//!    streams, each subscribed to clusters, listeners and routes as a
//!    sidecar is: time until every stream has the new route, and memory per
//!    connected proxy (the server's resident-set growth divided by 1,000;
//!    the streams' client ends run in a child process). The streams use the
//!    plaintext port: the push path is the secure port's, without TLS.
//!
//! Run: `cargo bench -p control-plane --bench xds`

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::config::model::{
    HttpRoute, HttpRouteDestination, Location, Resolution, ServiceEntry, ServicePort,
    VirtualService,
};
use control_plane::config::{ConfigSnapshot, Meta, Origin, Resource};
use control_plane::metrics::Metrics;
use control_plane::translate::{self, Proxy};
use control_plane::xds::{self, TrustedGateways, XdsContext, state::MeshStatePublisher};
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
        dns_capture: false,
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

/// Set (to the server's address) in the child process that plays the
/// proxies, so the server's memory is measured without the clients'.
const CLIENTS_ENV: &str = "XDS_BENCH_CLIENTS";

/// The proxies' side, in a child process: `PROXIES` ADS streams that
/// subscribe as a sidecar Envoy does (clusters and listeners by wildcard,
/// the route configuration its listeners name) and ACK every response.
/// Prints `ready` when a stream has its first routes and `updated` for
/// each later route push.
async fn run_clients(addr: String) {
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
    let mut streams = tokio::task::JoinSet::new();
    for i in 0..PROXIES {
        let mut client =
            AggregatedDiscoveryServiceClient::new(channels[i / STREAMS_PER_CONNECTION].clone());
        streams.spawn(async move {
            let (req_tx, req_rx) = mpsc::channel(8);
            let subscriptions = [
                (type_url::CLUSTER, vec![]),
                (type_url::LISTENER, vec![]),
                (type_url::ROUTE, vec!["80".to_string()]),
            ];
            for (index, (type_url, names)) in subscriptions.iter().enumerate() {
                req_tx
                    .send(DiscoveryRequest {
                        node: (index == 0).then(|| sidecar(i).to_node()),
                        type_url: type_url.to_string(),
                        resource_names: names.clone(),
                        ..Default::default()
                    })
                    .await
                    .expect("send");
            }
            let mut responses = client
                .stream_aggregated_resources(ReceiverStream::new(req_rx))
                .await
                .expect("stream")
                .into_inner();
            let mut routes_seen = 0;
            while let Ok(Some(response)) = responses.message().await {
                let names = subscriptions
                    .iter()
                    .find(|(t, _)| *t == response.type_url)
                    .map(|(_, names)| names.clone())
                    .unwrap_or_default();
                let _ = req_tx
                    .send(DiscoveryRequest {
                        type_url: response.type_url.clone(),
                        resource_names: names,
                        version_info: response.version_info.clone(),
                        response_nonce: response.nonce.clone(),
                        ..Default::default()
                    })
                    .await;
                if response.type_url == type_url::ROUTE {
                    routes_seen += 1;
                    println!("{}", if routes_seen == 1 { "ready" } else { "updated" });
                }
            }
        });
    }
    while streams.join_next().await.is_some() {}
}

async fn bench_push() {
    let base = ConfigSnapshot {
        version: 1,
        service_entries: (0..100).map(service_entry).collect(),
        virtual_services: vec![timeout_vs(3)],
        ..Default::default()
    };
    let publisher = MeshStatePublisher::new(Arc::new(base.clone()));
    let context = XdsContext::new(
        publisher.clone(),
        Arc::new(Metrics::default()),
        TrustedGateways::default(),
        xds::Limits::default(),
    );
    let listener = xds::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(xds::serve_plaintext(
        listener,
        context.clone(),
        std::future::pending(),
    ));

    let rss_before = rss_kib();
    let mut clients = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(CLIENTS_ENV, addr.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the clients");
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (updates_tx, mut updates_rx) = mpsc::unbounded_channel::<Instant>();
    let stdout = clients.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let sent = match line.as_deref() {
                Ok("ready") => ready_tx.send(()).is_ok(),
                Ok("updated") => updates_tx.send(Instant::now()).is_ok(),
                _ => false,
            };
            if !sent {
                break;
            }
        }
    });
    for _ in 0..PROXIES {
        ready_rx
            .recv()
            .await
            .expect("every stream gets its first routes");
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
    let _ = clients.kill();
    let _ = clients.wait();
    println!(
        "push: one-line change (route timeout) to {PROXIES} ADS streams (clusters, listeners, routes each): all converged in {:.1} ms",
        (last - start).as_secs_f64() * 1e3
    );
    println!(
        "memory: {per_proxy_kib:.1} KiB resident per connected proxy in the server (clients in another process)"
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(addr) = std::env::var(CLIENTS_ENV) {
        runtime.block_on(run_clients(addr));
        return;
    }
    bench_translate();
    runtime.block_on(bench_push());
}
