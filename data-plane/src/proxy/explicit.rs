//! Explicit proxy mode on the outbound listener, for apps that are not
//! captured by iptables: `curl -x http://127.0.0.1:15001 http://host/path`
//! (absolute-form requests) and `https_proxy` (`CONNECT host:port`).
//! The head of the first request is read until it says what the
//! connection is ([`head`]): HTTP/1 (any of Envoy's methods), h2c with
//! prior knowledge, or CONNECT. Requests are routed as if their
//! destination had been captured; a
//! CONNECT goes to the service its host or address names ([`resolve`]);
//! one that REGISTRY_ONLY refuses is answered 502 ([`blocked`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::access_log_service::LogTargets;
use crate::model::Listener;
use shared::egress::EgressPolicy;

use super::http::{self, Downstream, RouteSource};
use super::outbound::{self, Accepted, Destination};
use super::{ProxyContext, access_log};

mod blocked;
pub mod head;
mod prefixed;
mod resolve;

use head::{Head, REQUEST_HEADERS_TIMEOUT};
pub use prefixed::Prefixed;
use resolve::{ConnectRoute, resolve_address, resolve_connect};

/// Serves a connection made to the proxy itself: reads the head of its
/// first request, then serves HTTP (the bytes read are read again by the
/// connection manager) or opens the CONNECT tunnel.
pub async fn serve(
    mut stream: TcpStream,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    accepting: Arc<Listener>,
    context: Arc<ProxyContext>,
) {
    let (read, said) = match head::read(&stream, REQUEST_HEADERS_TIMEOUT).await {
        Ok(read) => read,
        Err(error) => {
            tracing::debug!(%remote, %error, "explicit proxy connection without a request");
            return;
        }
    };
    let (host, port) = match said {
        Head::Connect { host, port, .. } => (host, port),
        Head::Http | Head::Partial => {
            let downstream = Arc::new(Downstream {
                local,
                remote: Some(remote),
                original_dst: None,
                source: RouteSource::ExplicitProxy {
                    accepting: accepting.name.clone(),
                },
                targets: Arc::new(LogTargets::new(&access_log::istio_stdout(), None, None)),
                peer_identity: None,
                server_name: None,
                tls: false,
                timeouts: http::explicit_proxy_timeouts(&accepting),
            });
            http::serve(Prefixed::new(read, stream), context, downstream).await;
            return;
        }
        Head::Refused(refusal) => {
            tracing::debug!(%remote, ?refusal, "explicit proxy request refused");
            let _ = stream.write_all(refusal.response()).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let config = context.store.load();
    let mut ip: Option<IpAddr> = host.parse().ok();
    let mut route = resolve_connect(&config, &host, port);
    if matches!(route, ConnectRoute::Resolve) {
        route = match context.upstreams.resolve(&host).await {
            Ok(resolved) => {
                ip = Some(resolved);
                resolve_address(&config, resolved, port)
            }
            Err(error) => {
                tracing::debug!(%host, %error, "CONNECT target does not resolve; falling through");
                ConnectRoute::Fallthrough
            }
        };
    }
    let destination = Destination {
        port,
        original_dst: ip.map(|ip| SocketAddr::new(ip, port)),
        host: Some(host),
    };
    // The chain the tunnel would take, its SNI taken to be the host name
    // (an address says nothing of the SNI a listener routes by: its chain
    // is chosen by the ClientHello, once the tunnel is up).
    let sni = destination
        .host
        .as_deref()
        .filter(|host| host.parse::<IpAddr>().is_err());
    let chain = match &route {
        ConnectRoute::Listener(listener) if listener.inspect_tls && sni.is_none() => None,
        ConnectRoute::Listener(listener) => listener.select_chain(port, destination.ip(local), sni),
        ConnectRoute::Chain(_, chain) => Some(*chain),
        ConnectRoute::Resolve | ConnectRoute::Fallthrough => {
            accepting.select_chain(port, destination.ip(local), sni)
        }
    };
    if let Some(chain) = chain.filter(|c| c.egress_policy == Some(EgressPolicy::Blocked)) {
        blocked::refuse_connect(stream, chain, &destination, (remote, local), &context).await;
        return;
    }
    if stream
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    match route {
        ConnectRoute::Listener(listener) => {
            outbound::dispatch(stream, remote, local, listener, destination, context).await;
        }
        ConnectRoute::Chain(listener, chain) => {
            outbound::join_chain_drain(listener, chain, &context);
            let accepted = Accepted::new(remote, local, destination, None);
            outbound::run_chain(stream, chain, accepted, context).await;
        }
        ConnectRoute::Resolve | ConnectRoute::Fallthrough => {
            outbound::dispatch(stream, remote, local, &accepting, destination, context).await;
        }
    }
}

#[cfg(test)]
mod tests;
