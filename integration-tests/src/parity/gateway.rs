//! The egress gateway of a scenario, run as Istio runs it: in a pod of its
//! own (a network namespace whose veth leads to the host, where the
//! control plane, DNS and external servers listen), linked to the app's
//! namespace as pods share a network, and labelled as the deployment Istio
//! makes: Istio's install's `istio-egressgateway`, or the one it deploys
//! for a Gateway API Gateway. Listening on the Gateway's ports (80, 443)
//! as uid 1337 takes what Istio's gateway pods set: unprivileged low ports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};

use super::proxy::{Kind, Proxy};
use crate::control_channel::ControlChannel;
use crate::netns::NetNs;
use crate::proxy_options::ProxyOptions;

/// The namespace Istio deploys a Gateway API Gateway's proxy in: the
/// Gateway's, `default` in the egress tasks.
const GATEWAY_API_NAMESPACE: &str = "default";

/// Which deployment plays a scenario's egress gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// `istio-egressgateway` in `istio-system`, labelled
    /// `istio=egressgateway`, as Istio's install creates it.
    Istio,
    /// The proxy Istio deploys for the Gateway API Gateway of this name
    /// (class `istio`) in `default`: `<name>-istio`.
    Api(&'static str),
}

impl Gateway {
    /// Its identity, reaching the control plane through `control`.
    fn options(self, control: ControlChannel, dns: SocketAddr) -> ProxyOptions {
        match self {
            Gateway::Istio => ProxyOptions::egress_gateway(control, dns),
            Gateway::Api(name) => {
                ProxyOptions::gateway_api(name, GATEWAY_API_NAMESPACE, control, dns)
            }
        }
    }
}

/// A running gateway in its pod. Fields drop in order: the proxy before
/// its namespace.
pub(super) struct GatewayPod {
    proxy: Proxy,
    endpoint_ip: Ipv4Addr,
    netns: NetNs,
}

impl GatewayPod {
    /// Starts `gateway` of `kind` in a namespace of its own linked to
    /// `app`'s, with `roots` as its system roots.
    pub(super) fn start(
        kind: Kind,
        gateway: Gateway,
        app: &NetNs,
        control: ControlChannel,
        dns: SocketAddr,
        roots: &Path,
    ) -> Result<Self> {
        let netns = NetNs::new()?;
        netns.route_via_host()?;
        netns.allow_unprivileged_low_ports()?;
        let (_, endpoint_ip) = app.link(&netns)?;
        let options = gateway
            .options(control, dns)
            .ip(IpAddr::V4(endpoint_ip))
            .system_roots(roots);
        let proxy = Proxy::start_in(kind, &netns, &options)
            .with_context(|| format!("starting the egress gateway {gateway:?}"))?;
        Ok(Self {
            proxy,
            endpoint_ip,
            netns,
        })
    }

    pub(super) fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// Where the app's sidecar reaches it: its address on the link to the
    /// app's namespace, which it claims as its workload IP.
    pub(super) fn endpoint_ip(&self) -> Ipv4Addr {
        self.endpoint_ip
    }

    /// Where its connections to the external servers come from.
    pub(super) fn source_ip(&self) -> Ipv4Addr {
        self.netns.ns_ip()
    }
}
