//! A WebSocket through the agent's explicit proxy (loopback, no root): an
//! echo server behind a ServiceEntry of protocol HTTP, whose connection
//! manager carries istiod's `upgrade_configs [websocket]`. The handshake
//! reaches the server with its upgrade headers, the 101 with RFC 6455's
//! accept value comes back, a masked frame is echoed, the stream is logged
//! with 101 once the session ends, and counted as Envoy counts upgrades.
//!
//! The agent binds 15001: these tests run one at a time
//! ([`DataPlane::start`] waits for the previous agent).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::data_plane::DataPlane;
use integration_tests::dns::DnsServer;
use integration_tests::fixtures::mesh_config;
use integration_tests::process::eventually;
use integration_tests::proxy_options::ProxyOptions;

const HOST: &str = "echo.ws.test";
/// RFC 6455's sample key and the accept value it gives.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzrIGzo2ooo=";
const GUARD: Duration = Duration::from_secs(10);

/// Reads a message head, lower-cased.
fn read_head(stream: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        ensure!(stream.read(&mut byte)? == 1, "closed in the head: {head:?}");
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).to_ascii_lowercase())
}

/// A WebSocket echo server on loopback: it accepts RFC 6455's sample key
/// only, then sends each client frame's payload back unmasked.
fn echo_server() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve_echo(stream));
        }
    });
    Ok(addr)
}

fn serve_echo(mut stream: TcpStream) -> Result<()> {
    stream.set_read_timeout(Some(GUARD))?;
    let head = read_head(&mut stream)?;
    let key = format!("sec-websocket-key: {}\r\n", KEY.to_ascii_lowercase());
    if !(head.contains("\r\nupgrade: websocket\r\n") && head.contains(&key)) {
        stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")?;
        return Ok(());
    }
    stream.write_all(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        )
        .as_bytes(),
    )?;
    loop {
        let mut header = [0; 2];
        if stream.read_exact(&mut header).is_err() {
            return Ok(());
        }
        let len = usize::from(header[1] & 0x7f);
        let mut mask = [0; 4];
        stream.read_exact(&mut mask)?;
        let mut payload = vec![0; len];
        stream.read_exact(&mut payload)?;
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        let mut frame = vec![header[0], u8::try_from(len)?];
        frame.extend_from_slice(&payload);
        stream.write_all(&frame)?;
    }
}

#[test]
fn a_websocket_through_the_explicit_proxy_is_switched_and_echoes() -> Result<()> {
    let echo = echo_server()?;
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
            format!(
                "GET http://{authority}/chat HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
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
    // A masked text frame "ping"; the server echoes it unmasked.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x84];
    frame.extend_from_slice(&mask);
    frame.extend(b"ping".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    client.write_all(&frame)?;
    let mut echoed = [0; 6];
    client.read_exact(&mut echoed)?;
    ensure!(&echoed == b"\x81\x04ping", "echoed: {echoed:?}");
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
