//! `data-plane proxy --dns-capture`: the DNS proxy's flags, its upstream resolvers (`--dns-server`, else the nameservers of /etc/resolv.conf) and its bound listeners.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use data_plane::dns::{
    DEFAULT_DNS_ADDR, DnsListeners, DnsProxy, Forwarder, RESOLV_CONF, ResolvConf,
};

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
    /// with --dns-capture only.
    #[arg(long, default_value = DEFAULT_DNS_ADDR, requires = "dns_capture")]
    pub dns_addr: SocketAddr,
}

/// The DNS proxy and its bound listeners, ready to serve.
pub struct DnsStart {
    pub proxy: Arc<DnsProxy>,
    pub listeners: DnsListeners,
}

/// With --dns-capture, the DNS proxy bound on `runtime`; `dns_server`
/// replaces the resolv.conf nameservers as its upstream. The proxy's own
/// address is never its upstream (a query would loop).
pub fn start(
    args: &DnsArgs,
    dns_server: Option<SocketAddr>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<DnsStart>> {
    if !args.dns_capture {
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
        .filter(|server| *server != args.dns_addr)
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
