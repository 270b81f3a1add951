//! SNI parsing as Envoy's TLS inspector reads a ClientHello (BoringSSL's
//! rules for the server_name extension), by example and by property.

use proptest::prelude::*;

use super::*;

/// The bytes of a server_name extension holding `entries`
/// (`(name type, name)`).
fn sni_extension(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (name_type, name) in entries {
        list.push(*name_type);
        list.extend((name.len() as u16).to_be_bytes());
        list.extend(*name);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend(list);
    let mut extension = SERVER_NAME_EXTENSION.to_be_bytes().to_vec();
    extension.extend((data.len() as u16).to_be_bytes());
    extension.extend(data);
    extension
}

/// A TLS ClientHello record with `session_id`, `ciphers` and the
/// extensions `extensions` (already encoded, in order).
fn hello_with(session_id: &[u8], ciphers: &[u8], extensions: &[Vec<u8>]) -> Vec<u8> {
    let extensions = extensions.concat();
    let mut body = vec![3, 3];
    body.extend([7u8; 32]);
    body.push(session_id.len() as u8);
    body.extend(session_id);
    body.extend((ciphers.len() as u16).to_be_bytes());
    body.extend(ciphers);
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

/// A minimal TLS 1.2 ClientHello carrying `sni`.
pub(crate) fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let extensions: Vec<Vec<u8>> = sni
        .map(|name| sni_extension(&[(HOST_NAME, name.as_bytes())]))
        .into_iter()
        .collect();
    hello_with(&[], &[0x13, 0x01], &extensions)
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

/// A record longer than TLS allows is not TLS: BoringSSL refuses it, and
/// Envoy's inspector counts `tls_not_found`. Decided from the header,
/// without waiting for 64 KiB that will never make a ClientHello.
#[test]
fn a_record_longer_than_tls_allows_is_not_tls() {
    let mut header = vec![HANDSHAKE, 3, 1];
    header.extend(((MAX_RECORD + 1) as u16).to_be_bytes());
    assert_eq!(parse(&header), ClientHello::NotTls);
    header[3..5].copy_from_slice(&(MAX_RECORD as u16).to_be_bytes());
    assert_eq!(parse(&header), ClientHello::Incomplete);
}

/// BoringSSL takes one `host_name` entry of 1 to 255 bytes without NUL;
/// any other server_name extension fails the handshake after the hello
/// was read, which Envoy's inspector counts as TLS without a name.
#[test]
fn a_server_name_boringssl_refuses_gives_tls_without_a_name() {
    let long = [b'a'; 256];
    let refused: [&[(u8, &[u8])]; 6] = [
        &[(HOST_NAME, b"")],
        &[(HOST_NAME, b"a\0.example")],
        &[(HOST_NAME, &long)],
        &[(1, b"a.example")],
        &[(HOST_NAME, b"a.example"), (HOST_NAME, b"b.example")],
        &[],
    ];
    for entries in refused {
        let hello = hello_with(&[], &[0x13, 0x01], &[sni_extension(entries)]);
        assert_eq!(parse(&hello), ClientHello::Tls(None), "{entries:?}");
    }
    let longest = [b'a'; 255];
    let hello = hello_with(
        &[],
        &[0x13, 0x01],
        &[sni_extension(&[(HOST_NAME, &longest)])],
    );
    assert_eq!(
        parse(&hello),
        ClientHello::Tls(Some("a".repeat(255))),
        "255 bytes is the longest name"
    );
}

/// Host names as clients send them: labels of letters, digits and
/// hyphens, any case.
fn host_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]{1,20}){0,4}"
}

/// Extensions other than server_name (type, data).
fn other_extensions() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec((1u16.., prop::collection::vec(any::<u8>(), 0..40)), 0..6).prop_map(
        |extensions| {
            extensions
                .into_iter()
                .map(|(kind, data)| {
                    let mut extension = kind.to_be_bytes().to_vec();
                    extension.extend((data.len() as u16).to_be_bytes());
                    extension.extend(data);
                    extension
                })
                .collect()
        },
    )
}

proptest! {
    /// Wherever the server_name extension sits among others, and whatever
    /// the session id and cipher list, the name is read, lowercased.
    #[test]
    fn the_server_name_is_read_among_any_other_extensions(
        name in host_name(),
        session_id in prop::collection::vec(any::<u8>(), 0..=32),
        ciphers in prop::collection::vec(any::<u8>(), 2..60),
        mut extensions in other_extensions(),
        at in any::<prop::sample::Index>(),
    ) {
        let position = at.index(extensions.len() + 1);
        extensions.insert(position, sni_extension(&[(HOST_NAME, name.as_bytes())]));
        let hello = hello_with(&session_id, &ciphers, &extensions);
        prop_assert_eq!(parse(&hello), ClientHello::Tls(Some(name.to_ascii_lowercase())));
        // Every proper prefix is still waiting for the rest.
        for cut in 0..hello.len() {
            prop_assert_eq!(parse(&hello[..cut]), ClientHello::Incomplete);
        }
    }

    /// What parse decides from some bytes never changes as more arrive:
    /// the agent may decide on the bytes it has seen so far.
    #[test]
    fn a_decision_never_changes_as_more_bytes_arrive(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        tls_header in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if tls_header && bytes.len() >= 3 {
            bytes[0] = HANDSHAKE;
            bytes[1] = 3;
        }
        let whole = parse(&bytes);
        for cut in 0..bytes.len() {
            let prefix = parse(&bytes[..cut]);
            if prefix != ClientHello::Incomplete {
                prop_assert_eq!(&prefix, &whole, "decided at {} bytes", cut);
            }
        }
    }

    /// [`MAX_HELLO_LEN`] bytes are always enough to decide, so a reader
    /// never needs a larger buffer.
    #[test]
    fn max_hello_len_bytes_always_decide(
        header in prop::collection::vec(any::<u8>(), 5),
        fill in any::<u8>(),
    ) {
        let mut bytes = header;
        bytes[0] = HANDSHAKE;
        bytes[1] = 3;
        bytes.resize(MAX_HELLO_LEN, fill);
        prop_assert_ne!(parse(&bytes), ClientHello::Incomplete);
    }
}
