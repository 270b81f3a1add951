//! Forwarding to the upstream resolvers: each in turn until one answers, over UDP for a UDP query (with a timeout, the reply checked against the query's id) and TCP for a TCP one; the answer is relayed as it came. Forwarded queries in flight are capped.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::answer::{Forward, Transport};

/// How long one upstream has to answer (connect, send and receive).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// Forwarded queries in flight at once; beyond, a query gets SERVFAIL.
pub const MAX_IN_FLIGHT: usize = 1024;
/// The largest DNS message over UDP (EDNS allows up to 64 KiB).
const MAX_UDP_MESSAGE: usize = 65_535;

/// Why one upstream gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{upstream}: no answer within {UPSTREAM_TIMEOUT:?}")]
    Timeout { upstream: SocketAddr },
    #[error("{upstream}: {source}")]
    Io {
        upstream: SocketAddr,
        source: io::Error,
    },
    #[error("{upstream}: the query is longer than a DNS message over TCP can be")]
    TooLong { upstream: SocketAddr },
}

/// The upstream resolvers and the cap on queries sent to them.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        Self::with_limits(upstreams, MAX_IN_FLIGHT, UPSTREAM_TIMEOUT)
    }

    pub(crate) fn with_limits(
        upstreams: Vec<SocketAddr>,
        max_in_flight: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            upstreams,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            timeout,
        }
    }

    /// A place among the queries in flight, or `None` when they are at the
    /// cap.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// The first upstream answer to `forward`, or its SERVFAIL when none
    /// answers.
    pub async fn answer(&self, forward: Forward, transport: Transport) -> Vec<u8> {
        for &upstream in &self.upstreams {
            let exchanged = match transport {
                Transport::Udp => self.exchange_udp(upstream, &forward.query).await,
                Transport::Tcp => self.exchange_tcp(upstream, &forward.query).await,
            };
            match exchanged {
                Ok(answer) => return answer,
                Err(error) => tracing::info!(%error, "upstream DNS failure"),
            }
        }
        forward.failure
    }

    async fn exchange_udp(
        &self,
        upstream: SocketAddr,
        query: &[u8],
    ) -> Result<Vec<u8>, UpstreamError> {
        let io = |source| UpstreamError::Io { upstream, source };
        let local: SocketAddr = if upstream.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(io)?;
        socket.connect(upstream).await.map_err(io)?;
        let exchange = async {
            socket.send(query).await?;
            let mut buf = vec![0u8; MAX_UDP_MESSAGE];
            loop {
                let len = socket.recv(&mut buf).await?;
                // Anything but the answer to this query (its id) is ignored.
                if len >= 2 && buf[..2] == query[..2] {
                    buf.truncate(len);
                    return Ok(buf);
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout { upstream })?
            .map_err(io)
    }

    async fn exchange_tcp(
        &self,
        upstream: SocketAddr,
        query: &[u8],
    ) -> Result<Vec<u8>, UpstreamError> {
        let len = u16::try_from(query.len()).map_err(|_| UpstreamError::TooLong { upstream })?;
        let exchange = async {
            let mut stream = TcpStream::connect(upstream).await?;
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(query);
            stream.write_all(&framed).await?;
            read_framed(&mut stream).await
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout { upstream })?
            .map_err(|source| UpstreamError::Io { upstream, source })
    }
}

/// One length-prefixed DNS message (RFC 1035 4.2.2).
pub async fn read_framed<S: AsyncReadExt + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut message = vec![0u8; usize::from(len)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

#[cfg(test)]
mod tests;
