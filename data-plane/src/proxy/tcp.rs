//! The TCP proxy: connect to the chain's cluster (originating TLS when its
//! transport socket says so) and copy bytes both ways. A failed upstream,
//! a failed handshake included, closes the downstream connection, as Envoy
//! does (curl sees exit 35 on a TLS connection), and is logged UF.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::access_log_service::LogTargets;
use crate::model::cluster::Discovery;
use crate::model::listener::TcpProxy;
use crate::upstream::UpstreamError;

use super::access_log::AccessLog;
use super::outbound::Destination;
use super::respond::LocalReply;
use super::{ProxyContext, fast_random};

/// Closes a connection the proxy will not serve as Envoy does, without
/// reading what the client sent: the kernel answers RST if bytes are
/// pending, FIN if none. Never an immediate RST: a client still finishing
/// its connect would take it for a refused connection (curl exit 7) rather
/// than a failed handshake (exit 35).
pub fn close(stream: TcpStream) {
    drop(stream);
}

/// Proxies `downstream` (a plain connection, or the TLS stream a chain
/// terminated) to the chain's cluster.
pub async fn proxy<S: AsyncRead + AsyncWrite + Unpin>(
    mut downstream: S,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    config: &TcpProxy,
    destination: Destination,
    server_name: Option<String>,
    context: Arc<ProxyContext>,
) {
    let mut log = AccessLog::new("-", local, Some(remote));
    let targets = LogTargets::new(
        config.access_log,
        config.grpc_access_log.as_ref(),
        context.access_log_service.as_ref(),
    );
    log.requested_server_name = server_name.map(Arc::from);
    let stats = context.stats.downstream(&config.stat_prefix);
    stats.cx_total.fetch_add(1, Relaxed);
    let Some(cluster) = config.target.pick(fast_random()).cloned() else {
        drop(downstream);
        return;
    };
    log.upstream_cluster = Some(cluster.clone());
    let cluster_stats = context.stats.cluster(&cluster);
    let running = context.store.load();
    let passthrough = running
        .cluster(&cluster)
        .is_some_and(|c| matches!(c.discovery, Discovery::OriginalDst));
    let original_dst = match (destination.original_dst, &destination.host, passthrough) {
        (Some(dst), _, _) => Some(dst),
        (None, Some(host), true) => match context.upstreams.resolve(host).await {
            Ok(ip) => Some(SocketAddr::new(ip, destination.port)),
            Err(error) => {
                fail(downstream, &mut log, &targets, &error);
                return;
            }
        },
        _ => None,
    };
    let (mut upstream, address) = match context.upstreams.connect_tcp(&cluster, original_dst).await
    {
        Ok(connected) => connected,
        Err(error) => {
            if error.is_connect_failure() {
                cluster_stats.cx_connect_fail.fetch_add(1, Relaxed);
            }
            fail(downstream, &mut log, &targets, &error);
            return;
        }
    };
    cluster_stats.cx_total.fetch_add(1, Relaxed);
    log.upstream_host = Some(address);
    let copied = match config.idle_timeout {
        None => tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await,
        Some(idle) => copy_with_idle_timeout(&mut downstream, &mut upstream, idle).await,
    };
    if let Ok((received, sent)) = copied {
        log.bytes_received = received;
        log.bytes_sent = sent;
        cluster_stats.bytes_sent.fetch_add(received, Relaxed);
        cluster_stats.bytes_received.fetch_add(sent, Relaxed);
    }
    targets.emit_tcp(&log);
}

fn fail<S>(downstream: S, log: &mut AccessLog, targets: &LogTargets, error: &UpstreamError) {
    let reply = LocalReply::upstream_failure(error);
    log.response_flags = reply.flags;
    log.transport_failure_reason = reply.transport_failure;
    tracing::debug!(cluster = log.upstream_cluster.as_deref(), %error, "TCP upstream failed; closing the downstream connection");
    drop(downstream);
    targets.emit_tcp(log);
}

/// Copies both ways, giving up when neither side sends anything for `idle`.
async fn copy_with_idle_timeout<A, B>(
    a: &mut A,
    b: &mut B,
    idle: Duration,
) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut abuf = vec![0u8; 16 * 1024];
    let mut bbuf = vec![0u8; 16 * 1024];
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            read = ar.read(&mut abuf), if a_open => {
                let n = read?;
                if n == 0 { a_open = false; bw.shutdown().await?; } else { bw.write_all(&abuf[..n]).await?; a_to_b += n as u64; }
            }
            read = br.read(&mut bbuf), if b_open => {
                let n = read?;
                if n == 0 { b_open = false; aw.shutdown().await?; } else { aw.write_all(&bbuf[..n]).await?; b_to_a += n as u64; }
            }
            () = tokio::time::sleep(idle) => break,
        }
    }
    Ok((a_to_b, b_to_a))
}
