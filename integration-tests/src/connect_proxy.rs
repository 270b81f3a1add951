//! A small HTTPS proxy (the squid of Istio's http-proxy task): it answers
//! `CONNECT host:port` by connecting to where the test says that host is,
//! replying `200 Connection established` and relaying bytes both ways. It
//! records every CONNECT target, as squid's access log does, and refuses
//! any other method (405).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::background::ServerThread;
use crate::netns::NetNs;

/// The longest request head read.
const MAX_HEAD: usize = 8192;

/// A running proxy; stops on drop.
pub struct ConnectProxy {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
    _server: ServerThread,
}

impl ConnectProxy {
    /// Listens on `addr`, and connects, inside `netns` if given; a CONNECT to a host of
    /// `hosts` goes to its address, any other is refused (502).
    pub fn start(
        netns: Option<&NetNs>,
        addr: SocketAddr,
        hosts: HashMap<String, SocketAddr>,
    ) -> Result<Self> {
        let targets = Arc::new(Mutex::new(Vec::new()));
        let server_targets = Arc::clone(&targets);
        let hosts = Arc::new(hosts);
        // Bound, and its thread started, where it serves: the connections
        // it makes to the hosts leave from there too.
        let start = move || {
            let listener =
                std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let server =
                ServerThread::spawn(&format!("connect-proxy-{addr}"), move || async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => loop {
                            let Ok((stream, _)) = listener.accept().await else {
                                continue;
                            };
                            tokio::spawn(tunnel(
                                stream,
                                Arc::clone(&hosts),
                                Arc::clone(&server_targets),
                            ));
                        },
                        Err(err) => eprintln!("connect proxy {addr}: {err}"),
                    }
                })?;
            Ok((addr, server))
        };
        let (addr, server) = match netns {
            Some(netns) => netns.run_inside(start)?,
            None => start()?,
        };
        Ok(Self {
            addr,
            targets,
            _server: server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every CONNECT target (`host:port`) so far, oldest first.
    pub fn targets(&self) -> Vec<String> {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One client: its CONNECT, then the relay.
async fn tunnel(
    mut client: TcpStream,
    hosts: Arc<HashMap<String, SocketAddr>>,
    targets: Arc<Mutex<Vec<String>>>,
) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let Some(target) = connect_target(&head) else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    targets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(target.clone());
    let host = target
        .rsplit_once(':')
        .map_or(target.as_str(), |(host, _)| host);
    let upstream = match hosts.get(host) {
        Some(addr) => TcpStream::connect(addr).await.ok(),
        None => None,
    };
    let Some(mut upstream) = upstream else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    // Either side closing ends the tunnel; nothing to report.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The request head, up to the blank line (`None` if the client goes
/// away first or sends too much).
async fn read_head(client: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || client.read_exact(&mut byte).await.is_err() {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// `host:port` of a `CONNECT host:port HTTP/1.1` request line.
fn connect_target(head: &str) -> Option<String> {
    let mut words = head.lines().next()?.split_whitespace();
    (words.next()? == "CONNECT").then_some(())?;
    words.next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::connect_target;

    #[test]
    fn only_connect_names_a_target() {
        assert_eq!(
            connect_target("CONNECT en.wikipedia.org:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("en.wikipedia.org:443".to_string())
        );
        assert_eq!(connect_target("GET / HTTP/1.1\r\n\r\n"), None);
    }
}
