//! A fake access log service for tests: `AccessLogService` over TLS on
//! `127.0.0.1`, with a certificate for the name the test asks for from a
//! root made here. It records every stream (its `authorization` header and
//! messages) or refuses streams with the status the test sets.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use proto::pb::envoy::service::accesslog::v3::access_log_service_server::{
    AccessLogService, AccessLogServiceServer,
};
use proto::pb::envoy::service::accesslog::v3::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use super::fake_ca::TestCa;

/// One stream as the fake received it.
#[derive(Debug, Clone, Default)]
pub struct RecordedStream {
    pub authorization: Option<String>,
    pub messages: Vec<StreamAccessLogsMessage>,
}

#[derive(Clone, Default)]
struct Service {
    streams: Arc<Mutex<Vec<RecordedStream>>>,
    refusal: Arc<Mutex<Option<Status>>>,
    changed: Arc<Notify>,
}

/// A running fake (on the runtime it was started on).
pub struct FakeAls {
    address: SocketAddr,
    root_pem: String,
    service: Service,
}

impl FakeAls {
    /// Serves TLS on `127.0.0.1:0` with a certificate for `server_name`.
    pub async fn start(server_name: &str) -> std::io::Result<Self> {
        let ca = TestCa::default();
        let (cert, key) = ca.server_identity(server_name);
        let service = Service::default();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let server = Server::builder()
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .map_err(std::io::Error::other)?
            .add_service(AccessLogServiceServer::new(service.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        Ok(Self {
            address,
            root_pem: ca.root_pem().to_string(),
            service,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Ends the next streams with `status` (`None`: records them again).
    pub fn refuse(&self, status: Option<Status>) {
        *self.service.refusal.lock() = status;
    }

    /// Every stream so far, refused ones included.
    pub fn streams(&self) -> Vec<RecordedStream> {
        self.service.streams.lock().clone()
    }

    /// Waits until the recorded streams satisfy `done`; panics after 10 s.
    pub async fn wait_for(&self, done: impl Fn(&[RecordedStream]) -> bool) -> Vec<RecordedStream> {
        let wait = async {
            loop {
                let changed = self.service.changed.notified();
                let streams = self.streams();
                if done(&streams) {
                    return streams;
                }
                changed.await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(streams) => streams,
            Err(_) => panic!(
                "the fake ALS never saw what the test waits for: {:#?}",
                self.streams()
            ),
        }
    }
}

impl Service {
    fn update(&self, change: impl FnOnce(&mut Vec<RecordedStream>)) {
        change(&mut self.streams.lock());
        self.changed.notify_waiters();
    }
}

#[tonic::async_trait]
impl AccessLogService for Service {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut index = 0;
        self.update(|streams| {
            index = streams.len();
            streams.push(RecordedStream {
                authorization,
                messages: Vec::new(),
            });
        });
        if let Some(status) = self.refusal.lock().clone() {
            return Err(status);
        }
        let mut messages = request.into_inner();
        while let Some(message) = messages.message().await? {
            self.update(|streams| streams[index].messages.push(message));
        }
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}
