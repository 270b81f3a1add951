//! A DestinationRule's TCP connection settings at their limits: the
//! `maxConnections` breaker on a TCP service, and `connectTimeout` to an
//! address that never answers a connection.

use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::policy::{Call, Facts, Ready, Reply, Scenario, at_least, sorted_tally};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, socket,
};
use serde_json::json;

use crate::config::{destination_rule, ready, service, service_on_ports};
use crate::virtual_service::with_counters;

pub fn scenarios() -> Vec<Scenario> {
    vec![tcp_max_connections(), connect_timeout()]
}

/// `tcp.maxConnections: 1` on a TCP service, and two connections at once
/// each carrying a request that takes 2 s: the first is proxied; Envoy's
/// TCP proxy closes the second at once without a byte, logs it flagged
/// UO and counts `upstream_cx_overflow`. Whether curl sees that close as
/// an empty reply (exit 52) or a reset (exit 56) depends on whether its
/// request reached the socket before the close, with Envoy too.
fn tcp_max_connections() -> Scenario {
    const HOST: &str = "tcp-pool.example.com";
    const PORT: u16 = 9001;
    Scenario::new(
        "DR tcp.maxConnections overflow on a TCP service (UO)",
        vec![
            service(HOST, PORT, "TCP", &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "tcp": { "maxConnections": 1 } } }),
            ),
        ],
        |probe| {
            let call = Call::get(HOST, "/").url(&format!("http://{HOST}:{PORT}/delay/2"));
            let replies = probe.send_parallel(&[call.clone(), call])?;
            let facts = Facts::new()
                .with("results", sorted_tally(replies.iter().map(outcome)))
                .with("log", sorted_tally(probe.log()));
            let cluster = format!("outbound|{PORT}||{HOST}");
            let overflow = probe.cluster_stat(&cluster, "upstream_cx_overflow")?;
            Ok(facts.with("upstream_cx_overflow", overflow))
        },
        Facts::new()
            .with("results", "200×1 closed without a response×1")
            .with("log", "0 -×1 0 UO×1")
            .with("upstream_cx_overflow", 1),
    )
    .ready(vec![
        Ready::endpoints(format!("outbound|{PORT}||{HOST}"), 1),
        Ready::has(format!("0.0.0.0_{PORT}"), HOST),
    ])
}

/// A reply's status, or `closed without a response` for a connection
/// closed or reset before any byte came back (curl exit 52 or 56).
fn outcome(reply: &Reply) -> String {
    match reply.exit_code {
        52 | 56 => "closed without a response".to_string(),
        _ => reply.result(),
    }
}

/// The port of the side's host where [`SynDropper`] listens.
const SILENT_PORT: u16 = 9002;

/// A listener that never accepts, its queue of one connection full: the
/// kernel drops every further SYN to it, as to an address that drops
/// packets, so a connection attempt waits until its own timeout.
struct SynDropper {
    _listener: OwnedFd,
    _queued: TcpStream,
}

impl SynDropper {
    fn bind(addr: SocketAddrV4) -> Result<Self> {
        let listener = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(listener.as_raw_fd(), &SockaddrIn::from(addr))
            .with_context(|| format!("binding {addr}"))?;
        listen(&listener, Backlog::new(0)?)?;
        let queued = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))
            .context("filling the accept queue")?;
        Ok(Self {
            _listener: listener,
            _queued: queued,
        })
    }
}

/// `tcp.connectTimeout: 1s` to an endpoint that drops SYNs: each attempt
/// gives up after 1 s, istiod's default retries (two, on
/// connect-failure) try again, and the app gets Envoy's 503 for a
/// connection timeout, flagged UF and URX, not before 3 s. Envoy counts
/// each attempt in `upstream_cx_connect_timeout`.
fn connect_timeout() -> Scenario {
    const HOST: &str = "connect-timeout.example.com";
    Scenario::new(
        "DR tcp.connectTimeout to an address that drops SYNs (UF)",
        vec![
            service_on_ports(HOST, 80, "HTTP", &[("silent", SILENT_PORT.to_string())]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "tcp": { "connectTimeout": "1s" } } }),
            ),
        ],
        |probe| {
            let _dropper = SynDropper::bind(SocketAddrV4::new(probe.host_ip(), SILENT_PORT))?;
            let reply = probe.send(&Call::get(HOST, "/"))?;
            let facts = Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("elapsed", at_least(reply.elapsed, Duration::from_secs(3)))
                .with("log", probe.log().join("; "));
            with_counters(facts, probe, HOST, &["upstream_cx_connect_timeout"])
        },
        Facts::new()
            .with("status", 503)
            .with(
                "body",
                "upstream connect error or disconnect/reset before headers. retried and the \
                 latest reset reason: connection timeout",
            )
            .with("elapsed", "≥ 3s")
            .with("log", "503 URX,UF")
            .with("upstream_cx_connect_timeout", 3),
    )
    .ready(ready(HOST, 1))
}
