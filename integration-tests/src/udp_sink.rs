//! A UDP listener that only records: every datagram's sender and size, so
//! a test can tell whether anything got through (QUIC on 443, say).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use tokio::net::UdpSocket;

use crate::background::ServerThread;

/// One datagram as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    pub peer: SocketAddr,
    pub len: usize,
}

/// A running sink; stops (and closes its port) on drop.
pub struct UdpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Datagram>>>,
    _server: ServerThread,
}

impl UdpSink {
    /// Listens on `addr`.
    pub fn start(addr: SocketAddr) -> Result<Self> {
        let socket =
            std::net::UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let server_received = Arc::clone(&received);
        let server = ServerThread::spawn(&format!("udp-sink-{addr}"), move || async move {
            let socket = match UdpSocket::from_std(socket) {
                Ok(socket) => socket,
                Err(err) => {
                    eprintln!("udp sink {addr}: {err}");
                    return;
                }
            };
            let mut buf = vec![0u8; 65536];
            loop {
                if let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                    server_received
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Datagram { peer, len });
                }
            }
        })?;
        Ok(Self {
            addr,
            received,
            _server: server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every datagram received so far, oldest first.
    pub fn received(&self) -> Vec<Datagram> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
