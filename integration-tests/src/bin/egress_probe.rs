//! `egress-probe`: one way out of an app's network namespace, tried as the
//! app would try it, for the capture tests (run inside the namespace as the
//! app's uid). It prints what happened on one line and exits 0 if the way
//! out worked, 1 if it did not, 2 on bad arguments.
//!
//! ```text
//! egress-probe tcp ADDR          # connect, read the server's first line
//! egress-probe udp ADDR          # send one datagram
//! egress-probe dns SERVER NAME   # ask SERVER (UDP) for NAME's A records
//! ```

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// How long each try waits for the other side.
const WAIT: Duration = Duration::from_secs(3);
/// The id of the DNS query.
const QUERY_ID: u16 = 0x4d53;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["tcp", addr] => parse(addr).and_then(tcp),
        ["udp", addr] => parse(addr).and_then(udp),
        ["dns", server, name] => parse(server).and_then(|server| dns(server, name)),
        _ => {
            eprintln!("usage: egress-probe tcp ADDR | udp ADDR | dns SERVER NAME");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(what) => {
            println!("ok: {what}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse(addr: &str) -> Result<SocketAddr> {
    addr.parse()
        .with_context(|| format!("{addr:?} is not an ip:port"))
}

/// Connects and reads the first line the server says.
fn tcp(addr: SocketAddr) -> Result<String> {
    let stream =
        TcpStream::connect_timeout(&addr, WAIT).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(WAIT))?;
    let mut line = String::new();
    let read = BufReader::new(stream)
        .read_line(&mut line)
        .with_context(|| format!("reading from {addr}"))?;
    if read == 0 {
        bail!("{addr} closed the connection without a word");
    }
    Ok(format!("greeting {}", line.trim_end()))
}

/// Sends one datagram (a QUIC-sized nothing) to `addr`.
fn udp(addr: SocketAddr) -> Result<String> {
    let socket = bind_for(addr)?;
    let sent = socket
        .send_to(&[0u8; 1200], addr)
        .with_context(|| format!("sending to {addr}"))?;
    Ok(format!("sent {sent} bytes to {addr}"))
}

/// Asks `server` for `name`'s A records over UDP; any reply counts.
fn dns(server: SocketAddr, name: &str) -> Result<String> {
    let mut query = Message::new(QUERY_ID, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(
        Name::from_ascii(name).with_context(|| format!("{name:?} is not a DNS name"))?,
        RecordType::A,
    ));
    let socket = bind_for(server)?;
    socket.set_read_timeout(Some(WAIT))?;
    socket
        .send_to(&query.to_vec()?, server)
        .with_context(|| format!("sending the query to {server}"))?;
    let mut buf = [0u8; 4096];
    let (len, from) = socket
        .recv_from(&mut buf)
        .with_context(|| format!("waiting for {server}'s answer"))?;
    let reply = Message::from_vec(&buf[..len]).context("decoding the answer")?;
    Ok(format!(
        "{} from {from} with {} answers",
        reply.metadata.response_code,
        reply.answers.len()
    ))
}

fn bind_for(addr: SocketAddr) -> Result<UdpSocket> {
    let local = match addr {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    UdpSocket::bind(local).with_context(|| format!("binding UDP {local}"))
}
