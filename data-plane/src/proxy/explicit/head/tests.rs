//! Head parsing: Envoy's methods, the HTTP/2 preface, CONNECT targets
//! (one parsed `host:port`), however the head is split; and properties
//! that hold for any input.

use proptest::prelude::*;

use super::*;

fn connect(host: &str, port: u16, len: usize) -> Head {
    Head::Connect {
        host: host.into(),
        port,
        len,
    }
}

#[test]
fn every_envoy_method_is_http_and_a_short_start_waits() {
    for method in METHODS.iter().filter(|m| **m != "CONNECT") {
        let line = format!("{method} http://a.test/ HTTP/1.1\r\n");
        assert_eq!(classify(line.as_bytes()), Head::Http, "{method}");
        for cut in 0..=method.len() {
            assert_eq!(
                classify(&line.as_bytes()[..cut]),
                Head::Partial,
                "{method} {cut}"
            );
        }
    }
    assert_eq!(classify(b"PROPFIND /dav HTTP/1.1\r\n"), Head::Http);
}

#[test]
fn methods_are_case_sensitive_tokens_as_envoys_parser_reads_them() {
    // Envoy's HTTP/1 parser: HPE_INVALID_METHOD, a 400.
    for line in [
        &b"get / HTTP/1.1\r\n"[..],
        b"connect a.test:443 HTTP/1.1\r\n",
        b"FOO / HTTP/1.1\r\n",
        b"GETX / HTTP/1.1\r\n",
        b"G\x00T / HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00",
        b" GET / HTTP/1.1\r\n",
        b"GET\t/ HTTP/1.1\r\n",
        b"AVERYLONGMETHODNAME",
    ] {
        assert_eq!(
            classify(line),
            Head::Refused(Refusal::BadRequest),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn the_http2_preface_is_http_once_whole() {
    assert_eq!(classify(PREFACE), Head::Http);
    let mut more = PREFACE.to_vec();
    more.extend_from_slice(b"\x00\x00\x12\x04");
    assert_eq!(classify(&more), Head::Http);
    for cut in 1..PREFACE.len() {
        assert_eq!(classify(&PREFACE[..cut]), Head::Partial, "{cut}");
    }
    assert_eq!(
        classify(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
        Head::Refused(Refusal::BadRequest)
    );
}

#[test]
fn a_connect_head_is_complete_at_its_blank_line() {
    let head = b"CONNECT Edition.CNN.com:443 HTTP/1.1\r\nHost: edition.cnn.com:443\r\n\r\n";
    assert_eq!(classify(head), connect("edition.cnn.com", 443, head.len()));
    let mut tunnel = head.to_vec();
    tunnel.extend_from_slice(b"\x16\x03\x01");
    assert_eq!(
        classify(&tunnel),
        connect("edition.cnn.com", 443, head.len())
    );
    for cut in 0..head.len() {
        assert_eq!(classify(&head[..cut]), Head::Partial, "{cut}");
    }
    assert_eq!(
        classify(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n"),
        connect("::1", 8443, 31)
    );
}

#[test]
fn a_connect_target_must_be_host_and_numeric_port() {
    for target in [
        "blocked.test:.wild.test",
        "10.10.0.2:.wild.test",
        "a.test",
        "a.test:99999",
        "user@a.test:443",
        "a.test:443/x",
        "*.wild.test:443",
    ] {
        let head = format!("CONNECT {target} HTTP/1.1\r\n\r\n");
        assert_eq!(
            classify(head.as_bytes()),
            Head::Refused(Refusal::InvalidAuthority),
            "{target}"
        );
    }
    assert_eq!(
        classify(b"CONNECT a.test:443 HTTP/1.1\r\nno colon\r\n\r\n"),
        Head::Refused(Refusal::BadRequest)
    );
}

#[test]
fn a_connect_head_past_envoys_limit_is_431() {
    let mut head = b"CONNECT a.test:443 HTTP/1.1\r\nx: ".to_vec();
    head.resize(MAX_HEAD, b'a');
    assert_eq!(classify(&head), Head::Refused(Refusal::TooLarge));
    assert_eq!(
        Refusal::TooLarge.response(),
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn what_is_taken_stops_at_the_blank_line_even_across_segments() {
    assert_eq!(wanted(b"", b"CONNECT a:1 HTTP/1.1\r\n\r\nTLS"), 24);
    assert_eq!(wanted(b"CONNECT a:1 HTTP/1.1\r\n\r", b"\nTLS"), 1);
    assert_eq!(wanted(b"CONNECT a:1 HTTP/1.1\r", b"\n\r\nTLS"), 3);
    assert_eq!(wanted(b"CON", b"NECT a:1"), 8);
    assert_eq!(wanted(&vec![b'a'; MAX_HEAD + 1], b"more"), 1);
}

/// A CONNECT head to `target`, split at `cut`.
fn connect_head(target: &str) -> Vec<u8> {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input panics, and the verdict only ever moves from Partial to a
    /// final one as bytes arrive: a prefix of a decided head is Partial or
    /// the same decision (CONNECT's length aside).
    #[test]
    fn any_bytes_classify_without_panic_and_prefixes_agree(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let whole = classify(&bytes);
        for cut in 0..bytes.len() {
            let part = classify(&bytes[..cut]);
            let agrees = part == Head::Partial
                || part == whole
                || matches!((&part, &whole), (Head::Connect { .. }, Head::Connect { .. }));
            prop_assert!(agrees, "{:?} then {:?}", part, whole);
        }
    }

    /// Whatever a CONNECT target is, a head that is taken names exactly the
    /// host and port the target parses to, so routing and connecting agree.
    #[test]
    fn a_taken_connect_names_its_parsed_target(target in "[ -~]{0,40}") {
        let head = connect_head(&target);
        if let Head::Connect { host, port, len } = classify(&head) {
            let parsed = authority::parse(&target).unwrap();
            prop_assert_eq!(host, parsed.host.to_ascii_lowercase());
            prop_assert_eq!(Some(port), parsed.port);
            prop_assert_eq!(len, head.len());
            prop_assert!(!target.contains('@'));
        }
    }

    /// Well-formed `name:port` targets are always taken, split anywhere.
    #[test]
    fn a_valid_connect_is_taken_however_it_is_split(
        name in "[a-z0-9][a-z0-9.-]{0,30}",
        port in any::<u16>(),
        cut in 0usize..200,
    ) {
        let target = format!("{name}:{port}");
        let head = connect_head(&target);
        let cut = cut.min(head.len() - 1);
        prop_assert_eq!(classify(&head[..cut]), Head::Partial);
        let taken = wanted(&head[..cut], &head[cut..]);
        prop_assert_eq!(cut + taken, head.len());
        prop_assert_eq!(classify(&head), connect(&name, port, head.len()));
    }

    /// An authority the strict parse takes is one `http::uri::Authority`
    /// reads to the same host and port.
    #[test]
    fn a_parsed_authority_agrees_with_the_http_crate(raw in "[ -~]{0,40}") {
        if let Ok(parsed) = authority::parse(&raw) {
            let uri: http::uri::Authority = raw.parse().unwrap();
            prop_assert_eq!(uri.host().trim_start_matches('[').trim_end_matches(']'), parsed.host);
            prop_assert_eq!(uri.port_u16(), parsed.port);
        }
    }
}
