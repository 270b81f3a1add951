//! Reads the server name (SNI) from a TLS ClientHello without consuming or
//! terminating anything: the bytes are peeked, then passed on untouched.

/// What the first bytes of a connection say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    /// Not enough bytes yet to decide.
    Incomplete,
    /// Not a TLS handshake.
    NotTls,
    /// A ClientHello, with the SNI host name if it carries one.
    Tls(Option<String>),
}

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SERVER_NAME_EXTENSION: u16 = 0;
const HOST_NAME: u8 = 0;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// The most a TLS record carries (2^14 bytes, RFC 8446 5.1): a longer
/// first record is not TLS.
const MAX_RECORD: usize = 1 << 14;
/// The most bytes [`parse`] needs to decide: one record and its header.
pub const MAX_HELLO_LEN: usize = 5 + MAX_RECORD;
/// The longest host name the server_name extension carries (RFC 6066).
const MAX_HOST_NAME: usize = 255;

/// Parses the start of a connection. Only the first TLS record is read;
/// a ClientHello split over several records reports no SNI. What it
/// decides from some bytes never changes as more arrive, and it decides
/// by [`MAX_HELLO_LEN`] bytes at the latest.
pub fn parse(buf: &[u8]) -> ClientHello {
    if buf.is_empty() {
        return ClientHello::Incomplete;
    }
    if buf[0] != HANDSHAKE {
        return ClientHello::NotTls;
    }
    if buf.len() < 5 {
        return ClientHello::Incomplete;
    }
    if buf[1] != 3 {
        return ClientHello::NotTls;
    }
    let record_len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if record_len > MAX_RECORD {
        return ClientHello::NotTls;
    }
    let Some(record) = buf.get(5..5 + record_len) else {
        return ClientHello::Incomplete;
    };
    match server_name(record) {
        Some(name) => ClientHello::Tls(name),
        None => ClientHello::NotTls,
    }
}

/// `None`: malformed; `Some(None)`: a ClientHello without SNI.
fn server_name(record: &[u8]) -> Option<Option<String>> {
    let mut r = Reader { buf: record };
    if r.u8()? != CLIENT_HELLO {
        return None;
    }
    let body_len = r.u24()?;
    let Some(body) = r.take(body_len) else {
        // The hello continues in a later record: it is TLS, SNI unknown.
        return Some(None);
    };
    let mut r = Reader { buf: body };
    r.take(2)?; // client version
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    if r.buf.is_empty() {
        return Some(None);
    }
    let mut extensions = Reader { buf: r.vec16()? };
    while !extensions.buf.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if kind == SERVER_NAME_EXTENSION {
            return Some(host_name(data));
        }
    }
    Some(None)
}

/// The name of a server_name extension, read as BoringSSL reads it (so as
/// Envoy's TLS inspector sees it): one `host_name` entry, 1 to 255 bytes
/// without NUL. Anything else is a ClientHello without a usable name.
fn host_name(data: &[u8]) -> Option<String> {
    let mut extension = Reader { buf: data };
    let mut list = Reader {
        buf: extension.vec16()?,
    };
    let name_type = list.u8()?;
    let name = list.vec16()?;
    let well_formed = extension.buf.is_empty()
        && list.buf.is_empty()
        && name_type == HOST_NAME
        && (1..=MAX_HOST_NAME).contains(&name.len())
        && !name.contains(&0);
    if !well_formed {
        return None;
    }
    std::str::from_utf8(name).ok().map(str::to_ascii_lowercase)
}

#[cfg(test)]
pub(crate) mod tests;
