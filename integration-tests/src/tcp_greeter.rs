//! A TCP service that says who it is (a database stand-in): it writes its
//! name and a newline to every connection, echoes what it then reads, and
//! records each client's address. Bound on the host or inside a test's
//! [`NetNs`]; [`greeting`] is its client, connecting from a namespace like
//! an app (so the connection is captured).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::background::ServerThread;
use crate::netns::NetNs;

/// How long a client waits for a greeting.
const GREETING_WAIT: Duration = Duration::from_secs(5);

/// A running greeter; stops on drop.
pub struct TcpGreeter {
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    _server: ServerThread,
}

impl TcpGreeter {
    /// Greets as `name` on `addr`, bound inside `netns` if given.
    pub fn start(netns: Option<&NetNs>, addr: SocketAddr, name: &str) -> Result<Self> {
        let bind = || {
            let listener =
                std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        };
        let listener = match netns {
            Some(netns) => netns.run_inside(bind)?,
            None => bind()?,
        };
        let addr = listener.local_addr()?;
        let peers = Arc::new(Mutex::new(Vec::new()));
        let server_peers = Arc::clone(&peers);
        let greeting = format!("{name}\n");
        let server = ServerThread::spawn(&format!("greeter-{addr}"), move || async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => serve(listener, greeting, server_peers).await,
                Err(err) => eprintln!("greeter {addr}: {err}"),
            }
        })?;
        Ok(Self {
            addr,
            peers,
            _server: server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of every client so far, oldest first.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn serve(listener: TcpListener, greeting: String, peers: Arc<Mutex<Vec<SocketAddr>>>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            continue;
        };
        peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(peer);
        let greeting = greeting.clone();
        tokio::spawn(async move {
            if stream.write_all(greeting.as_bytes()).await.is_err() {
                return;
            }
            let (mut reader, mut writer) = stream.split();
            // The client going away ends the echo; nothing to report.
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        });
    }
}

/// The first line a TCP service at `addr` says to a client connecting from
/// inside `netns` (as root, so captured like an app); an error when the
/// connection fails or closes without a line.
pub fn greeting(netns: &NetNs, addr: SocketAddr) -> Result<String> {
    let stream = netns.run_inside(|| {
        TcpStream::connect_timeout(&addr, GREETING_WAIT)
            .with_context(|| format!("connecting to {addr}"))
    })?;
    stream.set_read_timeout(Some(GREETING_WAIT))?;
    let mut line = String::new();
    let read = BufReader::new(stream)
        .read_line(&mut line)
        .with_context(|| format!("reading a greeting from {addr}"))?;
    anyhow::ensure!(read > 0, "{addr} closed the connection without a greeting");
    Ok(line.trim_end().to_string())
}
