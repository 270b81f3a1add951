//! A request's hash for RING_HASH and MAGLEV clusters: its route's hash
//! policies run only when the picked cluster hashes (as Envoy's load
//! balancer asks the router for the hash), the result rides in the
//! request's extensions to the host pick, and a cookie made up for a
//! missing one goes back on the response.

use std::net::SocketAddr;

use http::HeaderValue;
use http::request::Parts;

use crate::model::hash_policy::{HashInput, hash_request};
use crate::model::route::{Route, RouteAction};
use crate::upstream::{RequestHashKey, Upstreams};

/// Hashes `head` for `cluster` by `route`'s policies, from a connection
/// whose peer is `source`; returns the `Set-Cookie` value to answer with.
pub(super) fn hash_for_cluster(
    upstreams: &Upstreams,
    cluster: &str,
    route: &Route,
    head: &mut Parts,
    source: Option<SocketAddr>,
) -> Option<HeaderValue> {
    let RouteAction::Forward(forward) = &route.action else {
        return None;
    };
    if forward.hash_policy.is_empty() || !upstreams.hashes(cluster) {
        return None;
    }
    let hashed = hash_request(
        &forward.hash_policy,
        &HashInput {
            headers: &head.headers,
            query: head.uri.query(),
            source,
        },
    );
    if let Some(hash) = hashed.hash {
        head.extensions.insert(RequestHashKey(hash));
    }
    hashed
        .set_cookie
        .and_then(|cookie| HeaderValue::try_from(cookie).ok())
}
