//! `data-plane proxy --dns-capture`: the DNS proxy's flags, its upstream resolvers (`--dns-server`, else the nameservers of /etc/resolv.conf) and its bound listeners.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use data_plane::dns::{DnsListeners, DnsProxy, Forwarder, RESOLV_CONF, ResolvConf};

#[derive(Args)]
pub struct DnsArgs {
    /// Answer the app's DNS queries, as Istio's DNS proxying
    /// (ISTIO_META_DNS_CAPTURE): ServiceEntry hosts from the control plane's
    /// name table, every other name forwarded to --dns-server or else the
    /// nameservers of /etc/resolv.conf. Sets node metadata DNS_CAPTURE.
    /// `data-plane init --capture-dns` sends the app's port 53 here.
    #[arg(long)]
    pub dns_capture: bool,
    /// Where the DNS proxy listens, UDP and TCP (Istio's DNS_PROXY_ADDR);
    /// a loopback address only, with --dns-capture only.
    #[arg(
        long,
        default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, shared::ports::DNS_PROXY)),
        value_parser = loopback_addr,
        requires = "dns_capture"
    )]
    pub dns_addr: SocketAddr,
}

/// A `--dns-addr`: loopback only, since the proxy forwards any name and
/// would be an open resolver anywhere else.
fn loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|e| format!("{e}: expected ip:port, e.g. 127.0.0.1:15053"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the DNS proxy forwards any name, so it listens on loopback only (e.g. 127.0.0.1:15053)"
        ));
    }
    Ok(addr)
}

/// Whether a query sent to `upstream` would reach the proxy listening on
/// `listen`: same port, and the same address or an unspecified one (which
/// the kernel sends to the local host).
fn is_own_address(upstream: SocketAddr, listen: SocketAddr) -> bool {
    upstream.port() == listen.port()
        && (upstream.ip() == listen.ip() || upstream.ip().is_unspecified())
}

/// The DNS proxy and its bound listeners, ready to serve.
pub struct DnsStart {
    pub proxy: Arc<DnsProxy>,
    pub listeners: DnsListeners,
}

/// With DNS capture (--dns-capture or node metadata DNS_CAPTURE), the DNS
/// proxy bound on `runtime`; `dns_server`
/// replaces the resolv.conf nameservers as its upstream. The proxy's own
/// address is never its upstream (a query would loop).
pub fn start(
    capture: bool,
    args: &DnsArgs,
    dns_server: Option<SocketAddr>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<DnsStart>> {
    if !capture {
        return Ok(None);
    }
    let resolv_conf = ResolvConf::read(Path::new(RESOLV_CONF));
    let (nameservers, search) = match (dns_server, resolv_conf) {
        (Some(server), Ok(conf)) => (vec![server], conf.search),
        (Some(server), Err(error)) => {
            tracing::debug!(%error, "no search domains for the DNS proxy");
            (vec![server], Vec::new())
        }
        (None, Ok(conf)) => (conf.nameservers, conf.search),
        (None, Err(error)) => return Err(error).context("configure the DNS proxy's upstream"),
    };
    let upstreams: Vec<SocketAddr> = nameservers
        .into_iter()
        .filter(|server| !is_own_address(*server, args.dns_addr))
        .collect();
    if upstreams.is_empty() {
        anyhow::bail!(
            "the DNS proxy's only upstream would be itself ({}): give another server with --dns-server",
            args.dns_addr
        );
    }
    let listeners = runtime.block_on(DnsListeners::bind(args.dns_addr))?;
    tracing::info!(addr = %args.dns_addr, ?upstreams, ?search, "DNS proxy listening");
    Ok(Some(DnsStart {
        proxy: Arc::new(DnsProxy::new(search, Forwarder::new(upstreams))),
        listeners,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_dns_proxy_listens_on_loopback_only() {
        assert_eq!(
            loopback_addr("127.0.0.1:15053"),
            Ok(addr("127.0.0.1:15053"))
        );
        assert_eq!(loopback_addr("[::1]:53"), Ok(addr("[::1]:53")));
        for open in ["0.0.0.0:15053", "[::]:15053", "10.0.0.2:15053"] {
            let error = loopback_addr(open).expect_err(open);
            assert!(error.contains("not a loopback address"), "{error}");
        }
        assert!(loopback_addr("localhost:15053").is_err());
    }

    #[test]
    fn an_upstream_on_the_proxys_port_at_its_or_an_unspecified_address_loops() {
        let listen = addr("127.0.0.1:15053");
        assert!(is_own_address(addr("127.0.0.1:15053"), listen));
        assert!(is_own_address(addr("0.0.0.0:15053"), listen));
        assert!(is_own_address(addr("[::]:15053"), listen));
        assert!(!is_own_address(addr("127.0.0.1:53"), listen));
        assert!(!is_own_address(addr("127.0.0.53:15053"), listen));
        assert!(!is_own_address(addr("10.0.0.2:15053"), listen));
    }
}
