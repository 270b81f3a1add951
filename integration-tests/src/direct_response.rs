//! An egress gateway agent fed by a fake ADS server with HTTP listeners
//! whose one route answers 200 `ok` itself: the agent's accept path and
//! connection manager alone, without upstreams, for tests that hold many
//! connections.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Result;
use data_plane::testing::auto_ads::AutoAds;
use data_plane::testing::resources::pack;
use serde_json::{Value, json};
use shared::type_url::{CLUSTER, LISTENER};

use crate::control_channel::ControlChannel;
use crate::data_plane::DataPlane;
use crate::dns::DnsServer;
use crate::ports::free_port;
use crate::process::wait_for_port;
use crate::proxy_options::ProxyOptions;

/// What a request gets.
pub const OK: &str = "HTTP/1.1 200 OK";

/// A listener on 127.0.0.1:`port` whose connection manager (stat prefix
/// `prefix`) answers every request 200 `ok`, with the connection manager
/// settings `hcm` added (e.g. `requestHeadersTimeout`).
pub fn listener(prefix: &str, port: u16, hcm: Value) -> Value {
    let mut manager = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "statPrefix": prefix,
        "routeConfig": {
            "name": "local",
            "virtualHosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{
                    "match": { "prefix": "/" },
                    "directResponse": { "status": 200, "body": { "inlineString": "ok" } }
                }]
            }]
        },
        "httpFilters": [{
            "name": "envoy.filters.http.router",
            "typedConfig": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }]
    });
    if let (Some(manager), Some(extra)) = (manager.as_object_mut(), hcm.as_object()) {
        manager.extend(extra.clone());
    }
    json!({
        "name": prefix,
        "address": { "socketAddress": { "address": "127.0.0.1", "portValue": port } },
        "filterChains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typedConfig": manager
            }]
        }]
    })
}

/// The agent, its config server and its listeners' addresses.
pub struct Gateway {
    pub agent: DataPlane,
    pub listeners: Vec<SocketAddr>,
    _ads: AutoAds,
    _dns: DnsServer,
}

impl Gateway {
    /// Starts an agent (with `agent_args`) serving one listener per stat
    /// prefix of `prefixes`, each with the connection manager settings
    /// `hcm`; returns once every listener accepts.
    pub fn start(prefixes: &[&str], hcm: Value, agent_args: &[&str]) -> Result<Self> {
        let dns = DnsServer::start([])?;
        let ads = AutoAds::start()?;
        let mut listeners = Vec::new();
        let mut resources = Vec::new();
        for prefix in prefixes {
            let port = free_port()?;
            resources.push(pack(LISTENER, &listener(prefix, port, hcm.clone()))?);
            listeners.push(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
        ads.set(CLUSTER, Vec::new());
        ads.set(LISTENER, resources);
        let agent = DataPlane::start(
            &ProxyOptions::egress_gateway(ControlChannel::plaintext(ads.address()), dns.addr())
                .agent_args(agent_args.iter().copied()),
        )?;
        for addr in &listeners {
            wait_for_port(*addr, Duration::from_secs(30))?;
        }
        Ok(Self {
            agent,
            listeners,
            _ads: ads,
            _dns: dns,
        })
    }
}

/// One complete request on a new connection to `addr`: the status line,
/// empty when the connection was closed without an answer.
pub fn request(addr: SocketAddr, timeout: Duration) -> Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    // A connection closed at once may refuse the write: it still says
    // nothing was answered.
    let _ =
        stream.write_all(b"GET /fresh HTTP/1.1\r\nHost: fresh.test\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    Ok(response.lines().next().unwrap_or_default().to_string())
}
