//! A request's authority, parsed once: the host and numeric port that
//! explicit proxy mode routes by and connects to (anything else is
//! answered 400, so routing and connecting can never disagree), and
//! Envoy's check of the characters of `:authority`, on every listener.

use std::net::Ipv6Addr;

use http::HeaderValue;

use crate::proxy::respond::LocalReply;

use super::RouteSource;
use super::headers::text;

/// Envoy's details for a request whose authority it refuses.
pub(crate) const INVALID_AUTHORITY: &str = "http.invalid_authority";

/// `host[:port]`, as routed and connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    /// A DNS name or an IPv4 address, or an IPv6 address without its
    /// brackets.
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
}

/// Why an authority is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidAuthority {
    #[error("no authority")]
    Missing,
    #[error("user information in the authority")]
    Userinfo,
    #[error("the host is not a name or an address")]
    Host,
    #[error("the port is not a number from 0 to 65535")]
    Port,
}

impl InvalidAuthority {
    /// The answer: Envoy's 400 for an invalid authority.
    pub(crate) fn reply(self) -> LocalReply {
        LocalReply::bad_request(INVALID_AUTHORITY)
    }
}

/// Checks the authority of a request whose routes come from `source`:
/// Envoy's character check on every listener; in explicit proxy mode,
/// where it also says where to connect, the strict parse, whose port is
/// returned for routing.
pub(super) fn check(
    source: &RouteSource,
    authority: Option<&HeaderValue>,
) -> Result<Option<u16>, InvalidAuthority> {
    match source {
        RouteSource::ExplicitProxy { .. } => Ok(parse(text(authority))?.port),
        RouteSource::Chain { .. } => match authority {
            Some(value) if !envoy_accepts(value.as_bytes()) => Err(InvalidAuthority::Host),
            _ => Ok(None),
        },
    }
}

/// Parses `host[:port]` strictly: a host of letters, digits, `-`, `.` and
/// `_`, or a bracketed IPv6 address; a port of one to five digits no
/// greater than 65535. No user information, no empty port.
pub(crate) fn parse(raw: &str) -> Result<Authority<'_>, InvalidAuthority> {
    if raw.is_empty() {
        return Err(InvalidAuthority::Missing);
    }
    if raw.contains('@') {
        return Err(InvalidAuthority::Userinfo);
    }
    let (host, port) = if let Some(bracketed) = raw.strip_prefix('[') {
        let (address, rest) = bracketed.split_once(']').ok_or(InvalidAuthority::Host)?;
        address
            .parse::<Ipv6Addr>()
            .map_err(|_| InvalidAuthority::Host)?;
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':').ok_or(InvalidAuthority::Port)?),
        };
        (address, port)
    } else {
        match raw.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (raw, None),
        }
    };
    if !raw.starts_with('[') && !is_name(host) {
        return Err(InvalidAuthority::Host);
    }
    let port = port.map(parse_port).transpose()?;
    Ok(Authority { host, port })
}

/// A DNS name or IPv4 address: non-empty, letters, digits, `-`, `.`, `_`.
fn is_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn parse_port(port: &str) -> Result<u16, InvalidAuthority> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidAuthority::Port);
    }
    port.parse().map_err(|_| InvalidAuthority::Port)
}

/// Whether Envoy's connection manager accepts `authority` (its
/// `authorityIsValid`: the characters HTTP/2 allows, and `@`).
pub(crate) fn envoy_accepts(authority: &[u8]) -> bool {
    authority.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'-'
                    | b'.'
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
                    | b'['
                    | b']'
                    | b'_'
                    | b'~'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> (&str, Option<u16>) {
        let parsed = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        (parsed.host, parsed.port)
    }

    #[test]
    fn names_addresses_and_ports_parse() {
        assert_eq!(ok("httpbin.org"), ("httpbin.org", None));
        assert_eq!(ok("httpbin.org:8080"), ("httpbin.org", Some(8080)));
        assert_eq!(ok("10.10.0.2:80"), ("10.10.0.2", Some(80)));
        assert_eq!(ok("[::1]:443"), ("::1", Some(443)));
        assert_eq!(ok("[fe80::1]"), ("fe80::1", None));
        assert_eq!(ok("a_b-c.test:0"), ("a_b-c.test", Some(0)));
    }

    #[test]
    fn a_port_that_is_not_a_number_is_refused() {
        // The REGISTRY_ONLY bypass: routed as `*.wild.test`, connected to
        // `blocked.test:80`.
        assert_eq!(
            parse("blocked.test:.wild.test"),
            Err(InvalidAuthority::Port)
        );
        assert_eq!(parse("10.10.0.2:.wild.test"), Err(InvalidAuthority::Port));
        assert_eq!(parse("a.test:65536"), Err(InvalidAuthority::Port));
        assert_eq!(parse("a.test:"), Err(InvalidAuthority::Port));
        assert_eq!(parse("a.test:+80"), Err(InvalidAuthority::Port));
        assert_eq!(parse("a.test:000080"), Err(InvalidAuthority::Port));
        assert_eq!(parse("[::1]x"), Err(InvalidAuthority::Port));
    }

    #[test]
    fn userinfo_and_garbage_are_refused() {
        assert_eq!(parse("user@blocked.test"), Err(InvalidAuthority::Userinfo));
        assert_eq!(
            parse("ok.wild.test@blocked.test"),
            Err(InvalidAuthority::Userinfo)
        );
        assert_eq!(parse(""), Err(InvalidAuthority::Missing));
        assert_eq!(parse(":80"), Err(InvalidAuthority::Host));
        assert_eq!(parse("::1"), Err(InvalidAuthority::Host));
        assert_eq!(parse("[not-v6]:80"), Err(InvalidAuthority::Host));
        assert_eq!(parse("a b.test"), Err(InvalidAuthority::Host));
        assert_eq!(parse("a.test:80:81"), Err(InvalidAuthority::Port));
        assert_eq!(parse("*.wild.test"), Err(InvalidAuthority::Host));
    }

    #[test]
    fn envoy_refuses_what_http2_forbids_in_an_authority() {
        assert!(envoy_accepts(b"blocked.test:.wild.test"));
        assert!(envoy_accepts(b"user@host:80"));
        assert!(!envoy_accepts(b"a b"));
        assert!(!envoy_accepts(b"a/b"));
        assert!(!envoy_accepts(b"a\"b"));
        assert!(!envoy_accepts("é".as_bytes()));
    }
}
