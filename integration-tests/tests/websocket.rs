//! A WebSocket through the agent's explicit proxy (loopback, no root): the
//! test upstream's WebSocket echo ([`integration_tests::websocket`])
//! behind a ServiceEntry of protocol HTTP, whose connection manager
//! carries istiod's `upgrade_configs [websocket]`. The handshake reaches
//! the server with its upgrade headers, the 101 with RFC 6455's
//! accept value comes back, a masked frame is echoed, the stream is logged
//! with 101 once the session ends, and counted as Envoy counts upgrades.
//!
//! The agent binds 15001: these tests run one at a time
//! ([`DataPlane::start`] waits for the previous agent).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::mesh_config;
use integration_tests::process::eventually;
use integration_tests::proxy_options::ProxyOptions;
use integration_tests::upstream::Upstream;
use integration_tests::websocket::{
    ACCEPT, KEY, echoed_text_frame, handshake, masked_text_frame, read_head,
};

const HOST: &str = "echo.ws.test";
const GUARD: Duration = Duration::from_secs(10);

#[test]
fn a_websocket_through_the_explicit_proxy_is_switched_and_echoes() -> Result<()> {
    let echo = Upstream::http()?;
    let dns = DnsServer::start([(HOST, Ipv4Addr::LOCALHOST)])?;
    let config = ConfigDir::new()?;
    config.write(
        "echo.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: echo\n\
             spec:\n  hosts:\n  - {HOST}\n  ports:\n  - number: {}\n    name: http\n    protocol: HTTP\n\
             \x20 resolution: DNS\n  location: MESH_EXTERNAL\n",
            echo.port()
        ),
    )?;
    let control_plane = ControlPlane::start(config.path(), Some(&mesh_config("registry-only")))?;
    let agent = DataPlane::start(&ProxyOptions::sidecar(
        "sleep",
        "default",
        control_plane.channel(),
        dns.addr(),
    ))?;
    let authority = format!("{HOST}:{}", echo.port());
    let (mut client, head) = eventually(GUARD, || {
        let mut client = TcpStream::connect(agent.proxy_addr())?;
        client.set_read_timeout(Some(GUARD))?;
        client.write_all(
            handshake(
                &authority,
                &format!("http://{authority}/chat"),
                "websocket",
                KEY,
            )
            .as_bytes(),
        )?;
        let head = read_head(&mut client)?;
        ensure!(head.starts_with("http/1.1 101 "), "not switched: {head}");
        Ok((client, head))
    })
    .with_context(|| agent.logs())?;
    ensure!(
        head.contains(&format!(
            "sec-websocket-accept: {}\r\n",
            ACCEPT.to_ascii_lowercase()
        )),
        "the server's accept value comes back: {head}"
    );
    ensure!(head.contains("upgrade: websocket\r\n"), "{head}");
    eprintln!(
        "a WebSocket handshake through the explicit proxy -> {}",
        head.lines().next().unwrap_or_default()
    );
    // A masked text frame "ping"; the server echoes it unmasked.
    client.write_all(&masked_text_frame(b"ping")?)?;
    let mut echoed = [0; 6];
    client.read_exact(&mut echoed)?;
    ensure!(
        echoed.as_slice() == echoed_text_frame(b"ping"),
        "echoed: {echoed:?}"
    );
    let stats = agent.admin_get("/stats/prometheus")?.body;
    ensure!(
        stats.lines().any(
            |line| line.starts_with("envoy_http_downstream_cx_upgrades_active{")
                && line.ends_with(" 1")
        ),
        "one upgrade active: {stats}"
    );
    drop(client);
    let line = agent.wait_for_access_log(Duration::from_secs(5), |line| {
        line.contains("\"GET /chat HTTP/1.1\" 101 ")
    })?;
    println!("{line}");
    Ok(())
}
