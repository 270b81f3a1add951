//! A DNS server for one test, on `127.0.0.1:<port>` (or another local
//! address) over UDP and TCP. It
//! answers A queries from a fixed name → IPv4 map, an empty answer for other
//! types of a known name (AAAA included) and NXDOMAIN for any other name, so
//! external names never reach the system resolver. Every query is recorded.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::background::ServerThread;

/// TTL of every answer, in seconds.
const TTL: u32 = 30;
/// Attempts at finding a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 20;

/// One question the server was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuery {
    /// Lowercased, without the trailing dot.
    pub name: String,
    pub record_type: RecordType,
}

struct Zone {
    records: HashMap<String, Vec<Ipv4Addr>>,
    queries: Mutex<Vec<DnsQuery>>,
}

/// A running DNS server; stops on drop.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Zone>,
    _server: ServerThread,
}

impl DnsServer {
    /// Serves `records` on loopback; a name listed more than once gets
    /// every address.
    pub fn start<'a>(records: impl IntoIterator<Item = (&'a str, Ipv4Addr)>) -> Result<Self> {
        Self::start_on(Ipv4Addr::LOCALHOST, records)
    }

    /// Serves `records` on `ip` (e.g. a [`crate::netns::NetNs::host_ip`]).
    pub fn start_on<'a>(
        ip: Ipv4Addr,
        records: impl IntoIterator<Item = (&'a str, Ipv4Addr)>,
    ) -> Result<Self> {
        let (udp, tcp) = bind_pair(ip)?;
        Self::serve(udp, tcp, records)
    }

    /// Serves `records` on exactly `addr` (e.g. port 53 of a host that
    /// stands for a resolver outside the mesh).
    pub fn start_at<'a>(
        addr: SocketAddr,
        records: impl IntoIterator<Item = (&'a str, Ipv4Addr)>,
    ) -> Result<Self> {
        let udp = StdUdpSocket::bind(addr).with_context(|| format!("binding DNS UDP on {addr}"))?;
        let tcp =
            StdTcpListener::bind(addr).with_context(|| format!("binding DNS TCP on {addr}"))?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Self::serve(udp, tcp, records)
    }

    fn serve<'a>(
        udp: StdUdpSocket,
        tcp: StdTcpListener,
        records: impl IntoIterator<Item = (&'a str, Ipv4Addr)>,
    ) -> Result<Self> {
        let mut map: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for (name, ip) in records {
            map.entry(normalize(name)).or_default().push(ip);
        }
        let zone = Arc::new(Zone {
            records: map,
            queries: Mutex::new(Vec::new()),
        });
        let addr = udp.local_addr()?;
        let server_zone = Arc::clone(&zone);
        let server = ServerThread::spawn(&format!("dns-{addr}"), move || async move {
            match (UdpSocket::from_std(udp), TcpListener::from_std(tcp)) {
                (Ok(udp), Ok(tcp)) => {
                    tokio::join!(
                        serve_udp(udp, Arc::clone(&server_zone)),
                        serve_tcp(tcp, server_zone)
                    );
                }
                (Err(err), _) | (_, Err(err)) => eprintln!("dns {addr}: {err}"),
            }
        })?;
        Ok(Self {
            addr,
            zone,
            _server: server,
        })
    }

    /// The address to point resolvers at (same port for UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every question asked so far, oldest first.
    pub fn queries(&self) -> Vec<DnsQuery> {
        self.zone
            .queries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A UDP socket and a TCP listener on the same port of `ip`.
fn bind_pair(ip: Ipv4Addr) -> Result<(StdUdpSocket, StdTcpListener)> {
    for _ in 0..BIND_ATTEMPTS {
        let udp =
            StdUdpSocket::bind((ip, 0)).with_context(|| format!("binding DNS UDP on {ip}"))?;
        let port = udp.local_addr()?.port();
        if let Ok(tcp) = StdTcpListener::bind((ip, port)) {
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            return Ok((udp, tcp));
        }
    }
    bail!("no port of {ip} free for both UDP and TCP after {BIND_ATTEMPTS} attempts")
}

async fn serve_udp(socket: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = zone.answer(&buf[..len]) {
            // A client that went away does not need its answer.
            let _ = socket.send_to(&reply, client).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Zone>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_tcp_connection(stream, Arc::clone(&zone)));
    }
}

/// Length-prefixed messages (RFC 1035 4.2.2) until the client closes.
async fn serve_tcp_connection(mut stream: TcpStream, zone: Arc<Zone>) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut request = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let Some(reply) = zone.answer(&request) else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(reply_len).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

impl Zone {
    /// The encoded reply to an encoded query; `None` for garbage.
    fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_vec(request).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata = Metadata::response_from_request(&request.metadata);
        response.metadata.authoritative = true;
        response.metadata.recursion_available = true;
        response.add_queries(request.queries.iter().cloned());
        if request.metadata.op_code != OpCode::Query || request.queries.len() != 1 {
            response.metadata.response_code = ResponseCode::NotImp;
            return response.to_vec().ok();
        }
        let query = &request.queries[0];
        let name = normalize(&query.name().to_ascii());
        self.queries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(DnsQuery {
                name: name.clone(),
                record_type: query.query_type(),
            });
        match self.records.get(&name) {
            None => response.metadata.response_code = ResponseCode::NXDomain,
            Some(ips) if query.query_type() == RecordType::A => {
                response.add_answers(
                    ips.iter()
                        .map(|ip| Record::from_rdata(query.name().clone(), TTL, RData::A(A(*ip)))),
                );
            }
            Some(_) => {}
        }
        response.to_vec().ok()
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
