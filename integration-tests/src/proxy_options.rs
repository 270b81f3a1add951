//! A proxy under test as the control plane sees it: its identity (node id,
//! role, workload labels, service account) and where it gets its config
//! and resolves names. Both launchers, our agent
//! ([`crate::data_plane::DataPlane`]) and Envoy ([`crate::envoy::Envoy`]),
//! start a proxy from one of these.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use shared::node::{NodeId, NodeType};

use crate::control_channel::{ControlChannel, ProxyConnection};

/// The workload IP a test proxy claims unless told otherwise
/// ([`ProxyOptions::ip`]).
const PROXY_IP: &str = "127.0.0.1";

/// What the proxy under test is and where it finds its peers.
#[derive(Clone)]
pub struct ProxyOptions {
    /// Its identity; the node type is its role (sidecar or router).
    pub node: NodeId,
    /// The workload labels.
    pub labels: BTreeMap<String, String>,
    /// The service account it runs as: its token's, its certificate's.
    pub service_account: String,
    /// How it reaches the control plane.
    pub control: ControlChannel,
    /// The only DNS server the proxy may use.
    pub dns_addr: SocketAddr,
    /// The proxy's system roots, when not the host's: a PEM file, given to
    /// it as `SSL_CERT_FILE` (read by BoringSSL in Envoy and by the agent's
    /// native-roots loader alike).
    pub system_roots: Option<PathBuf>,
    /// Istio's DNS proxying: our agent answers on 127.0.0.1:15053
    /// (`--dns-capture`); either proxy's node says `DNS_CAPTURE: "true"`.
    pub dns_capture: bool,
    /// Our agent's cap on distinct unregistered destinations in its
    /// metrics (`--max-unregistered-destinations`; its default when
    /// `None`). Envoy has no Istio stats to cap: it refuses to start with
    /// one.
    pub max_unregistered_destinations: Option<usize>,
    /// More arguments for our agent's `proxy` command (Envoy has its own).
    pub agent_args: Vec<String>,
    /// Where our sidecar agent binds its outbound listener
    /// (`--outbound-addr`), when not `127.0.0.1:15001`: a port of its own,
    /// so several sidecars share the host. Envoy binds what the control
    /// plane says.
    pub outbound_addr: Option<SocketAddr>,
    /// Our agent's admin address (`--admin-addr`), when not a free port.
    pub admin_addr: Option<SocketAddr>,
}

impl ProxyOptions {
    /// The sidecar of workload `app` in `namespace`, labelled `app=<app>`,
    /// running as service account `<app>` (as Istio's samples do).
    pub fn sidecar(
        app: &str,
        namespace: &str,
        control: ControlChannel,
        dns_addr: SocketAddr,
    ) -> Self {
        Self::new(NodeType::Sidecar, app, namespace, app, control, dns_addr)
    }

    /// A gateway named `name` in `namespace`, labelled `app=<name>`,
    /// running as `<name>-service-account` (as Istio's charts name it); add
    /// e.g. `.label("istio", "egressgateway")` for Istio's egress gateway.
    pub fn router(
        name: &str,
        namespace: &str,
        control: ControlChannel,
        dns_addr: SocketAddr,
    ) -> Self {
        let service_account = format!("{name}-service-account");
        Self::new(
            NodeType::Router,
            name,
            namespace,
            &service_account,
            control,
            dns_addr,
        )
    }

    /// The app of Istio's egress tasks: the sidecar of `sleep` in
    /// `default`, service account `sleep`.
    pub fn sleep(control: ControlChannel, dns_addr: SocketAddr) -> Self {
        Self::sidecar("sleep", "default", control, dns_addr)
    }

    /// Istio's egress gateway: `istio-egressgateway` in `istio-system`,
    /// service account `istio-egressgateway-service-account`, labelled
    /// `istio=egressgateway` as its Gateway resources select it.
    pub fn egress_gateway(control: ControlChannel, dns_addr: SocketAddr) -> Self {
        Self::router("istio-egressgateway", "istio-system", control, dns_addr)
            .label("istio", "egressgateway")
    }

    /// The proxy Istio deploys for Gateway API Gateway `name` of class
    /// `istio` in `namespace`: Deployment and service account
    /// `<name>-istio`, its pods labelled as Istio's `kube-gateway` template
    /// labels them (the generated Service selects
    /// `gateway.networking.k8s.io/gateway-name: <name>`), and no `app`
    /// label.
    pub fn gateway_api(
        name: &str,
        namespace: &str,
        control: ControlChannel,
        dns_addr: SocketAddr,
    ) -> Self {
        let deployment = format!("{name}-istio");
        let mut options = Self::new(
            NodeType::Router,
            &deployment,
            namespace,
            &deployment,
            control,
            dns_addr,
        );
        options.labels = BTreeMap::from(
            [
                ("sidecar.istio.io/inject", "false"),
                ("service.istio.io/canonical-name", deployment.as_str()),
                ("service.istio.io/canonical-revision", "latest"),
                ("gateway.networking.k8s.io/gateway-name", name),
                ("gateway.networking.k8s.io/gateway-class-name", "istio"),
                ("gateway.istio.io/managed", "istio.io-gateway-controller"),
            ]
            .map(|(key, value)| (key.to_string(), value.to_string())),
        );
        options
    }

    fn new(
        node_type: NodeType,
        app: &str,
        namespace: &str,
        service_account: &str,
        control: ControlChannel,
        dns_addr: SocketAddr,
    ) -> Self {
        Self {
            node: NodeId::new(node_type, PROXY_IP, app, namespace),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
            service_account: service_account.to_string(),
            control,
            dns_addr,
            system_roots: None,
            dns_capture: false,
            max_unregistered_destinations: None,
            agent_args: Vec::new(),
            outbound_addr: None,
            admin_addr: None,
        }
    }

    /// Trusts `pem` as its system roots: what a DestinationRule without
    /// `caCertificates` verifies servers with.
    pub fn system_roots(mut self, pem: &Path) -> Self {
        self.system_roots = Some(pem.to_path_buf());
        self
    }

    /// Turns on Istio's DNS proxying ([`ProxyOptions::dns_capture`]).
    pub fn dns_capture(mut self) -> Self {
        self.dns_capture = true;
        self
    }

    /// Caps the agent's distinct unregistered destinations at `cap`.
    pub fn max_unregistered_destinations(mut self, cap: usize) -> Self {
        self.max_unregistered_destinations = Some(cap);
        self
    }

    /// Binds our sidecar agent's outbound listener at `addr`.
    pub fn outbound_addr(mut self, addr: SocketAddr) -> Self {
        self.outbound_addr = Some(addr);
        self
    }

    /// Serves our agent's admin interface at `addr`.
    pub fn admin_addr(mut self, addr: SocketAddr) -> Self {
        self.admin_addr = Some(addr);
        self
    }

    /// Adds `args` to our agent's command line.
    pub fn agent_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.agent_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Gives `command` (the proxy's process) its system roots, if set.
    pub fn set_system_roots(&self, command: &mut Command) {
        if let Some(pem) = &self.system_roots {
            command.env("SSL_CERT_FILE", pem);
        }
    }

    /// Runs as `service_account` instead.
    pub fn service_account(mut self, service_account: &str) -> Self {
        self.service_account = service_account.to_string();
        self
    }

    /// The namespace, from the node id.
    pub fn namespace(&self) -> &str {
        self.node.namespace().unwrap_or_default()
    }

    /// What the proxy needs to connect, its files written to `dir` (over
    /// TLS: the root, and a token for its namespace and service account).
    pub fn connection(&self, dir: &Path) -> Result<ProxyConnection> {
        self.control
            .for_proxy(dir, self.namespace(), &self.service_account)
    }

    /// Adds (or replaces) a workload label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The workload IP, in the node id (and so in the `INSTANCE_IPS`
    /// metadata): the address other proxies reach it at when a service
    /// selects it (a gateway's in-mesh service).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.node.ip = ip.to_string();
        self
    }

    /// The proxy's role as the agent's command line names it.
    pub fn role(&self) -> &'static str {
        match self.node.node_type {
            NodeType::Sidecar => "sidecar",
            NodeType::Router => "router",
        }
    }

    /// The labels as `k=v,..`.
    pub fn labels_arg(&self) -> String {
        self.labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    fn plaintext() -> ControlChannel {
        ControlChannel::plaintext(addr(15010))
    }

    #[test]
    fn a_sidecar_is_named_as_pilot_agent_names_a_pod() {
        let options = ProxyOptions::sleep(plaintext(), addr(53));
        assert_eq!(
            options.node.to_string(),
            "sidecar~127.0.0.1~sleep.default~default.svc.cluster.local"
        );
        assert_eq!(options.role(), "sidecar");
        assert_eq!(options.labels_arg(), "app=sleep");
        assert_eq!(
            (options.namespace(), options.service_account.as_str()),
            ("default", "sleep")
        );
    }

    #[test]
    fn an_egress_gateway_is_a_labelled_router_at_its_own_ip() {
        let options = ProxyOptions::egress_gateway(plaintext(), addr(2))
            .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(
            options.node.to_string(),
            "router~10.0.0.7~istio-egressgateway.istio-system~istio-system.svc.cluster.local"
        );
        assert_eq!(options.role(), "router");
        assert_eq!(
            options.labels_arg(),
            "app=istio-egressgateway,istio=egressgateway"
        );
        assert_eq!(
            options.service_account, "istio-egressgateway-service-account",
            "the service account Istio's charts give the egress gateway"
        );
    }

    #[test]
    fn a_gateway_api_gateway_is_the_deployment_istio_would_create() {
        let options =
            ProxyOptions::gateway_api("cnn-egress-gateway", "default", plaintext(), addr(2));
        assert_eq!(
            options.node.to_string(),
            "router~127.0.0.1~cnn-egress-gateway-istio.default~default.svc.cluster.local"
        );
        assert_eq!(options.role(), "router");
        assert_eq!(options.service_account, "cnn-egress-gateway-istio");
        assert_eq!(
            options
                .labels
                .get("gateway.networking.k8s.io/gateway-name")
                .map(String::as_str),
            Some("cnn-egress-gateway"),
            "the label the generated Service and Gateway select"
        );
        assert!(!options.labels.contains_key("app"), "{:?}", options.labels);
    }

    #[test]
    fn a_plaintext_proxy_gets_no_files_and_says_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let connection = ProxyOptions::sleep(plaintext(), addr(53))
            .connection(dir.path())
            .unwrap();
        assert!(connection.tls.is_none());
        assert_eq!(
            connection.agent_args(),
            ["--xds-addr", "127.0.0.1:15010", "--plaintext"]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
