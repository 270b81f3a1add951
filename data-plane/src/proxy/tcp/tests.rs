//! Fall-through chains end to end on loopback: a blocked connection is
//! named by its SNI and counted on BlackHoleCluster; one that goes out
//! (dry run) is named by the SNI read as it flows; a blocked client that
//! sends nothing (a server-first protocol) is closed promptly.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::proxy::ProxyContext;
use crate::proxy::sni::tests::client_hello;
use crate::proxy::test_fixtures::{
    capture_once, fall_through_context as context, fall_through_outbound,
};
use shared::egress::EgressPolicy;

fn rendered(context: &ProxyContext) -> String {
    let mut out = String::new();
    context.stats.render(&mut out);
    out
}

/// Waits for `metric` with `labels` to be rendered with `value`.
async fn wait_for(context: &ProxyContext, line: &str) {
    for _ in 0..500 {
        if rendered(context).lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {line:?} in\n{}", rendered(context));
}

const SOURCE: &str = "reporter=\"source\",source_workload=\"unknown\",source_workload_namespace=\"unknown\",source_principal=\"unknown\",source_app=\"unknown\",source_version=\"unknown\",source_cluster=\"Kubernetes\",source_canonical_service=\"unknown\",source_canonical_revision=\"latest\",destination_workload=\"unknown\",destination_workload_namespace=\"unknown\",destination_principal=\"unknown\",destination_app=\"unknown\",destination_version=\"unknown\",destination_service_namespace=\"unknown\",destination_cluster=\"unknown\",destination_canonical_service=\"unknown\",destination_canonical_revision=\"latest\",connection_security_policy=\"unknown\"";

#[tokio::test]
async fn blocked_tls_on_the_fall_through_is_named_by_its_sni_and_counted() {
    let context = context();
    let listener = fall_through_outbound("BlackHoleCluster", Some(EgressPolicy::Blocked), false);
    let addr = capture_once(listener, "192.0.2.7:443".parse().unwrap(), context.clone()).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(&client_hello(Some("evil.example")))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "a blocked connection gets nothing");
    wait_for(
        &context,
        &format!("istio_tcp_connections_closed_total{{{SOURCE},destination_service=\"evil.example\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"tcp\",response_code=\"0\",response_flags=\"UH\",egress_policy=\"blocked\"}} 1"),
    )
    .await;
    let out = rendered(&context);
    assert!(
        out.contains(
            "envoy_cluster_upstream_cx_none_healthy{envoy_cluster_name=\"BlackHoleCluster\"} 1\n"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("istio_tcp_connections_opened_total{{{SOURCE},destination_service=\"evil.example\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"tcp\",response_code=\"0\",response_flags=\"UH\",egress_policy=\"blocked\"}} 1\n")), "{out}");
}

#[tokio::test]
async fn plain_tcp_blocked_on_the_fall_through_is_named_by_its_original_destination_ip() {
    let context = context();
    let listener = fall_through_outbound("BlackHoleCluster", Some(EgressPolicy::Blocked), false);
    let addr = capture_once(listener, "192.0.2.8:5432".parse().unwrap(), context.clone()).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"\0\0\0\x08startup").await.unwrap();
    let _ = client.read_to_end(&mut Vec::new()).await;
    wait_for(
        &context,
        &format!("istio_tcp_connections_closed_total{{{SOURCE},destination_service=\"192.0.2.8\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"tcp\",response_code=\"0\",response_flags=\"UH\",egress_policy=\"blocked\"}} 1"),
    )
    .await;
}

/// Envoy's listener filter timeout, which a blocked fall-through does not
/// wait out for a ClientHello that never comes.
const LISTENER_INSPECT_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::test(start_paused = true)]
async fn a_blocked_server_first_client_is_closed_before_the_inspect_timeout() {
    let context = context();
    let listener = fall_through_outbound("BlackHoleCluster", Some(EgressPolicy::Blocked), false);
    let addr = capture_once(listener, "192.0.2.9:25".parse().unwrap(), context.clone()).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    let waited = start.elapsed();
    assert!(rest.is_empty(), "a blocked connection gets nothing");
    assert!(
        waited < LISTENER_INSPECT_TIMEOUT,
        "closed after {waited:?} (virtual time)"
    );
    wait_for(
        &context,
        &format!("istio_tcp_connections_closed_total{{{SOURCE},destination_service=\"192.0.2.9\",destination_service_name=\"BlackHoleCluster\",request_protocol=\"tcp\",response_code=\"0\",response_flags=\"UH\",egress_policy=\"blocked\"}} 1"),
    )
    .await;
}

#[tokio::test]
async fn dry_run_tls_goes_out_named_by_the_sni_read_as_it_flows() {
    let context = context();
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let hello = client_hello(Some("api.example"));
    let expected = hello.clone();
    let server = tokio::spawn(async move {
        let (mut stream, _) = upstream.accept().await.unwrap();
        let mut got = vec![0; expected.len()];
        stream.read_exact(&mut got).await.unwrap();
        stream.write_all(b"reply").await.unwrap();
        got
    });
    let listener =
        fall_through_outbound("PassthroughCluster", Some(EgressPolicy::WouldBlock), false);
    let addr = capture_once(listener, upstream_addr, context.clone()).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&hello).await.unwrap();
    client.shutdown().await.unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"reply");
    assert_eq!(
        server.await.unwrap(),
        hello,
        "the ClientHello passes untouched"
    );
    let labels = format!(
        "{{{SOURCE},destination_service=\"api.example\",destination_service_name=\"PassthroughCluster\",request_protocol=\"tcp\",response_code=\"0\",response_flags=\"-\",egress_policy=\"would_block\"}}"
    );
    wait_for(
        &context,
        &format!("istio_tcp_connections_closed_total{labels} 1"),
    )
    .await;
    let out = rendered(&context);
    assert!(
        out.contains(&format!("istio_tcp_connections_opened_total{labels} 1\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("istio_tcp_sent_bytes_total{labels} 5\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "istio_tcp_received_bytes_total{labels} {}\n",
            hello.len()
        )),
        "{out}"
    );
}
