//! Request framing as the connection manager reads it: a head ends at its
//! empty line, a body by its `Content-Length` or chunks, and what follows
//! is the next request's head, in whatever pieces the bytes arrive.

use super::*;

/// Whether each prefix of `bytes`, fed one byte at a time and all at once,
/// ends inside a head: the same either way.
fn in_head_after(bytes: &[u8]) -> bool {
    let mut whole = Framing::default();
    whole.received(bytes);
    let mut bytewise = Framing::default();
    for byte in bytes {
        bytewise.received(std::slice::from_ref(byte));
    }
    assert_eq!(
        whole.in_head(),
        bytewise.in_head(),
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
    whole.in_head()
}

#[test]
fn a_head_begins_at_its_first_byte_and_ends_at_its_empty_line() {
    assert!(!in_head_after(b""));
    assert!(in_head_after(b"G"));
    assert!(in_head_after(b"GET / HTTP/1.1\r\nHost: a\r\n"));
    assert!(!in_head_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    // Bare line feeds, as the connection manager accepts them.
    assert!(!in_head_after(b"GET / HTTP/1.1\nHost: a\n\n"));
    // Empty lines before a request are skipped, not a head.
    assert!(!in_head_after(b"\r\n\r\n"));
}

#[test]
fn a_second_head_after_a_complete_request_is_a_head() {
    assert!(in_head_after(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n"
    ));
    assert!(!in_head_after(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
    ));
}

#[test]
fn a_content_length_body_is_not_a_head_and_what_follows_it_is() {
    let post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    assert!(!in_head_after(post));
    assert!(!in_head_after(&[&post[..], b"GET / HTT"].concat()));
    assert!(!in_head_after(&[&post[..], b"0123456789"].concat()));
    assert!(in_head_after(&[&post[..], b"0123456789G"].concat()));
    // Names are case-insensitive; spaces around the value are not part of it.
    let post = b"POST / HTTP/1.1\r\ncontent-LENGTH:  3 \r\n\r\nabcGET";
    assert!(in_head_after(post));
}

#[test]
fn a_chunked_body_ends_after_its_last_chunk_and_trailers() {
    let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
    for cut in 0..=body.len() {
        let sent = [&head[..], &body[..cut]].concat();
        assert!(!in_head_after(&sent), "{cut}");
    }
    // Chunk data that looks like a head end is data.
    let tricky = b"4\r\n\r\n\r\n\r\n0\r\n\r\n";
    assert!(!in_head_after(&[&head[..], &tricky[..]].concat()));
    assert!(in_head_after(&[&head[..], &tricky[..], b"G"].concat()));
    assert!(in_head_after(&[&head[..], &body[..], b"GET /"].concat()));
    // A coding other than chunked last: no chunked body.
    assert!(!in_head_after(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
    ));
    assert!(in_head_after(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5"
    ));
}

#[test]
fn a_request_without_a_framing_header_has_no_body() {
    assert!(in_head_after(
        b"GET / HTTP/1.1\r\nX-Content-Length: 5\r\nContent-Lengthy: 5\r\n\r\nabcde"
    ));
}
