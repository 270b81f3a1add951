//! What a stream may cost the control plane, tried as an attacker would: a
//! first delta request naming every resource, a proxy that never reads, a
//! config larger than the limits, and node ids or claims that would forge
//! log lines.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use prost::Message;
use proto::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use tonic::Code;
use tracing_subscriber::fmt::MakeWriter;

use super::*;
use crate::config::load::load_str;
use crate::xds::limits::MAX_MESSAGE_SIZE;

/// `count` ServiceEntries of one DNS host each.
fn service_entries(count: usize) -> ConfigSnapshot {
    let yaml: String = (0..count)
        .map(|i| {
            format!(
                "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
                 metadata: {{name: host-{i}, namespace: default}}\n\
                 spec:\n  hosts: [host-{i}.example.com]\n  \
                 ports: [{{number: 443, name: tls, protocol: TLS}}]\n  resolution: DNS\n"
            )
        })
        .collect();
    load_str(Path::new("hosts.yaml"), &yaml).expect("loads")
}

/// The value of `metric` (with its labels) in `/metrics`, 0 when absent.
fn metric(mesh: &Mesh, metric: &str) -> u64 {
    let prefix = format!("{metric} ");
    mesh.context
        .metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.parse().expect("a count"))
}

/// Waits until `check` holds, or fails the test after [`WAIT`].
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_first_delta_request_naming_100k_resources_is_read() {
    let mesh = Mesh::start().await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("channel");
    let initial: HashMap<String, String> = (0..100_000)
        .map(|i| {
            (
                format!("outbound|443||host-{i}.example.com"),
                format!("{i:016x}"),
            )
        })
        .collect();
    let first = DeltaDiscoveryRequest {
        node: Some(sidecar("default", "sleep")),
        type_url: type_url::CLUSTER.to_string(),
        initial_resource_versions: initial,
        ..Default::default()
    };
    assert!(first.encoded_len() > 5_000_000, "{}", first.encoded_len());
    let (requests, rx) = mpsc::channel(1);
    requests.send(first).await.expect("queued");
    let mut responses = AggregatedDiscoveryServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream opened")
        .into_inner();
    let response = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("a response in time")
        .expect("a response, not a status")
        .expect("the stream goes on");
    assert_eq!(response.type_url, type_url::CLUSTER);
    assert!(
        response
            .removed_resources
            .iter()
            .any(|name| name == "outbound|443||host-99999.example.com"),
        "the clusters the proxy held that the mesh does not have are removed"
    );
}

#[tokio::test]
async fn a_proxy_that_never_reads_has_its_connection_closed_after_the_send_timeout() {
    let send_timeout = Duration::from_secs(1);
    let limits = Limits {
        send_timeout,
        ..Limits::default()
    };
    let mesh = Mesh::start_with_limits(service_entries(2000), limits).await;
    // Its flow-control windows hold 64 KiB, less than its clusters; it
    // never reads them.
    let channel = Endpoint::from_shared(format!("http://{}", mesh.plaintext))
        .expect("endpoint")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("channel");
    let started = Instant::now();
    let request = DiscoveryRequest {
        node: Some(sidecar("default", "sleep")),
        type_url: type_url::CLUSTER.to_string(),
        ..Default::default()
    };
    let mut stream = open_ads(channel, None, request).await.expect("opened");
    eventually("the write timeout", || {
        metric(&mesh, "pilot_xds_write_timeout") == 1
    })
    .await;
    let timed_out = started.elapsed();
    assert!(
        started.elapsed() >= send_timeout,
        "it was given the timeout"
    );
    eventually("the proxy gone", || mesh.context.connections.is_empty()).await;
    // What it reads now is what its window held, then the broken connection.
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match stream.responses.message().await {
                Ok(Some(_)) => continue,
                ended => return ended,
            }
        }
    })
    .await
    .expect("the stream ends");
    assert!(
        ended.is_err(),
        "the connection was cut, not ended: {ended:?}"
    );
    eprintln!(
        "a proxy that never reads 2000 clusters: cut after {timed_out:?} (send timeout \
         {send_timeout:?})"
    );
}

#[tokio::test]
async fn a_config_over_the_per_proxy_limit_is_refused_naming_the_proxy_and_the_limit() {
    let limits = Limits {
        max_config_bytes_per_proxy: 10_000,
        ..Limits::default()
    };
    let mesh = Mesh::start_with_limits(service_entries(200), limits).await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("channel");
    let node = sidecar("default", "sleep");
    let status = first_response(channel, None, node.clone(), type_url::CLUSTER)
        .await
        .err()
        .expect("refused");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let message = status.message();
    assert!(message.contains(&node.id), "{message}");
    assert!(
        message.contains("over the limit of 10000 bytes per proxy"),
        "{message}"
    );
    assert!(
        message.contains("--max-config-bytes-per-proxy"),
        "{message}"
    );
    assert_eq!(
        metric(
            &mesh,
            "pilot_xds_config_size_exceeded_total{limit=\"per_proxy\"}"
        ),
        1
    );
    assert!(mesh.context.connections.is_empty());
}

#[tokio::test]
async fn a_config_that_grows_past_the_limit_is_not_sent_and_the_proxy_keeps_its_own() {
    let limits = Limits {
        max_config_bytes_per_proxy: 20_000,
        ..Limits::default()
    };
    let mesh = Mesh::start_with_limits(service_entries(1), limits).await;
    let channel = mesh
        .plaintext_channel(mesh.plaintext)
        .await
        .expect("channel");
    let (mut stream, first) = first_response(
        channel,
        None,
        sidecar("default", "sleep"),
        type_url::CLUSTER,
    )
    .await
    .expect("served");
    stream.ack(&first, &[]).await;
    mesh.context
        .publisher
        .set_snapshot(Arc::new(service_entries(300)));
    eventually("the refusal", || {
        metric(
            &mesh,
            "pilot_xds_config_size_exceeded_total{limit=\"per_proxy\"}",
        ) == 1
    })
    .await;
    mesh.context
        .publisher
        .set_snapshot(Arc::new(service_entries(2)));
    let next = stream.next().await.expect("the next config that fits");
    assert_eq!(
        next.resources.len(),
        first.resources.len() + 1,
        "the oversized config was never sent"
    );
}

#[tokio::test]
async fn node_ids_with_control_characters_are_refused() {
    let mesh = Mesh::start().await;
    for id in [
        "sidecar~10.1.0.5~pod-1.default~default.svc.cluster.local\nINFO forged line",
        "sidecar~10.1.0.5~\x1b[31mpod-1.default~default.svc.cluster.local",
    ] {
        let channel = mesh
            .plaintext_channel(mesh.plaintext)
            .await
            .expect("channel");
        let node = Node {
            id: id.to_string(),
            ..sidecar("default", "sleep")
        };
        let status = first_response(channel, None, node, type_url::CLUSTER)
            .await
            .err()
            .expect("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}");
        assert!(status.message().contains("control character"), "{status:?}");
        eprintln!(
            "node id {id:?} -> {:?}: {}",
            status.code(),
            status.message()
        );
    }
    assert!(mesh.context.connections.is_empty());
}

/// Log lines written in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

#[test]
fn what_a_caller_claims_is_logged_escaped() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let forged = "evil\nINFO control_plane::xds: proxy connected\x1b[0m";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mesh = Mesh::start().await;
        let token = mesh.token("default", "sleep");
        let node = Proxy {
            namespace: forged.to_string(),
            ..Proxy::from_node(&sidecar("default", "sleep")).expect("node")
        }
        .to_node();
        mesh.connect(Some(&token), node)
            .await
            .err()
            .expect("another namespace than its token's");
        let channel = mesh
            .plaintext_channel(mesh.plaintext)
            .await
            .expect("channel");
        let (stream, response) = first_response(
            channel,
            None,
            sidecar("default", "sleep"),
            type_url::CLUSTER,
        )
        .await
        .expect("served");
        let nack = DiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail: Some(proto::pb::google::rpc::Status {
                message: forged.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        stream.requests.send(nack).await.expect("sent");
        eventually("the NACK", || {
            metric(&mesh, "pilot_total_xds_rejects{type=\"cds\"}") == 1
        })
        .await;
    });
    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("UTF-8");
    assert!(text.contains("refused a call"), "{text}");
    assert!(text.contains("proxy rejected config (NACK)"), "{text}");
    assert!(!text.contains('\x1b'), "{text}");
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("INFO control_plane")),
        "a forged line: {text}"
    );
    assert!(text.contains("evil\\nINFO"), "{text}");
    for line in text.lines().filter(|line| line.contains("evil")) {
        eprintln!("logged: {line}");
    }
}
