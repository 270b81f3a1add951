//! One accepted connection: find the listener that owns it (by original
//! destination when redirected), peek at its first bytes (SNI, or an
//! explicit-proxy request), pick the filter chain and run it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::access_log_service::LogTargets;
use crate::model::listener::{ChainAction, DownstreamTls, FilterChain, HttpManager, Listener};
use shared::egress::EgressPolicy;

use super::admission::Admission;
use super::drain::{DrainScope, ServerDrain};
use super::http::{self, Downstream, RouteSource};
use super::inspect::{self, Hello};
use super::{ProxyContext, explicit, orig_dst, tcp};

/// How long a blocked fall-through connection waits for a ClientHello to
/// name it: a server-first client (which sends nothing) is closed promptly,
/// as Envoy closes a BlackHoleCluster connection at once.
const BLOCKED_HELLO_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a chain that terminates TLS waits for the handshake, as
/// Envoy's listener filter timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Accepts connections on `socket` for the listener `name`, each counted
/// in the server's drain and the listener's (`drain`) until it closes, and
/// admitted under the connection limits (`admission`): a connection over
/// them is closed at once.
pub async fn accept_loop(
    socket: TcpListener,
    name: Arc<str>,
    context: Arc<ProxyContext>,
    drain: (Arc<ServerDrain>, Arc<DrainScope>),
    admission: Arc<Admission>,
) {
    let (server, listener) = drain;
    let address = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let stats = context.stats.listeners.listener(address);
    loop {
        match socket.accept().await {
            Ok((stream, remote)) => {
                let open = match admission.admit(&stats, &name) {
                    Ok(open) => open,
                    Err(refusal) => {
                        tracing::debug!(listener = %name, %remote, ?refusal, "connection limit reached; closing");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let context = context.clone();
                let name = name.clone();
                let connection = server.connection(&listener);
                tokio::spawn(connection.run(async move {
                    handle(stream, remote, &name, context).await;
                    drop(open);
                }));
            }
            Err(error) => admission.accept_failed(&socket, &name, &stats, error).await,
        }
    }
}

/// Where a connection is headed: its destination port, and for a
/// redirected or CONNECT-ed connection the host it was meant for.
pub struct Destination {
    pub port: u16,
    pub original_dst: Option<SocketAddr>,
    /// The CONNECT target host, resolved only if a passthrough needs it.
    pub host: Option<String>,
}

impl Destination {
    /// `%DOWNSTREAM_LOCAL_ADDRESS%` as Envoy logs it: the original
    /// destination of a captured connection, else the address the
    /// connection was accepted on (explicit proxy mode included).
    pub fn logged_local(&self, local: Option<SocketAddr>) -> Option<SocketAddr> {
        match (self.original_dst, &self.host) {
            (Some(dst), None) => Some(dst),
            _ => local,
        }
    }

    /// The CONNECT target, `host:port` (an IPv6 address in brackets).
    pub fn connect_target(&self) -> Option<String> {
        self.host.as_ref().map(|host| {
            if host.contains(':') {
                format!("[{host}]:{}", self.port)
            } else {
                format!("{host}:{}", self.port)
            }
        })
    }

    /// The destination address filter chains match on, as Envoy's: the
    /// original destination, else (not redirected, not CONNECT to a name)
    /// the address the connection was accepted on.
    pub fn ip(&self, local: Option<SocketAddr>) -> Option<IpAddr> {
        match (self.original_dst, &self.host) {
            (Some(dst), _) => Some(dst.ip()),
            (None, Some(_)) => None,
            (None, None) => local.map(|a| a.ip()),
        }
    }
}

async fn handle(stream: TcpStream, remote: SocketAddr, name: &str, context: Arc<ProxyContext>) {
    context.record_activity();
    let config = context.store.load();
    let Some(accepting) = config.listener(name).cloned() else {
        return;
    };
    let local = stream.local_addr().ok();
    let original_dst = if accepting.use_original_dst {
        orig_dst::original_dst(&stream)
    } else {
        None
    };
    if accepting.use_original_dst && original_dst.is_none() {
        // Not redirected: the app talks to us as an explicit proxy.
        explicit::serve(stream, remote, local, accepting, context).await;
        return;
    }
    let listener = original_dst
        .and_then(|dst| config.listener_for_original_dst(dst))
        .filter(|l| l.name != accepting.name)
        .cloned()
        .unwrap_or(accepting);
    let destination = Destination {
        port: original_dst.or(local).map_or(0, |a| a.port()),
        original_dst,
        host: None,
    };
    dispatch(stream, remote, local, &listener, destination, context).await;
}

/// Chooses the filter chain for a connection and runs it.
pub async fn dispatch(
    stream: TcpStream,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    listener: &Arc<Listener>,
    destination: Destination,
    context: Arc<ProxyContext>,
) {
    let mut server_name = None;
    if listener.inspect_tls {
        let Some(name) = inspect_tls(&stream, listener, &context).await else {
            inspect::close(stream);
            return;
        };
        server_name = name;
    }
    let Some(chain) = listener.select_chain(
        destination.port,
        destination.ip(local),
        server_name.as_deref(),
    ) else {
        tracing::debug!(listener = %listener.name, ?server_name, port = destination.port, "no filter chain matches; closing");
        tcp::close(stream);
        return;
    };
    join_chain_drain(listener, chain, &context);
    // The fall-through chain names a TLS destination by its SNI too: a
    // blocked connection waits for its ClientHello (it gets nothing else),
    // one that goes out has it read as it flows.
    let uninspected_fall_through = !listener.inspect_tls
        && listener
            .default_chain
            .as_ref()
            .is_some_and(|default| std::ptr::eq(default, chain));
    if uninspected_fall_through
        && destination.host.is_none()
        && chain.egress_policy == Some(EgressPolicy::Blocked)
    {
        server_name = inspect::client_hello(&stream, Some(BLOCKED_HELLO_TIMEOUT))
            .await
            .server_name();
    }
    let accepted = Accepted {
        remote,
        local,
        destination,
        server_name,
        tls: None,
        egress_policy: chain.egress_policy,
        sniff_sni: uninspected_fall_through,
    };
    run_chain(stream, chain, accepted, context).await;
}

/// Counts the connection the calling task serves in the drain of `chain`,
/// the filter chain `listener` chose for it, so that it drains when an
/// update removes or changes that chain.
pub fn join_chain_drain(listener: &Arc<Listener>, chain: &FilterChain, context: &ProxyContext) {
    if let Some(drain) = super::drain::current() {
        let config = context.store.load();
        drain.join_chain(listener, chain, config.listener(&listener.name));
    }
}

/// Runs `chain` for a connection whose chain is already chosen.
pub async fn run_chain(
    stream: TcpStream,
    chain: &FilterChain,
    mut accepted: Accepted,
    context: Arc<ProxyContext>,
) {
    accepted.egress_policy = chain.egress_policy;
    let remote = accepted.remote;
    let Some(tls) = &chain.tls else {
        run_action(stream, &chain.action, accepted, context).await;
        return;
    };
    if tls.server_config.is_none() {
        tracing::warn!(chain = %chain.name, "TLS certificate for this filter chain has not arrived (SDS); closing");
        tcp::close(stream);
        return;
    }
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, terminate_tls(stream, tls)).await;
    let tls_stream = match handshake {
        Ok(Ok(tls_stream)) => tls_stream,
        Ok(Err(error)) => {
            tracing::info!(chain = %chain.name, %remote, %error, "downstream TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(chain = %chain.name, %remote, "downstream TLS handshake timed out");
            return;
        }
    };
    let peer_identity = tls_stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| super::identity::uri_san(cert.as_ref()));
    accepted.tls = Some(TerminatedTls { peer_identity });
    run_action(tls_stream, &chain.action, accepted, context).await;
}

/// Terminates TLS on `stream` with the server config `tls` chooses for the
/// client's ClientHello (its ALPN offer).
async fn terminate_tls(
    stream: TcpStream,
    tls: &DownstreamTls,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
    let config = tls
        .server_config_for(start.client_hello().alpn())
        .ok_or_else(|| std::io::Error::other("the TLS certificate has not arrived (SDS)"))?;
    start.into_stream(config).await
}

/// A connection whose filter chain is chosen, as its action sees it.
pub struct Accepted {
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    pub destination: Destination,
    pub server_name: Option<String>,
    /// The TLS the chain terminated, if it did.
    pub tls: Option<TerminatedTls>,
    /// The egress mark of the chain.
    pub egress_policy: Option<EgressPolicy>,
    /// The chain is its listener's fall-through, whose SNI nothing has
    /// read: read it from the first bytes as they flow.
    pub sniff_sni: bool,
}

impl Accepted {
    /// A connection whose SNI, if any, is known or not wanted.
    pub fn new(
        remote: SocketAddr,
        local: Option<SocketAddr>,
        destination: Destination,
        server_name: Option<String>,
    ) -> Self {
        Self {
            remote,
            local,
            destination,
            server_name,
            tls: None,
            egress_policy: None,
            sniff_sni: false,
        }
    }
}

/// TLS a filter chain terminated.
pub struct TerminatedTls {
    /// The client's SPIFFE id, when it presented a mesh certificate.
    peer_identity: Option<String>,
}

/// Serves `action` on `stream`, plain or with its TLS terminated: the
/// HTTP connection manager or the TCP proxy.
async fn run_action<S>(
    stream: S,
    action: &ChainAction,
    accepted: Accepted,
    context: Arc<ProxyContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match action {
        ChainAction::Http(hcm) => {
            let downstream = http_downstream(hcm, accepted, &context);
            http::serve(stream, context, downstream).await;
        }
        ChainAction::Tcp(proxy) => tcp::proxy(stream, accepted, proxy, context).await,
    }
}

/// What the requests of an HTTP connection taken by `hcm` share.
fn http_downstream(
    hcm: &HttpManager,
    accepted: Accepted,
    context: &ProxyContext,
) -> Arc<Downstream> {
    context
        .stats
        .downstream(&hcm.stat_prefix)
        .cx_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Arc::new(Downstream {
        local: accepted.destination.logged_local(accepted.local),
        remote: Some(accepted.remote),
        original_dst: accepted.destination.original_dst,
        source: RouteSource::Chain {
            route_config_name: hcm.route_config_name.clone(),
            inline: hcm.inline_routes.clone(),
            stat_prefix: hcm.stat_prefix.clone(),
            http_filters: hcm.http_filters.clone(),
            use_remote_address: hcm.use_remote_address,
            path_normalization: hcm.path_normalization,
            server_header: hcm.server_header.clone(),
            suppress_envoy_headers: hcm.suppress_envoy_headers,
            upgrades: hcm.upgrades.clone(),
        },
        targets: Arc::new(LogTargets::new(
            &hcm.file_access_logs,
            hcm.grpc_access_log.as_ref(),
            context.access_log_service.as_ref(),
        )),
        peer_identity: accepted
            .tls
            .as_ref()
            .and_then(|tls| tls.peer_identity.as_deref())
            .map(Arc::from),
        server_name: accepted.server_name.map(Arc::from),
        tls: accepted.tls.is_some(),
        timeouts: hcm.timeouts,
    })
}

/// Runs the TLS inspector on a connection of `listener`: `Some` with the
/// SNI (if any) to choose a chain by, or `None` when the connection is to
/// be closed, as Envoy closes it: the client closed before its ClientHello
/// was complete, or the listener filter timeout passed and the listener
/// does not continue on it.
async fn inspect_tls(
    stream: &TcpStream,
    listener: &Listener,
    context: &ProxyContext,
) -> Option<Option<String>> {
    let stats = &context.stats.listeners;
    let limits = listener.filters_timeout;
    let hello = inspect::client_hello(stream, limits.timeout).await;
    hello.record(&stats.tls_inspector);
    match hello {
        Hello::Closed => None,
        Hello::TimedOut => {
            stats
                .listener(listener.address)
                .pre_cx_timeout
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(listener = %listener.name, continue_on_timeout = limits.continue_on_timeout, "listener filter timeout: no ClientHello");
            limits.continue_on_timeout.then_some(None)
        }
        hello => Some(hello.server_name()),
    }
}

#[cfg(test)]
mod tests;
