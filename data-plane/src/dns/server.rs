//! The DNS proxy's listeners: UDP and TCP on one address (127.0.0.1:15053 by default), each query decided against the table in force and, when forwarded, answered by the forwarder. TCP connections are capped and closed when idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::DnsProxy;
use super::answer::{Decision, Transport};
use super::forward::read_framed;

/// TCP clients served at once; beyond, a new connection is closed.
const MAX_TCP_CONNECTIONS: usize = 256;
/// How many system-picked ports to try for a port 0 address before giving
/// up on finding one free for both UDP and TCP.
const EPHEMERAL_ATTEMPTS: u32 = 16;
/// A TCP connection with no query for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest DNS message over UDP.
const MAX_UDP_MESSAGE: usize = 65_535;

/// Why the DNS proxy cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "cannot listen for DNS on {addr} ({transport}): {source} (is another agent's DNS proxy running? see --dns-addr)"
    )]
    Bind {
        addr: SocketAddr,
        transport: &'static str,
        source: std::io::Error,
    },
}

/// The DNS proxy's bound sockets, ready to serve.
pub struct DnsListeners {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl DnsListeners {
    /// Binds UDP and TCP on `addr` (port 0: one port the system picks, free
    /// for both).
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        let mut attempts = 0;
        loop {
            let udp = UdpSocket::bind(addr)
                .await
                .map_err(|source| BindError::Bind {
                    addr,
                    transport: "UDP",
                    source,
                })?;
            let bound = udp.local_addr().unwrap_or(addr);
            match TcpListener::bind(bound).await {
                Ok(tcp) => return Ok(Self { udp, tcp }),
                // Port 0 let the system pick a UDP port whose TCP twin is
                // taken: pick again.
                Err(source)
                    if addr.port() == 0
                        && source.kind() == std::io::ErrorKind::AddrInUse
                        && attempts < EPHEMERAL_ATTEMPTS =>
                {
                    attempts += 1;
                }
                Err(source) => {
                    return Err(BindError::Bind {
                        addr: bound,
                        transport: "TCP",
                        source,
                    });
                }
            }
        }
    }

    /// The address both sockets listen on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serves queries until the task is dropped.
    pub async fn serve(self, dns: Arc<DnsProxy>) {
        tokio::join!(
            serve_udp(Arc::new(self.udp), dns.clone()),
            serve_tcp(self.tcp, dns)
        );
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, dns: Arc<DnsProxy>) {
    let mut buf = vec![0u8; MAX_UDP_MESSAGE];
    loop {
        let (len, client) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "DNS UDP receive failed");
                continue;
            }
        };
        match dns.decide(&buf[..len], Transport::Udp) {
            Decision::Reply(reply) => send(&socket, &reply, client).await,
            Decision::Drop => {}
            Decision::Forward(forward) => match dns.forwarder.admit() {
                None => send(&socket, &forward.failure, client).await,
                Some(permit) => {
                    let socket = socket.clone();
                    let dns = dns.clone();
                    tokio::spawn(async move {
                        let answer = dns.forwarder.answer(forward, Transport::Udp).await;
                        drop(permit);
                        send(&socket, &answer, client).await;
                    });
                }
            },
        }
    }
}

/// Sends `reply` to `client`; a client that went away needs no answer.
async fn send(socket: &UdpSocket, reply: &[u8], client: SocketAddr) {
    if let Err(error) = socket.send_to(reply, client).await {
        tracing::debug!(%error, %client, "DNS UDP reply not sent");
    }
}

async fn serve_tcp(listener: TcpListener, dns: Arc<DnsProxy>) {
    let connections = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "DNS TCP accept failed");
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!(%client, "too many DNS TCP connections; closing this one");
            continue;
        };
        let dns = dns.clone();
        tokio::spawn(async move {
            serve_tcp_connection(stream, &dns).await;
            drop(permit);
        });
    }
}

/// Length-prefixed queries, answered in turn, until the client closes,
/// sends garbage or stays idle too long.
async fn serve_tcp_connection(mut stream: TcpStream, dns: &DnsProxy) {
    loop {
        let Ok(Ok(query)) = tokio::time::timeout(TCP_IDLE_TIMEOUT, read_framed(&mut stream)).await
        else {
            return;
        };
        let reply = match dns.decide(&query, Transport::Tcp) {
            Decision::Reply(reply) => reply,
            Decision::Drop => return,
            Decision::Forward(forward) => match dns.forwarder.admit() {
                None => forward.failure,
                Some(_permit) => dns.forwarder.answer(forward, Transport::Tcp).await,
            },
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
