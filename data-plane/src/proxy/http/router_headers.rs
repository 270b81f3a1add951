//! The request headers Envoy adds upstream on its own:
//! `x-envoy-expected-rq-timeout-ms`, the timeout the upstream may expect
//! (router), and `x-forwarded-proto` (connection manager); and the
//! `x-envoy-*` control headers its connection manager removes from an
//! external request.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::model::route::Forward;

/// The request headers that would steer Envoy's router (retries,
/// timeouts, tracing, stats), which its connection manager removes from a
/// request that is not internal.
const EXTERNAL_REQUEST_REMOVED: [&str; 14] = [
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-ip-tags",
    "x-envoy-original-url",
    "x-envoy-hedge-on-per-try-timeout",
];

/// Removes the app's router control headers as Envoy's connection manager
/// does for an external request: istiod's connection managers declare no
/// internal addresses, so every request is one, and the app cannot steer
/// retries or timeouts with them.
pub(super) fn remove_external_control(headers: &mut HeaderMap) {
    for name in EXTERNAL_REQUEST_REMOVED {
        headers.remove(name);
    }
}

/// Sets `x-envoy-expected-rq-timeout-ms` as Envoy's router does (its
/// `suppress_envoy_headers` unset): the per-try timeout when the route's
/// retry policy has one, else the route timeout; nothing when neither is set.
pub(super) fn add_expected_timeout(headers: &mut HeaderMap, forward: &Forward) {
    let per_try = forward
        .retry
        .as_ref()
        .and_then(|retry| retry.per_try_timeout)
        .filter(|timeout| !timeout.is_zero());
    let Some(expected) = per_try.or(forward.timeout).filter(|t| !t.is_zero()) else {
        return;
    };
    headers.insert(
        HeaderName::from_static("x-envoy-expected-rq-timeout-ms"),
        HeaderValue::from(millis(expected)),
    );
}

/// Sets `x-forwarded-proto` as Envoy's connection manager does (no trusted
/// hops): from the connection (`https` when it terminated TLS) under
/// `use_remote_address`, else only when the client sent none.
pub(super) fn set_forwarded_proto(headers: &mut HeaderMap, tls: bool, use_remote_address: bool) {
    let name = HeaderName::from_static("x-forwarded-proto");
    if !use_remote_address && headers.contains_key(&name) {
        return;
    }
    let scheme = if tls { "https" } else { "http" };
    headers.insert(name, HeaderValue::from_static(scheme));
}

fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::route::{Backoff, ClusterTarget, RetryOn, RetryPolicy};

    fn forward(timeout: Option<Duration>, per_try: Option<Duration>) -> Forward {
        Forward {
            target: ClusterTarget::Cluster("c".into()),
            timeout,
            retry: per_try.map(|per_try| RetryPolicy {
                num_retries: 2,
                per_try_timeout: Some(per_try),
                on: RetryOn::default(),
                retriable_status_codes: Vec::new(),
                previous_hosts: false,
                host_selection_max_attempts: 1,
                backoff: Backoff::default(),
            }),
            prefix_rewrite: None,
            host_rewrite: None,
            mirrors: Vec::new(),
            hash_policy: Vec::new(),
            upgrades: Vec::new(),
            cluster_not_found: 503,
        }
    }

    fn expected(forward: &Forward) -> Option<String> {
        let mut headers = HeaderMap::new();
        add_expected_timeout(&mut headers, forward);
        headers
            .get("x-envoy-expected-rq-timeout-ms")
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn the_apps_router_control_headers_are_removed_and_others_kept() {
        let mut headers = HeaderMap::new();
        for name in [
            "x-envoy-retry-on",
            "x-envoy-max-retries",
            "x-envoy-upstream-rq-timeout-ms",
        ] {
            headers.insert(name, HeaderValue::from_static("5xx"));
        }
        headers.insert("x-envoy-attempt-count", HeaderValue::from_static("1"));
        headers.insert("x-app", HeaderValue::from_static("kept"));
        remove_external_control(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-app", "x-envoy-attempt-count"]);
    }

    #[test]
    fn envoy_tells_the_upstream_the_route_timeout() {
        let route = forward(Some(Duration::from_secs(5)), None);
        assert_eq!(expected(&route).as_deref(), Some("5000"));
    }

    #[test]
    fn a_per_try_timeout_is_what_the_upstream_may_expect() {
        let route = forward(
            Some(Duration::from_secs(5)),
            Some(Duration::from_millis(250)),
        );
        assert_eq!(expected(&route).as_deref(), Some("250"));
    }

    fn forwarded_proto(client: Option<&'static str>, tls: bool, remote: bool) -> String {
        let mut headers = HeaderMap::new();
        if let Some(client) = client {
            headers.insert("x-forwarded-proto", HeaderValue::from_static(client));
        }
        set_forwarded_proto(&mut headers, tls, remote);
        headers["x-forwarded-proto"].to_str().unwrap().to_string()
    }

    #[test]
    fn a_sidecar_keeps_the_clients_forwarded_proto() {
        assert_eq!(forwarded_proto(Some("https"), false, false), "https");
        assert_eq!(forwarded_proto(None, false, false), "http");
        assert_eq!(forwarded_proto(None, true, false), "https");
    }

    #[test]
    fn with_use_remote_address_the_connection_says_the_scheme() {
        assert_eq!(forwarded_proto(Some("https"), false, true), "http");
        assert_eq!(forwarded_proto(Some("http"), true, true), "https");
    }

    #[test]
    fn no_timeout_no_header() {
        assert_eq!(expected(&forward(None, None)), None);
    }
}
