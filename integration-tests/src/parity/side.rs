//! One kind's half of the parity run: the sidecar in its namespace behind
//! istio-init's capture, the external servers and DNS on the host end of
//! the veth, the egress gateway in its pod during a gateway scenario, and
//! what a request through them came to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};

use super::access_log::summary;
use super::gateway::GatewayPod;
use super::outcome::{GATEWAY, Outcome, SIDECAR};
use super::proxy::{Kind, Proxy};
use super::{CONVERGE, Request, Scenario};
use crate::control_channel::ControlChannel;
use crate::curl::{Curl, CurlResponse};
use crate::dns::DnsServer;
use crate::netns::NetNs;
use crate::process::eventually;
use crate::tls::TestCa;
use crate::upstream::Upstream;

/// The mutual TLS server of Istio's TLS origination tasks (nginx there),
/// which asks for a client certificate.
const MY_NGINX: &str = "my-nginx.mesh-external.svc.cluster.local";
/// Every external name of Istio's egress tasks; all resolve to the host
/// end of the veth.
const EXTERNAL_NAMES: [&str; 8] = [
    "httpbin.org",
    "www.baidu.com",
    "edition.cnn.com",
    "www.google.com",
    "en.wikipedia.org",
    "de.wikipedia.org",
    "www.wikipedia.org",
    MY_NGINX,
];
/// The header the decorator arrives in.
const DECORATOR: &str = "x-envoy-decorator-operation";

/// Everything one kind's runs need: the sidecar in its namespace, the
/// external servers and DNS on the host end of the veth, and during a
/// gateway scenario the gateway. Fields drop in order, the namespace last.
pub(super) struct Side {
    kind: Kind,
    gateway: Option<GatewayPod>,
    sidecar: Proxy,
    http: Upstream,
    https: Upstream,
    dns: DnsServer,
    control: ControlChannel,
    netns: NetNs,
}

/// How far the records went before a run: what came after is its own.
struct Marks {
    http: usize,
    https: usize,
    hellos: usize,
    sidecar_log: usize,
}

impl Side {
    /// The sidecar of `kind` in a namespace of its own, reaching the
    /// control plane through `control` at the host end of its veth.
    pub(super) fn start(kind: Kind, control: &ControlChannel, ca: &TestCa) -> Result<Self> {
        let netns = NetNs::new()?;
        let host = netns.host_ip();
        let http = Upstream::http_on(SocketAddr::from((host, 80)))?;
        let https = Upstream::https_asking_client_certs_on(
            SocketAddr::from((host, 443)),
            ca,
            &EXTERNAL_NAMES,
            &[MY_NGINX],
        )?;
        let dns = DnsServer::start_on(host, EXTERNAL_NAMES.map(|name| (name, host)))?;
        let control = control.clone().via(IpAddr::V4(host));
        netns.data_plane_init(
            control.addr().port(),
            &["--include-outbound-ip-ranges", "*"],
            CONVERGE,
        )?;
        let sidecar = Proxy::sidecar(kind, &netns, control.clone(), dns.addr(), ca.cert_path())?;
        Ok(Self {
            kind,
            gateway: None,
            sidecar,
            http,
            https,
            dns,
            control,
            netns,
        })
    }

    /// Waits for the scenario's config, starts its gateway if it has one,
    /// runs its request and reads what came of it; the gateway is gone
    /// afterwards.
    /// A proxy that never shows the config is reported (on stderr, with
    /// its logs) and the request is sent anyway: what comes of it is the
    /// row's outcome.
    pub(super) fn run(&mut self, scenario: &Scenario, ca_cert: &Path) -> Result<Outcome> {
        self.report_unready(self.wait_ready(scenario, None));
        if let Some(gateway) = scenario.gateway {
            let gateway = GatewayPod::start(
                self.kind,
                gateway,
                &self.netns,
                self.control.clone(),
                self.dns.addr(),
                ca_cert,
            )?;
            let endpoint = gateway.endpoint_ip();
            self.gateway = Some(gateway);
            self.report_unready(self.wait_ready(scenario, Some(endpoint)));
        }
        let marks = Marks {
            http: self.http.requests().len(),
            https: self.https.requests().len(),
            hellos: self.https.tls_hellos().len(),
            sidecar_log: self.sidecar.access_log().len(),
        };
        let response = self.curl(&scenario.request, ca_cert).run()?;
        let outcome = self.outcome(&response, &marks);
        self.gateway = None;
        Ok(outcome)
    }

    fn report_unready(&self, ready: Result<()>) {
        if let Err(error) = ready {
            eprintln!("NOT READY ({}): {error:#}", self.kind.name());
        }
    }

    /// Polls the sidecar's config dump until it shows the scenario's config
    /// (with the address of a running gateway, also the gateway as the
    /// endpoint).
    fn wait_ready(&self, scenario: &Scenario, gateway: Option<Ipv4Addr>) -> Result<()> {
        eventually(CONVERGE, || {
            let resources = self.sidecar.config()?;
            for ready in &scenario.ready {
                match gateway {
                    Some(gateway_ip) => ready.check(&resources, gateway_ip)?,
                    None if !ready.needs_gateway() => {
                        ready.check(&resources, self.netns.host_ip())?;
                    }
                    None => {}
                }
            }
            Ok(())
        })
        .with_context(|| {
            format!(
                "the {} sidecar never took the config of {:?}\n{}",
                self.kind.name(),
                scenario.name,
                self.sidecar.logs()
            )
        })
    }

    /// The app's curl, inside the namespace (so it is captured), the URL's
    /// host resolved to the external servers.
    fn curl(&self, request: &Request, ca_cert: &Path) -> Curl {
        let (scheme, host) = request.scheme_and_host();
        let https = scheme == "https";
        let mut curl = Curl::get(request.url)
            .resolve(
                host,
                if https { 443 } else { 80 },
                IpAddr::V4(self.netns.host_ip()),
            )
            .in_netns(&self.netns);
        if https {
            curl = curl.cacert(ca_cert);
        }
        if request.head {
            curl = curl.arg("-I");
        }
        curl
    }

    fn outcome(&self, response: &CurlResponse, marks: &Marks) -> Outcome {
        let mut outcome = if response.exit_code == 0 {
            Outcome::http(response.status)
        } else {
            Outcome::curl_exit(response.exit_code)
        };
        if response.exit_code == 0 && response.status != 200 {
            outcome.error_body = format!("{:?}", response.body.trim());
        }
        if response.status == 200 {
            outcome.x_envoy = response
                .headers
                .iter()
                .map(|(name, _)| name.to_ascii_lowercase())
                .filter(|name| name.starts_with("x-envoy-"))
                .collect();
        }
        let requests: Vec<_> = self.http.requests()[marks.http..]
            .iter()
            .chain(&self.https.requests()[marks.https..])
            .cloned()
            .collect();
        let hellos = self.https.tls_hellos()[marks.hellos..].to_vec();
        if let Some(decorator) = requests
            .last()
            .and_then(|request| request.header(DECORATOR))
        {
            outcome.decorator = decorator.to_string();
        }
        if let Some(sni) = hellos.last().and_then(|hello| hello.sni.clone()) {
            outcome.sni = sni;
        }
        if requests.last().is_some_and(|request| request.client_cert) {
            outcome.client_cert = "yes".to_string();
        }
        let peer = requests
            .last()
            .map(|request| request.peer)
            .or_else(|| hellos.last().map(|hello| hello.peer));
        let gateway_source = self.gateway.as_ref().map(GatewayPod::source_ip);
        if let Some(peer) = peer {
            outcome.peer = if peer.ip() == IpAddr::V4(self.netns.ns_ip()) {
                SIDECAR.to_string()
            } else if gateway_source.is_some_and(|source| peer.ip() == IpAddr::V4(source)) {
                GATEWAY.to_string()
            } else {
                peer.to_string()
            };
        }
        let host = self.netns.host_ip();
        let gateway_endpoint = self.gateway.as_ref().map(GatewayPod::endpoint_ip);
        outcome.sidecar_log = summary(
            &self.sidecar.access_log_after(marks.sidecar_log),
            host,
            gateway_endpoint,
        );
        if let Some(gateway) = &self.gateway {
            outcome.gateway_log = summary(&gateway.proxy().access_log_after(0), host, None);
        }
        outcome
    }
}
