//! The answer to a CONNECT whose destination REGISTRY_ONLY refuses: the
//! same 502 and line as a blocked HTTP request, to the CONNECT itself,
//! logged and counted as blocked (BlackHoleCluster's refusal).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use http::{HeaderValue, Method};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::access_log_service::LogTargets;
use crate::model::listener::{ChainAction, FilterChain};
use crate::proxy::ProxyContext;
use crate::proxy::access_log::AccessLog;
use crate::proxy::outbound::Destination;
use crate::proxy::respond::LocalReply;
use crate::proxy::stats::istio;
use shared::egress::EgressPolicy;

/// Refuses the CONNECT to `destination` that the blocked `chain` would take.
pub(super) async fn refuse_connect(
    mut stream: TcpStream,
    chain: &FilterChain,
    destination: &Destination,
    downstream: (SocketAddr, Option<SocketAddr>),
    context: &ProxyContext,
) {
    let started = std::time::Instant::now();
    let (remote, local) = downstream;
    let target = destination.connect_target().unwrap_or_default();
    let reply = LocalReply::blocked(&target);
    let queue = context.access_log_service.as_ref();
    let (cluster, targets, tcp) = match &chain.action {
        ChainAction::Tcp(tcp) => (
            tcp.target.pick_name(0).cloned(),
            LogTargets::new(&tcp.file_access_logs, tcp.grpc_access_log.as_ref(), queue),
            true,
        ),
        ChainAction::Http(hcm) => (
            None,
            LogTargets::new(&hcm.file_access_logs, hcm.grpc_access_log.as_ref(), queue),
            false,
        ),
    };
    if let Some(cluster) = &cluster {
        context
            .stats
            .cluster(cluster)
            .cx_none_healthy
            .fetch_add(1, Relaxed);
    }
    let policy = Some(EgressPolicy::Blocked);
    let observed = destination.host.as_deref().unwrap_or_default();
    let _ = stream.write_all(connect_response(&reply).as_bytes()).await;
    let _ = stream.shutdown().await;
    context.stats.istio.request(&istio::Request {
        destination: istio::Destination::of(cluster.as_deref(), observed, policy),
        peer: istio::Peer::default(),
        protocol: istio::Protocol::Http,
        response_code: reply.status.as_u16(),
        grpc_status: None,
        response_flags: reply.flags,
        egress_policy: policy,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        request_bytes: 0,
        response_bytes: reply.body.len() as u64,
    });
    if targets.is_empty() {
        return;
    }
    let mut log = AccessLog::new("HTTP/1.1", local, Some(remote));
    log.method = Some(Method::CONNECT);
    log.response_code = reply.status.as_u16();
    log.response_flags = reply.flags;
    log.response_code_details = reply.details;
    log.authority = HeaderValue::from_str(&target).ok();
    log.upstream_cluster = cluster;
    log.bytes_sent = reply.body.len() as u64;
    log.egress_policy = policy;
    if tcp {
        targets.emit_tcp(&log);
    } else {
        targets.emit_http(&log);
    }
}

/// `reply` as an HTTP/1.1 response that ends the connection.
fn connect_response(reply: &LocalReply) -> String {
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.status.as_u16(),
        reply.status.canonical_reason().unwrap_or_default(),
        reply.body.len(),
        reply.body
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::net::TcpListener;

    use super::*;
    use crate::model::Listener;
    use crate::proxy::test_fixtures::{
        assert_one_blocked_request, empty_context, fall_through_outbound, read_blocked_reply,
    };

    /// `virtualOutbound` under REGISTRY_ONLY: its fall-through chain goes
    /// to BlackHoleCluster, marked blocked.
    fn registry_only_outbound() -> Arc<Listener> {
        Arc::new(fall_through_outbound(
            "BlackHoleCluster",
            Some(EgressPolicy::Blocked),
            false,
        ))
    }

    #[tokio::test]
    async fn a_connect_to_a_blocked_host_is_answered_502_naming_it_and_counted() {
        let context = empty_context(None);
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let serving = context.clone();
        tokio::spawn(async move {
            let (stream, remote) = socket.accept().await.unwrap();
            let accepting = registry_only_outbound();
            super::super::serve(stream, remote, Some(addr), accepting, serving).await;
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n")
            .await
            .unwrap();
        read_blocked_reply(&mut client, "evil.example:443").await;
        let out = assert_one_blocked_request(&context, "evil.example");
        assert!(
            out.contains("envoy_cluster_upstream_cx_none_healthy{envoy_cluster_name=\"BlackHoleCluster\"} 1\n"),
            "{out}"
        );
    }

    #[test]
    fn a_blocked_connect_gets_the_blocked_http_answer() {
        let response = connect_response(&LocalReply::blocked("evil.example:443"));
        assert_eq!(
            response,
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 56\r\nconnection: close\r\n\r\nno ServiceEntry allows evil.example:443 (REGISTRY_ONLY)\n"
        );
    }
}
