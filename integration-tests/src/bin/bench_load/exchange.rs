//! One HTTP/1.1 exchange of `bench-load`: connecting (plain, or TLS with
//! SNI and a full handshake each time), the request line (origin form, or
//! absolute form for an explicit proxy) and reading the response.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// How long a read may wait before the exchange counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the target, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.read(buf),
            Self::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.write(buf),
            Self::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(stream) => stream.flush(),
            Self::Tls(stream) => stream.flush(),
        }
    }
}

/// How to reach the target: its address and, for TLS, the client config
/// and the SNI name.
pub struct Connector {
    addr: SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl Connector {
    pub fn plain(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    /// TLS to `addr` with SNI `host`, trusting only the CA in `ca_file`.
    /// Session resumption is off: every connection is a full handshake.
    pub fn tls(addr: SocketAddr, host: &str, ca_file: &Path) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?
        {
            roots
                .add(cert.with_context(|| format!("parsing {}", ca_file.display()))?)
                .context("trusting the CA")?;
        }
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .context("choosing TLS versions")?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = ServerName::try_from(host.to_string()).context("HOST as a TLS server name")?;
        Ok(Self {
            addr,
            tls: Some((Arc::new(config), name)),
        })
    }

    /// A new connection, its TLS handshake done.
    pub fn connect(&self) -> Result<BufReader<Stream>> {
        let tcp = TcpStream::connect(self.addr)
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(READ_TIMEOUT))?;
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((config, name)) => {
                let connection = ClientConnection::new(config.clone(), name.clone())
                    .context("starting a TLS session")?;
                let mut stream = StreamOwned::new(connection, tcp);
                while stream.conn.is_handshaking() {
                    stream
                        .conn
                        .complete_io(&mut stream.sock)
                        .context("TLS handshake")?;
                }
                Stream::Tls(Box::new(stream))
            }
        };
        Ok(BufReader::with_capacity(64 * 1024, stream))
    }
}

/// The request's bytes: `GET` of `path` on `host`, in absolute form for an
/// explicit proxy; `Connection: close` when each request has its own
/// connection.
pub fn request(host: &str, path: &str, absolute: bool, close: bool) -> Vec<u8> {
    let target = if absolute {
        format!("http://{host}{path}")
    } else {
        path.to_string()
    };
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench-load\r\n{connection}\r\n")
        .into_bytes()
}

/// What a complete response was.
pub struct Response {
    pub success: bool,
    /// The body's length.
    pub bytes: u64,
    /// The connection may carry another request.
    pub reusable: bool,
}

/// Sends one request and reads its response, which must carry
/// `Content-Length`; `Ok(None)` when the response was cut short.
pub fn exchange(
    connection: &mut BufReader<Stream>,
    request: &[u8],
) -> io::Result<Option<Response>> {
    connection.get_mut().write_all(request)?;
    let mut line = String::new();
    if connection.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let success = line.split(' ').nth(1).is_some_and(|s| s.starts_with('2'));
    let mut length = None;
    let mut close = false;
    loop {
        line.clear();
        if connection.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
    }
    let Some(length) = length else {
        return Ok(None);
    };
    let copied = io::copy(&mut connection.by_ref().take(length), &mut io::sink())?;
    if copied != length {
        return Ok(None);
    }
    Ok(Some(Response {
        success,
        bytes: length,
        reusable: !close,
    }))
}
