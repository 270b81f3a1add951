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

/// Parses the start of a connection. Only the first TLS record is read;
/// a ClientHello split over several records reports no SNI.
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
        if kind != SERVER_NAME_EXTENSION {
            continue;
        }
        let mut list = Reader { buf: data };
        let mut names = Reader { buf: list.vec16()? };
        while !names.buf.is_empty() {
            let name_type = names.u8()?;
            let name = names.vec16()?;
            if name_type == HOST_NAME {
                let name = std::str::from_utf8(name).ok()?;
                return Some(Some(name.to_ascii_lowercase()));
            }
        }
    }
    Some(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal TLS 1.2 ClientHello carrying `sni`.
    pub(crate) fn client_hello(sni: Option<&str>) -> Vec<u8> {
        let mut extensions = Vec::new();
        if let Some(sni) = sni {
            let name = sni.as_bytes();
            let mut entry = vec![HOST_NAME];
            entry.extend((name.len() as u16).to_be_bytes());
            entry.extend(name);
            let mut list = (entry.len() as u16).to_be_bytes().to_vec();
            list.extend(entry);
            extensions.extend(SERVER_NAME_EXTENSION.to_be_bytes());
            extensions.extend((list.len() as u16).to_be_bytes());
            extensions.extend(list);
        }
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 2, 0x13, 0x01]);
        body.extend([1, 0]);
        body.extend((extensions.len() as u16).to_be_bytes());
        body.extend(extensions);
        let mut handshake = vec![CLIENT_HELLO];
        handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
        handshake.extend(body);
        let mut record = vec![HANDSHAKE, 3, 1];
        record.extend((handshake.len() as u16).to_be_bytes());
        record.extend(handshake);
        record
    }

    #[test]
    fn reads_sni() {
        assert_eq!(
            parse(&client_hello(Some("Edition.CNN.com"))),
            ClientHello::Tls(Some("edition.cnn.com".into()))
        );
        assert_eq!(parse(&client_hello(None)), ClientHello::Tls(None));
    }

    #[test]
    fn partial_input_asks_for_more() {
        let hello = client_hello(Some("www.baidu.com"));
        for cut in [0, 1, 4, 10, hello.len() - 1] {
            assert_eq!(
                parse(&hello[..cut]),
                ClientHello::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn plain_http_is_not_tls() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), ClientHello::NotTls);
    }

    #[test]
    fn garbage_never_panics() {
        let hello = client_hello(Some("a.example"));
        for i in 5..hello.len() {
            let mut mutated = hello.clone();
            mutated[i] = 0xff;
            let _ = parse(&mutated);
            mutated[i] = 0;
            let _ = parse(&mutated);
        }
    }
}
