//! The listeners end to end on loopback: table answers, forwarded answers, and TCP's length-prefixed framing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use proto::nds::NameTable;
use proto::nds::name_table::NameInfo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use super::super::answer::Transport;
use super::super::fake_upstream::{FakeUpstream, UPSTREAM_IP, query};
use super::super::forward::{Forwarder, read_framed};
use super::super::{DnsListeners, DnsProxy};

/// An upper bound, so a broken test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// A DNS proxy on loopback whose table has `db.example.com`, forwarding to
/// `upstream`; the task stops on drop.
struct Running {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(upstream: SocketAddr) -> Running {
    let dns = DnsProxy::new(Vec::new(), Forwarder::new(vec![upstream]));
    let info = NameInfo {
        ips: vec!["240.0.0.1".to_string()],
        ..Default::default()
    };
    dns.update(&NameTable {
        table: BTreeMap::from([("db.example.com".to_string(), info)]),
        name_info: None,
    });
    let listeners = DnsListeners::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let addr = listeners.local_addr().expect("address");
    let task = tokio::spawn(listeners.serve(Arc::new(dns)));
    Running { addr, task }
}

async fn ask_udp(server: SocketAddr, bytes: &[u8]) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let len = tokio::time::timeout(WAIT, socket.recv(&mut buf))
        .await
        .expect("an answer in time")
        .expect("receive");
    Message::from_vec(&buf[..len]).expect("a DNS message")
}

fn first_a(message: &Message) -> Option<std::net::Ipv4Addr> {
    message
        .answers
        .iter()
        .find_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
}

#[tokio::test]
async fn udp_queries_are_answered_from_the_table_or_upstream() {
    let upstream = FakeUpstream::start().await;
    let running = start(upstream.addr).await;
    let local = ask_udp(running.addr, &query(31, "db.example.com.", RecordType::A)).await;
    assert_eq!(local.metadata.id, 31);
    assert_eq!(first_a(&local), Some("240.0.0.1".parse().expect("IP")));
    let forwarded = ask_udp(running.addr, &query(32, "httpbin.org.", RecordType::A)).await;
    assert_eq!(forwarded.metadata.id, 32);
    assert_eq!(forwarded.metadata.response_code, ResponseCode::NoError);
    assert_eq!(first_a(&forwarded), Some(UPSTREAM_IP));
    assert_eq!(
        upstream.asked(),
        vec![("httpbin.org.".to_string(), Transport::Udp)],
        "the table's host never reaches upstream"
    );
}

#[tokio::test]
async fn tcp_queries_are_length_prefixed_several_on_one_connection() {
    let upstream = FakeUpstream::start().await;
    let running = start(upstream.addr).await;
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    for (id, name) in [(41, "db.example.com."), (42, "example.org.")] {
        let bytes = query(id, name, RecordType::A);
        let len = u16::try_from(bytes.len()).expect("short");
        stream.write_all(&len.to_be_bytes()).await.expect("write");
        stream.write_all(&bytes).await.expect("write");
        let reply = tokio::time::timeout(WAIT, read_framed(&mut stream))
            .await
            .expect("an answer in time")
            .expect("a framed answer");
        let message = Message::from_vec(&reply).expect("a DNS message");
        assert_eq!(message.metadata.id, id);
        assert!(first_a(&message).is_some(), "{message:?}");
    }
    assert_eq!(
        upstream.asked(),
        vec![("example.org.".to_string(), Transport::Tcp)]
    );
}
