//! A fake upstream resolver for the DNS proxy's tests, on loopback UDP and TCP: it answers every A query with one address (NOERROR, not authoritative) and records each name asked, with how it came.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, Metadata};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use super::answer::Transport;
use super::forward::read_framed;

/// The address every upstream answer carries.
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

/// A running fake; stops on drop.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    asked: Arc<Mutex<Vec<(String, Transport)>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeUpstream {
    pub async fn start() -> Self {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let addr = udp.local_addr().expect("address");
        let tcp = TcpListener::bind(addr)
            .await
            .expect("bind TCP on the same port");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let udp_asked = asked.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, client)) = udp.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..len], &udp_asked, Transport::Udp) {
                    let _ = udp.send_to(&reply, client).await;
                }
            }
        });
        let tcp_asked = asked.clone();
        let tcp_task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let Ok(query) = read_framed(&mut stream).await else {
                    continue;
                };
                if let Some(reply) = answer(&query, &tcp_asked, Transport::Tcp) {
                    let len = u16::try_from(reply.len()).expect("small reply");
                    let _ = stream.write_all(&len.to_be_bytes()).await;
                    let _ = stream.write_all(&reply).await;
                }
            }
        });
        Self {
            addr,
            asked,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// Every name asked so far (lowercase, with the final dot), with how.
    pub fn asked(&self) -> Vec<(String, Transport)> {
        self.asked.lock().clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn answer(
    query: &[u8],
    asked: &Mutex<Vec<(String, Transport)>>,
    transport: Transport,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?;
    asked
        .lock()
        .push((question.name().to_ascii().to_ascii_lowercase(), transport));
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.add_queries(request.queries.iter().cloned());
    if question.query_type() == RecordType::A {
        response.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::A(A(UPSTREAM_IP)),
        ));
    }
    response.to_vec().ok()
}

/// An encoded recursive query for `name` of `record_type`, with id `id`.
pub fn query(id: u16, name: &str, record_type: RecordType) -> Vec<u8> {
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("a valid name"),
        record_type,
    ));
    message.to_vec().expect("encodes")
}
