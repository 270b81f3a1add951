//! Explicit proxy mode on the outbound listener, for apps that are not
//! captured by iptables: `curl -x http://127.0.0.1:15001 http://host/path`
//! (absolute-form requests) and `https_proxy` (`CONNECT host:port`).
//! Requests are routed as if their destination had been captured; a
//! CONNECT goes to the service its host or address names ([`resolve`]);
//! one that REGISTRY_ONLY refuses is answered 502 ([`blocked`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::access_log_service::LogTargets;
use crate::model::Listener;
use shared::egress::EgressPolicy;

use super::ProxyContext;
use super::http::{self, Downstream, RouteSource};
use super::outbound::{self, Accepted, Destination};

mod blocked;
mod resolve;

use resolve::{ConnectRoute, resolve_address, resolve_connect};

/// Longest CONNECT request head we accept.
const MAX_HEAD: usize = 8 * 1024;

pub async fn serve(
    mut stream: TcpStream,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    accepting: Arc<Listener>,
    context: Arc<ProxyContext>,
) {
    let mut head = vec![0; MAX_HEAD];
    let Ok(n) = stream.peek(&mut head).await else {
        return;
    };
    head.truncate(n);
    if !head.starts_with(b"CONNECT ") {
        let downstream = Arc::new(Downstream {
            local,
            remote: Some(remote),
            original_dst: None,
            source: RouteSource::ExplicitProxy {
                accepting: accepting.name.clone(),
            },
            targets: Arc::new(LogTargets::new(true, None, None)),
            peer_identity: None,
            server_name: None,
            tls: false,
        });
        http::serve(stream, context, downstream).await;
        return;
    }
    let Some((host, port, head_len)) = parse_connect(&head) else {
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let mut consumed = vec![0; head_len];
    if stream.read_exact(&mut consumed).await.is_err() {
        return;
    }
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
        ConnectRoute::Chain(chain) => Some(*chain),
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
        ConnectRoute::Chain(chain) => {
            let accepted = Accepted::new(remote, local, destination, None);
            outbound::run_chain(stream, chain, accepted, context).await;
        }
        ConnectRoute::Resolve | ConnectRoute::Fallthrough => {
            outbound::dispatch(stream, remote, local, &accepting, destination, context).await;
        }
    }
}

/// `CONNECT host:port HTTP/1.1\r\n...\r\n\r\n` → (host, port, head length).
fn parse_connect(buf: &[u8]) -> Option<(String, u16, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let target = head.lines().next()?.split(' ').nth(1)?;
    let (host, port) = target.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_ascii_lowercase(), port.parse().ok()?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect() {
        let req =
            b"CONNECT edition.cnn.com:443 HTTP/1.1\r\nHost: edition.cnn.com:443\r\n\r\n\x16\x03";
        let (host, port, len) = parse_connect(req).unwrap();
        assert_eq!((host.as_str(), port), ("edition.cnn.com", 443));
        assert_eq!(&req[len..], b"\x16\x03");
        assert!(parse_connect(b"CONNECT a:443 HTTP/1.1\r\n").is_none());
        assert!(parse_connect(b"CONNECT a HTTP/1.1\r\n\r\n").is_none());
    }
}
