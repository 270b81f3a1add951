//! The first request head on an explicit-proxy connection, read until it
//! says what the connection is (however it was split into segments and
//! however late it starts, within the request-head timeout): the HTTP/2
//! preface, an HTTP/1 request for the connection manager, or a complete
//! `CONNECT host:port` head. Methods are Envoy's (its HTTP/1 parser's
//! list, case-sensitive); anything else is Envoy's 400.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::proxy::http::authority;

/// Envoy's default `max_request_headers_kb` (60 KiB): a longer CONNECT
/// head is answered 431.
pub const MAX_HEAD: usize = 60 * 1024;

/// What the client has this long to send the head of its first request.
pub const REQUEST_HEADERS_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP/2 connection preface (h2c with prior knowledge).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The methods Envoy's HTTP/1 parser accepts (http-parser's list).
const METHODS: [&str; 34] = [
    "ACL",
    "BIND",
    "CHECKOUT",
    "CONNECT",
    "COPY",
    "DELETE",
    "GET",
    "HEAD",
    "LINK",
    "LOCK",
    "MERGE",
    "MKACTIVITY",
    "MKCALENDAR",
    "MKCOL",
    "MOVE",
    "MSEARCH",
    "NOTIFY",
    "OPTIONS",
    "PATCH",
    "POST",
    "PROPFIND",
    "PROPPATCH",
    "PURGE",
    "PUT",
    "REBIND",
    "REPORT",
    "SEARCH",
    "SOURCE",
    "SUBSCRIBE",
    "TRACE",
    "UNBIND",
    "UNLINK",
    "UNLOCK",
    "UNSUBSCRIBE",
];

/// The longest method on the list.
const LONGEST_METHOD: usize = 11;

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// Not enough to tell yet.
    Partial,
    /// An HTTP/1 request other than CONNECT, or the HTTP/2 preface: the
    /// connection manager serves the connection.
    Http,
    /// A complete CONNECT head, `len` bytes long.
    Connect { host: String, port: u16, len: usize },
    /// Refused before any request is routed.
    Refused(Refusal),
}

/// Envoy's answers to a head it cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not HTTP, an unknown method, or a malformed CONNECT (its codec
    /// error: `400`, `content-length: 0`, `connection: close`).
    BadRequest,
    /// A CONNECT target that is not `host:port` (`http.invalid_authority`).
    InvalidAuthority,
    /// A CONNECT head longer than [`MAX_HEAD`].
    TooLarge,
}

impl Refusal {
    /// The whole answer, which ends the connection.
    pub fn response(self) -> &'static [u8] {
        match self {
            Self::BadRequest | Self::InvalidAuthority => {
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            }
            Self::TooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            }
        }
    }
}

/// What `buf`, the first bytes of a connection, says.
pub fn classify(buf: &[u8]) -> Head {
    let common = buf.len().min(PREFACE.len());
    if buf[..common] == PREFACE[..common] {
        return if buf.len() >= PREFACE.len() {
            Head::Http
        } else {
            Head::Partial
        };
    }
    let token_end = buf.iter().position(|&b| !is_tchar(b)).unwrap_or(buf.len());
    if token_end > LONGEST_METHOD {
        return Head::Refused(Refusal::BadRequest);
    }
    if token_end == buf.len() {
        return Head::Partial;
    }
    if buf[token_end] != b' ' {
        return Head::Refused(Refusal::BadRequest);
    }
    let method = &buf[..token_end];
    if !METHODS.iter().any(|m| m.as_bytes() == method) {
        return Head::Refused(Refusal::BadRequest);
    }
    if method != b"CONNECT" {
        return Head::Http;
    }
    connect(buf)
}

/// A CONNECT head: complete with a `host:port` target, or not yet.
fn connect(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Head::Refused(Refusal::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(httparse::Error::TooManyHeaders) => return Head::Refused(Refusal::TooLarge),
        Err(_) => return Head::Refused(Refusal::BadRequest),
    };
    if len > MAX_HEAD {
        return Head::Refused(Refusal::TooLarge);
    }
    let target = request.path.unwrap_or_default();
    match authority::parse(target) {
        Ok(parsed) => match parsed.port {
            Some(port) => Head::Connect {
                host: parsed.host.to_ascii_lowercase(),
                port,
                len,
            },
            None => Head::Refused(Refusal::InvalidAuthority),
        },
        Err(_) => Head::Refused(Refusal::InvalidAuthority),
    }
}

/// A token character (RFC 9110).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Why no head was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no request head within {0:?}")]
    Timeout(Duration),
    #[error("the client closed the connection before its request head")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads from `stream` until its first bytes say what it is, giving up
/// at `timeout`; returns the bytes read and what they say. No byte past a
/// CONNECT head is read, so the tunnel starts where the head ends: each
/// look at what has arrived takes only what belongs to the head, and
/// takes all of it while the head is incomplete, so the next look waits
/// for new bytes.
pub async fn read(stream: &TcpStream, timeout: Duration) -> Result<(Vec<u8>, Head), ReadError> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::new();
    let mut window = vec![0; 4096];
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut window))
            .await
            .map_err(|_| ReadError::Timeout(timeout))??;
        if peeked == 0 {
            return Err(ReadError::Closed);
        }
        let wanted = wanted(&head, &window[..peeked]);
        let start = head.len();
        head.resize(start + wanted, 0);
        read_exactly(stream, &mut head[start..]).await?;
        let said = classify(&head);
        if said != Head::Partial {
            return Ok((head, said));
        }
    }
}

/// How many of the `peeked` bytes belong to the head after `head`: up to
/// and including the blank line that ends it, else all of them (no more
/// than [`MAX_HEAD`] in all, which is then refused).
fn wanted(head: &[u8], peeked: &[u8]) -> usize {
    let room = (MAX_HEAD + 1).saturating_sub(head.len()).max(1);
    let carried = head.len().min(3);
    let mut joined = head[head.len() - carried..].to_vec();
    joined.extend_from_slice(peeked);
    let end = joined
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4 - carried);
    end.unwrap_or(peeked.len()).min(peeked.len()).min(room)
}

/// Reads exactly `buf.len()` bytes that a peek has shown are there.
async fn read_exactly(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        stream.readable().await?;
        match stream.try_read(&mut buf[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
