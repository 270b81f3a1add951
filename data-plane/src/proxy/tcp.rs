//! The TCP proxy: connect to the chain's cluster (originating TLS when its
//! transport socket says so) and copy bytes both ways. A failed upstream,
//! a failed handshake included, closes the downstream connection, as Envoy
//! does (curl sees exit 35 on a TLS connection), and is logged UF. Each
//! connection is logged and counted in Istio's TCP metrics when it closes.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::access_log_service::LogTargets;
use crate::model::cluster::Discovery;
use crate::model::hash_policy::xx_hash;
use crate::model::listener::TcpProxy;
use crate::upstream::{Principals, Tracked, UpstreamError, UpstreamStream};
use shared::egress::EgressPolicy;
use shared::workload::EndpointWorkload;

use super::access_log::AccessLog;
use super::outbound::{Accepted, Destination};
use super::respond::LocalReply;
use super::stats::ClusterStats;
use super::stats::istio::{Destination as IstioDestination, Peer as IstioPeer, Series};
use super::stats::lifecycle::TcpProxyStats;
use super::{ProxyContext, fast_random};

mod sniff;
pub(super) mod timeouts;

use sniff::SniffSni;
use timeouts::{Copied, Ending, Limits};

/// Closes a connection the proxy will not serve as Envoy does, without
/// reading what the client sent: the kernel answers RST if bytes are
/// pending, FIN if none. Never an immediate RST: a client still finishing
/// its connect would take it for a refused connection (curl exit 7) rather
/// than a failed handshake (exit 35).
pub fn close(stream: TcpStream) {
    drop(stream);
}

/// Proxies `downstream` (a plain connection, or the TLS stream a chain
/// terminated) to the chain's cluster. A fall-through chain's connection
/// is read for its SNI as it flows, when its listener did not inspect it.
pub async fn proxy<S: AsyncRead + AsyncWrite + Unpin>(
    downstream: S,
    accepted: Accepted,
    config: &TcpProxy,
    context: Arc<ProxyContext>,
) {
    let mut log = AccessLog::new(
        "-",
        accepted.destination.logged_local(accepted.local),
        Some(accepted.remote),
    );
    log.requested_server_name = accepted.server_name.map(Arc::from);
    log.authority = accepted
        .destination
        .connect_target()
        .and_then(|target| HeaderValue::from_str(&target).ok());
    log.egress_policy = accepted.egress_policy;
    let targets = LogTargets::new(
        &config.file_access_logs,
        config.grpc_access_log.as_ref(),
        context.access_log_service.as_ref(),
    );
    let destination = accepted.destination;
    let stats = context.stats.downstream(&config.stat_prefix);
    stats.cx_total.fetch_add(1, Relaxed);
    let Some(cluster) = config.target.pick_name(fast_random()).cloned() else {
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
                fail(downstream, log, &targets, &destination, &error, &context);
                return;
            }
        },
        _ => None,
    };
    let hash = config
        .hash_source_ip
        .then(|| xx_hash(accepted.remote.ip().to_string().as_bytes()));
    let connected = context
        .upstreams
        .connect_tcp_hashed(&cluster, original_dst, hash)
        .await;
    let (upstream, info) = match connected {
        Ok(connected) => connected,
        Err(error) => {
            if error.is_connect_failure() {
                cluster_stats.cx_connect_fail.fetch_add(1, Relaxed);
            }
            if error.is_connect_timeout() {
                cluster_stats.cx_connect_timeout.fetch_add(1, Relaxed);
            }
            if matches!(error, UpstreamError::NoHealthyUpstream(_)) {
                cluster_stats.cx_none_healthy.fetch_add(1, Relaxed);
            }
            fail(downstream, log, &targets, &destination, &error, &context);
            return;
        }
    };
    cluster_stats.cx_total.fetch_add(1, Relaxed);
    log.set_upstream(Some(info));
    let limits = Limits {
        idle: config.idle_timeout,
        max_duration: config.max_downstream_connection_duration,
        started: log.started,
        downstream_end_closes: false,
    };
    let connection = Connection {
        log,
        destination,
        limits,
        targets,
        tcp_stats: context.stats.lifecycle.tcp(&config.stat_prefix),
        cluster_stats,
    };
    if accepted.sniff_sni && connection.log.requested_server_name.is_none() {
        connection
            .copy_sniffing(downstream, upstream, &context)
            .await;
    } else {
        let series = connection.opening_labels().open(&context, None);
        connection.copy(downstream, upstream, series).await;
    }
}

/// An upstream connection made for a downstream one.
struct Connection {
    log: AccessLog,
    destination: Destination,
    limits: Limits,
    targets: LogTargets,
    tcp_stats: Arc<TcpProxyStats>,
    cluster_stats: Arc<ClusterStats>,
}

impl Connection {
    /// Copies both ways, counting the connection opened once its first
    /// bytes have said whether it is TLS and to which name.
    async fn copy_sniffing<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        downstream: S,
        upstream: Tracked<UpstreamStream>,
        context: &Arc<ProxyContext>,
    ) {
        let labels = self.opening_labels();
        let opened = OnceLock::new();
        let on_decided = |server_name: Option<&str>| {
            let _ = opened.set(labels.open(context, server_name));
        };
        let mut sniffer = SniffSni::new(downstream, on_decided);
        let copied = self.copy_streams(&mut sniffer, upstream).await;
        let server_name = sniffer.into_server_name();
        let series = match opened.into_inner() {
            Some(series) => series,
            None => labels.open(context, None),
        };
        self.log.requested_server_name = server_name.map(Arc::from);
        self.finish(copied, &series);
    }

    async fn copy<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut downstream: S,
        upstream: Tracked<UpstreamStream>,
        series: Arc<Series>,
    ) {
        let copied = self.copy_streams(&mut downstream, upstream).await;
        self.finish(copied, &series);
    }

    async fn copy_streams<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        downstream: &mut S,
        mut upstream: Tracked<UpstreamStream>,
    ) -> Copied {
        timeouts::copy(downstream, &mut upstream, self.limits).await
    }

    /// Logs and counts the connection, closed as `copied` ended.
    fn finish(mut self, copied: Copied, series: &Series) {
        self.log.bytes_received = copied.received;
        self.log.bytes_sent = copied.sent;
        self.cluster_stats
            .bytes_sent
            .fetch_add(copied.received, Relaxed);
        self.cluster_stats
            .bytes_received
            .fetch_add(copied.sent, Relaxed);
        if let Some(flag) = copied.ending.response_flag() {
            self.log.response_flags = flag;
        }
        self.log.connection_termination_details = copied.ending.termination_details();
        match copied.ending {
            Ending::Closed => {}
            Ending::IdleTimeout => {
                tracing::debug!(
                    cluster = self.log.upstream_cluster.as_deref(),
                    "TCP session idle timeout; closing both sides"
                );
                self.tcp_stats.idle_timeout.fetch_add(1, Relaxed);
            }
            Ending::MaxDuration => {
                tracing::debug!(
                    cluster = self.log.upstream_cluster.as_deref(),
                    "max downstream connection duration reached; closing both sides"
                );
                self.tcp_stats
                    .max_downstream_connection_duration
                    .fetch_add(1, Relaxed);
            }
        }
        if let Some(error) = &copied.error {
            tracing::debug!(%error, "TCP proxy connection ended with an error");
        }
        series.tcp_closed(self.log.bytes_received, self.log.bytes_sent);
        self.targets.emit_tcp(&self.log);
    }

    /// The labels of this connection's series, as far as known.
    fn opening_labels(&self) -> OpeningLabels {
        opening_labels(&self.log, &self.destination)
    }
}

/// The labels `log` and `destination` give a connection's series.
fn opening_labels(log: &AccessLog, destination: &Destination) -> OpeningLabels {
    let observed = match (&log.requested_server_name, &destination.host) {
        (Some(sni), _) => Observed::Name(sni.clone()),
        (None, Some(host)) => Observed::Name(Arc::from(host.as_str())),
        (None, None) => Observed::Ip(
            destination
                .original_dst
                .or(log.downstream_local)
                .map(|addr| addr.ip()),
        ),
    };
    OpeningLabels {
        cluster: log.upstream_cluster.clone(),
        peer: log.upstream_peer.clone(),
        principals: log.upstream_principals.clone(),
        observed,
        flags: log.response_flags,
        egress_policy: log.egress_policy,
    }
}

/// The labels of a connection's series, known when it opens.
struct OpeningLabels {
    cluster: Option<Arc<str>>,
    /// The workload behind the upstream host.
    peer: Option<Arc<EndpointWorkload>>,
    /// The identities on the upstream TLS connection.
    principals: Option<Arc<Principals>>,
    observed: Observed,
    flags: &'static str,
    egress_policy: Option<EgressPolicy>,
}

/// What names a connection's destination when no ServiceEntry does: its
/// SNI or CONNECT host, else its original destination IP.
enum Observed {
    Name(Arc<str>),
    Ip(Option<IpAddr>),
}

impl OpeningLabels {
    /// Counts the connection opened, named by `server_name` if it has one.
    fn open(&self, context: &ProxyContext, server_name: Option<&str>) -> Arc<Series> {
        let mut ip_text = IpText::default();
        let observed = match (server_name, &self.observed) {
            (Some(name), _) => name,
            (None, Observed::Name(name)) => name,
            (None, Observed::Ip(Some(ip))) => ip_text.format(*ip),
            (None, Observed::Ip(None)) => "",
        };
        let destination =
            IstioDestination::of(self.cluster.as_deref(), observed, self.egress_policy);
        context.stats.istio.tcp_opened(
            destination,
            IstioPeer {
                workload: self.peer.as_ref(),
                principals: self.principals.as_ref(),
            },
            self.flags,
            self.egress_policy,
        )
    }
}

/// An IP address's text, formatted on the stack.
struct IpText {
    /// Long enough for any IPv6 address (an IPv4-mapped one is 45 bytes).
    buf: [u8; 48],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl IpText {
    fn format(&mut self, ip: IpAddr) -> &str {
        self.len = 0;
        let _ = write!(self, "{ip}");
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A connection that got no upstream: closed, logged and counted with the
/// failure's flag.
fn fail<S>(
    downstream: S,
    mut log: AccessLog,
    targets: &LogTargets,
    destination: &Destination,
    error: &UpstreamError,
    context: &ProxyContext,
) {
    let reply = LocalReply::upstream_failure(error);
    log.response_flags = reply.flags;
    log.transport_failure_reason = reply.transport_failure;
    tracing::debug!(cluster = log.upstream_cluster.as_deref(), %error, "TCP upstream failed; closing the downstream connection");
    drop(downstream);
    opening_labels(&log, destination)
        .open(context, None)
        .tcp_closed(0, 0);
    targets.emit_tcp(&log);
}

#[cfg(test)]
mod tests;
