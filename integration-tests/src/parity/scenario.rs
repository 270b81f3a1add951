//! A row of the parity table: the config, the app's request, what a proxy
//! holds once it has the config, and what must come of the request.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, ensure};

use super::Outcome;
use super::gateway::Gateway;
use crate::config_dump::DynamicResources;

/// One row of the table: a config, a request, and what must come of it.
pub struct Scenario {
    pub name: &'static str,
    /// `examples/mesh-config/<mesh>.yaml`: `allow-any` or `registry-only`.
    pub mesh: &'static str,
    /// The config directory's files (name, YAML); any other file is removed.
    pub files: Vec<(&'static str, String)>,
    /// What a proxy holds once it has this config.
    pub ready: Vec<Ready>,
    /// The egress gateway the request goes through, if any.
    pub gateway: Option<Gateway>,
    pub request: Request,
    pub expected: Outcome,
}

impl Scenario {
    /// The app sends `request` under REGISTRY_ONLY and `expected` comes of
    /// it; no config files, nothing to wait for and no egress gateway
    /// unless added.
    pub fn new(name: &'static str, request: Request, expected: Outcome) -> Self {
        Self {
            name,
            mesh: "registry-only",
            files: Vec::new(),
            ready: Vec::new(),
            gateway: None,
            request,
            expected,
        }
    }

    /// Under `examples/mesh-config/<mesh>.yaml` instead.
    pub fn mesh(self, mesh: &'static str) -> Self {
        Self { mesh, ..self }
    }

    pub fn files(self, files: Vec<(&'static str, String)>) -> Self {
        Self { files, ..self }
    }

    pub fn ready(self, ready: Vec<Ready>) -> Self {
        Self { ready, ..self }
    }

    /// Through Istio's egress gateway: ready once `listener` sends the
    /// request to the gateway's `cluster` and the gateway, listening on
    /// `port`, is that cluster's only endpoint.
    pub fn through_gateway(self, listener: &'static str, cluster: &'static str, port: u16) -> Self {
        self.through(Gateway::Istio, listener, cluster, port)
    }

    /// Through the proxy Istio deploys for the Gateway API Gateway `name`,
    /// ready as [`Scenario::through_gateway`].
    pub fn through_gateway_api(
        self,
        name: &'static str,
        listener: &'static str,
        cluster: &'static str,
        port: u16,
    ) -> Self {
        self.through(Gateway::Api(name), listener, cluster, port)
    }

    fn through(
        self,
        gateway: Gateway,
        listener: &'static str,
        cluster: &'static str,
        port: u16,
    ) -> Self {
        Self {
            ready: vec![
                Ready::Has(listener, cluster),
                Ready::GatewayEndpoint(cluster, port),
            ],
            gateway: Some(gateway),
            ..self
        }
    }
}

/// A curl invocation of the app.
pub struct Request {
    pub url: &'static str,
    /// `curl -I` (HEAD), as the walkthrough checks HTTPS services.
    pub head: bool,
}

impl Request {
    pub fn get(url: &'static str) -> Self {
        Self { url, head: false }
    }

    pub fn head(url: &'static str) -> Self {
        Self { url, head: true }
    }

    /// The URL's scheme and host (`http` when it has no scheme).
    pub(super) fn scheme_and_host(&self) -> (&'static str, &'static str) {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("http", self.url));
        (scheme, rest.split('/').next().unwrap_or(rest))
    }
}

/// Something a proxy's config dump shows once it has a scenario's config.
pub enum Ready {
    /// A cluster, listener or route configuration whose JSON holds the text
    /// (any, for an empty text).
    Has(&'static str, &'static str),
    /// A cluster, listener or route configuration whose JSON lacks the text.
    Lacks(&'static str, &'static str),
    /// The EDS cluster's only endpoint is this side's egress gateway, on
    /// the given port (of its pod).
    GatewayEndpoint(&'static str, u16),
    /// The EDS cluster has no endpoint (its gateway went away).
    NoEndpoints(&'static str),
}

impl Ready {
    /// Whether this shows only once the egress gateway is connected.
    pub(super) fn needs_gateway(&self) -> bool {
        matches!(self, Ready::GatewayEndpoint(..))
    }

    /// Whether `resources` show this, the gateway reached at `gateway_ip`.
    pub(super) fn check(&self, resources: &DynamicResources, gateway_ip: Ipv4Addr) -> Result<()> {
        match self {
            Ready::Has(name, text) | Ready::Lacks(name, text) => {
                let json = resources
                    .resource(name)
                    .with_context(|| format!("no resource named {name}"))?
                    .to_string();
                let wanted = matches!(self, Ready::Has(..));
                ensure!(
                    json.contains(text) == wanted,
                    "{name} {} {text}: {json}",
                    if wanted { "lacks" } else { "still has" }
                );
            }
            Ready::GatewayEndpoint(cluster, port) => {
                let endpoints = endpoints(resources, cluster);
                ensure!(
                    endpoints == [format!("{gateway_ip}:{port}")],
                    "{cluster} has endpoints {endpoints:?}, not only the gateway at \
                     {gateway_ip}:{port}"
                );
            }
            Ready::NoEndpoints(cluster) => {
                let endpoints = endpoints(resources, cluster);
                ensure!(
                    endpoints.is_empty(),
                    "{cluster} still has endpoints {endpoints:?}"
                );
            }
        }
        Ok(())
    }
}

fn endpoints<'a>(resources: &'a DynamicResources, cluster: &str) -> &'a [String] {
    resources.endpoints.get(cluster).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn resources() -> DynamicResources {
        let mut resources = DynamicResources::default();
        resources.listeners.insert(
            "virtualOutbound".into(),
            json!({ "name": "virtualOutbound", "cluster": "PassthroughCluster" }),
        );
        resources
            .endpoints
            .insert("gw".into(), vec!["198.18.0.1:8080".into()]);
        resources.endpoints.insert("gone".into(), vec![]);
        resources
    }

    #[test]
    fn has_and_lacks_look_for_text_in_the_named_resource() {
        let resources = resources();
        assert!(
            Ready::Has("virtualOutbound", "PassthroughCluster")
                .check(&resources, GATEWAY_IP)
                .is_ok()
        );
        assert!(
            Ready::Has("virtualOutbound", "")
                .check(&resources, GATEWAY_IP)
                .is_ok()
        );
        assert!(
            Ready::Lacks("virtualOutbound", "PassthroughCluster")
                .check(&resources, GATEWAY_IP)
                .is_err()
        );
        assert!(
            Ready::Lacks("virtualOutbound", "BlackHoleCluster")
                .check(&resources, GATEWAY_IP)
                .is_ok()
        );
        assert!(
            Ready::Lacks("80", "anything")
                .check(&resources, GATEWAY_IP)
                .is_err(),
            "a missing resource is not ready"
        );
    }

    #[test]
    fn endpoints_must_be_the_gateway_alone_or_none() {
        let resources = resources();
        assert!(
            Ready::GatewayEndpoint("gw", 8080)
                .check(&resources, GATEWAY_IP)
                .is_ok()
        );
        assert!(
            Ready::GatewayEndpoint("gw", 8443)
                .check(&resources, GATEWAY_IP)
                .is_err()
        );
        assert!(
            Ready::GatewayEndpoint("gone", 8080)
                .check(&resources, GATEWAY_IP)
                .is_err()
        );
        assert!(
            Ready::NoEndpoints("gone")
                .check(&resources, GATEWAY_IP)
                .is_ok()
        );
        assert!(
            Ready::NoEndpoints("unknown")
                .check(&resources, GATEWAY_IP)
                .is_ok()
        );
        assert!(
            Ready::NoEndpoints("gw")
                .check(&resources, GATEWAY_IP)
                .is_err()
        );
    }

    #[test]
    fn a_request_names_its_scheme_and_host() {
        assert_eq!(
            Request::get("http://edition.cnn.com/politics").scheme_and_host(),
            ("http", "edition.cnn.com")
        );
        assert_eq!(
            Request::head("https://www.baidu.com").scheme_and_host(),
            ("https", "www.baidu.com")
        );
    }
}
