//! How a route hashes a request for a RING_HASH or MAGLEV cluster
//! (`route_action.hash_policy`), and the hash itself as Envoy computes it:
//! xxHash64 of each policy's value, combined in order, stopping after a
//! `terminal` policy that produced one. No value at all: no hash, and the
//! cluster picks a random host.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderMap;
use twox_hash::XxHash64;

/// One hash policy of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashPolicy {
    pub source: HashSource,
    /// Stop at this policy when it produced a hash.
    pub terminal: bool,
}

/// Where a hash policy takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashSource {
    /// A request header (lowercase name); every value counts.
    Header(String),
    /// A cookie. Absent and with a `ttl`, Envoy makes one up, hashes it,
    /// and sets it on the response.
    Cookie {
        name: String,
        ttl: Option<Duration>,
        path: String,
    },
    /// The downstream connection's source address.
    SourceIp,
    /// A query parameter (the first one of that name).
    QueryParameter(String),
}

/// The hash of one request, and the cookie to set when one was made up.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestHash {
    pub hash: Option<u64>,
    /// A `Set-Cookie` value for the response.
    pub set_cookie: Option<String>,
}

/// What a request offers the hash policies.
pub struct HashInput<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// The downstream connection's peer.
    pub source: Option<SocketAddr>,
}

/// Envoy's xxHash64 (seed 0).
pub fn xx_hash(bytes: &[u8]) -> u64 {
    XxHash64::oneshot(0, bytes)
}

/// The hash of a request under `policies`, as Envoy's router computes it.
pub fn hash_request(policies: &[HashPolicy], input: &HashInput<'_>) -> RequestHash {
    let mut out = RequestHash::default();
    for policy in policies {
        let Some(value) = policy_hash(policy, input, &mut out.set_cookie) else {
            continue;
        };
        out.hash = Some(match out.hash {
            Some(previous) => previous.rotate_left(1) ^ value,
            None => value,
        });
        if policy.terminal {
            break;
        }
    }
    out
}

fn policy_hash(
    policy: &HashPolicy,
    input: &HashInput<'_>,
    set_cookie: &mut Option<String>,
) -> Option<u64> {
    match &policy.source {
        HashSource::Header(name) => {
            let mut values = input.headers.get_all(name.as_str()).iter();
            let first = xx_hash(values.next()?.as_bytes());
            Some(values.fold(first, |hash, v| hash.rotate_left(1) ^ xx_hash(v.as_bytes())))
        }
        HashSource::Cookie { name, ttl, path } => match cookie(input.headers, name) {
            Some(value) => Some(xx_hash(value.as_bytes())),
            None => {
                let ttl = (*ttl)?;
                // As Envoy: the hash of the connection's peer address, so
                // a connection's racing requests get the same cookie.
                let source = input.source.map(|a| a.to_string()).unwrap_or_default();
                let value = format!("{:016x}", xx_hash(source.as_bytes()));
                *set_cookie = Some(set_cookie_value(name, &value, path, ttl));
                Some(xx_hash(value.as_bytes()))
            }
        },
        HashSource::SourceIp => Some(xx_hash(input.source?.ip().to_string().as_bytes())),
        HashSource::QueryParameter(name) => {
            let query = input.query?;
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key == name).then(|| xx_hash(value.as_bytes()))
            })
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.trim_matches('"'))
        })
}

/// Envoy's `Set-Cookie` for a cookie it made up.
fn set_cookie_value(name: &str, value: &str, path: &str, ttl: Duration) -> String {
    let mut out = format!("{name}=\"{value}\"");
    if !ttl.is_zero() {
        out.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if !path.is_empty() {
        out.push_str(&format!("; Path={path}"));
    }
    out.push_str("; HttpOnly");
    out
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn policy(source: HashSource) -> HashPolicy {
        HashPolicy {
            source,
            terminal: false,
        }
    }

    fn input<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> HashInput<'a> {
        HashInput {
            headers,
            query,
            source: Some("10.0.0.9:40000".parse().unwrap()),
        }
    }

    #[test]
    fn the_same_value_gives_the_same_hash_and_none_gives_none() {
        let header = [policy(HashSource::Header("x-user".into()))];
        let mut headers = HeaderMap::new();
        assert_eq!(hash_request(&header, &input(&headers, None)).hash, None);
        headers.insert("x-user", HeaderValue::from_static("alice"));
        let alice = hash_request(&header, &input(&headers, None)).hash;
        assert_eq!(alice, Some(xx_hash(b"alice")));
        headers.insert("x-user", HeaderValue::from_static("bob"));
        assert_ne!(hash_request(&header, &input(&headers, None)).hash, alice);
    }

    #[test]
    fn source_ip_and_query_parameters_are_hashed_by_value() {
        let headers = HeaderMap::new();
        let ip = [policy(HashSource::SourceIp)];
        assert_eq!(
            hash_request(&ip, &input(&headers, None)).hash,
            Some(xx_hash(b"10.0.0.9"))
        );
        let query = [policy(HashSource::QueryParameter("user".into()))];
        assert_eq!(
            hash_request(&query, &input(&headers, Some("a=1&user=carol"))).hash,
            Some(xx_hash(b"carol"))
        );
        assert_eq!(
            hash_request(&query, &input(&headers, Some("a=1"))).hash,
            None
        );
    }

    #[test]
    fn policies_combine_in_order_until_a_terminal_one_hashes() {
        let mut headers = HeaderMap::new();
        headers.insert("a", HeaderValue::from_static("1"));
        headers.insert("b", HeaderValue::from_static("2"));
        let both = [
            policy(HashSource::Header("a".into())),
            policy(HashSource::Header("b".into())),
        ];
        assert_eq!(
            hash_request(&both, &input(&headers, None)).hash,
            Some(xx_hash(b"1").rotate_left(1) ^ xx_hash(b"2"))
        );
        let terminal = [
            HashPolicy {
                source: HashSource::Header("a".into()),
                terminal: true,
            },
            policy(HashSource::Header("b".into())),
        ];
        assert_eq!(
            hash_request(&terminal, &input(&headers, None)).hash,
            Some(xx_hash(b"1"))
        );
    }

    #[test]
    fn a_cookie_is_hashed_or_made_up_and_set_when_it_has_a_ttl() {
        let cookie = |ttl| {
            [policy(HashSource::Cookie {
                name: "user".into(),
                ttl,
                path: "/".into(),
            })]
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            HeaderValue::from_static("a=b; user=\"dave\""),
        );
        let with = hash_request(&cookie(None), &input(&headers, None));
        assert_eq!(with.hash, Some(xx_hash(b"dave")));
        assert_eq!(with.set_cookie, None);

        let empty = HeaderMap::new();
        let no_ttl = hash_request(&cookie(None), &input(&empty, None));
        assert_eq!(no_ttl, RequestHash::default(), "no cookie, no ttl: no hash");

        let made = hash_request(&cookie(Some(Duration::from_secs(60))), &input(&empty, None));
        let value = format!("{:016x}", xx_hash(b"10.0.0.9:40000"));
        assert_eq!(made.hash, Some(xx_hash(value.as_bytes())));
        assert_eq!(
            made.set_cookie.as_deref(),
            Some(format!("user=\"{value}\"; Max-Age=60; Path=/; HttpOnly").as_str())
        );
    }
}
