//! Sending a planned request upstream and shaping what comes back: the
//! passthrough destination, the attempts, the cluster's counters, and the
//! response headers Envoy adds or the route edits.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use http::Response;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::proxy::ProxyContext;
use crate::proxy::respond::LocalReply;
use crate::proxy::stats::Stats;
use crate::upstream::{Body, UpstreamError};

use super::ResponseBody;
use super::body::CountingBody;
use super::exchange::Exchange;
use super::hashing;
use super::headers::{self, text};
use super::plan::{Destination, Forwarding};
use super::replay::DEFAULT_BUFFER_LIMIT;
use super::retry::{Attempts, ForwardError};
use super::upgrade::Upgrade;

/// Forwards a request with the planned `head` as `forwarding` says, and
/// answers the client.
pub(super) async fn forward(
    mut exchange: Exchange<'_>,
    forwarding: Forwarding<'_>,
    mut head: Parts,
    body: Body,
    upgrade: Option<Upgrade>,
) -> Response<ResponseBody> {
    let context = exchange.context;
    let set_cookie = hashing::hash_for_cluster(
        &context.upstreams,
        &forwarding.cluster,
        forwarding.route,
        &mut head,
        exchange.log.downstream_remote,
    );
    let cluster_stats = context.stats.cluster(&forwarding.cluster);
    let destination = match forwarding.destination {
        Destination::OriginalDst(original_dst) => original_dst,
        Destination::Authority => {
            match resolve_authority(context, text(exchange.log.authority.as_ref())).await {
                Ok(dst) => Some(dst),
                Err(error) => return exchange.reply(LocalReply::upstream_failure(&error)),
            }
        }
    };
    exchange.log.request_id = head.headers.get("x-request-id").cloned();
    if let Some(upgrade) = &upgrade {
        upgrade.restore_headers(&mut head);
    }
    let attempts = Attempts {
        upstreams: &context.upstreams,
        cluster: &forwarding.cluster,
        destination,
        // An upgrade's payload follows its head: it is sent once.
        retry: forwarding.retry.filter(|_| upgrade.is_none()),
        timeout: forwarding.timeout,
        include_attempt_count: forwarding.include_attempt_count,
        buffer_limit: DEFAULT_BUFFER_LIMIT,
        stats: &cluster_stats,
    };
    let started = Instant::now();
    let chosen = Mutex::new(None);
    let sent = attempts.send(head, body, &chosen).await;
    let retry_limit = |reply: LocalReply| {
        if sent.retry_limit_exceeded {
            reply.retry_limit_exceeded()
        } else if sent.retry_overflow {
            reply.retry_overflow()
        } else {
            reply
        }
    };
    let (response, info) = match sent.outcome {
        Ok(ok) => ok,
        Err(ForwardError::Timeout) => {
            exchange.log.set_upstream(chosen.lock().take());
            cluster_stats.rq_timeout.fetch_add(1, Ordering::Relaxed);
            Stats::record_upstream_response(&cluster_stats, 504);
            return exchange.reply(LocalReply::timeout());
        }
        Err(ForwardError::PerTryTimeout) => {
            exchange.log.set_upstream(chosen.lock().take());
            Stats::record_upstream_response(&cluster_stats, 504);
            return exchange.reply(retry_limit(LocalReply::per_try_timeout()));
        }
        Err(ForwardError::RetryBufferLimit) => {
            exchange.log.set_upstream(chosen.lock().take());
            return exchange.reply(LocalReply::retry_buffer_limit());
        }
        Err(ForwardError::Upstream(error)) => {
            let reply = LocalReply::upstream_failure(&error);
            if matches!(error, UpstreamError::NoHealthyUpstream(_)) {
                cluster_stats
                    .cx_none_healthy
                    .fetch_add(1, Ordering::Relaxed);
            }
            if !matches!(error, UpstreamError::UnknownCluster(_)) {
                Stats::record_upstream_failure(&cluster_stats, &error, reply.status.as_u16());
            }
            let reply = if sent.retried {
                reply.after_retries()
            } else {
                reply
            };
            return exchange.reply(retry_limit(reply));
        }
    };
    if sent.retry_limit_exceeded {
        exchange.log.response_flags = "URX";
    } else if sent.retry_overflow {
        exchange.log.response_flags = "UO";
    }
    context.record_activity();
    let service_time = started.elapsed();
    let log = &mut exchange.log;
    log.set_upstream(Some(info));
    log.upstream_service_time = Some(service_time.as_millis());
    log.response_code_details = "via_upstream";
    Stats::record_upstream_response(&cluster_stats, response.status().as_u16());
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    if !exchange.suppress_envoy_headers {
        parts.headers.insert(
            HeaderName::from_static("x-envoy-upstream-service-time"),
            HeaderValue::from(u64::try_from(service_time.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    if let Some(cookie) = set_cookie {
        parts.headers.append(http::header::SET_COOKIE, cookie);
    }
    if let Some(edits) = forwarding.cluster_edits {
        headers::edit(
            &mut parts.headers,
            &edits.response_headers_to_remove,
            &edits.response_headers_to_add,
        );
    }
    headers::edit(
        &mut parts.headers,
        &forwarding.route.response_headers_to_remove,
        &forwarding.route.response_headers_to_add,
    );
    if let Some(upgrade) = upgrade {
        return upgrade.respond(exchange, parts, body, cluster_stats);
    }
    let body = CountingBody {
        inner: body,
        stats: cluster_stats,
        _admission: parts.extensions.remove(),
    };
    exchange.respond(Response::from_parts(parts, body.boxed()))
}

/// The address an explicit-proxy request names (`host[:port]`, port 80 by
/// default), for the passthrough cluster: parsed as it was for routing.
async fn resolve_authority(
    context: &ProxyContext,
    authority: &str,
) -> Result<SocketAddr, UpstreamError> {
    let parsed = super::authority::parse(authority).map_err(|error| {
        UpstreamError::NoHealthyUpstream(format!("authority {authority:?}: {error}"))
    })?;
    let ip = match parsed.host.parse() {
        Ok(ip) => ip,
        Err(_) => context.upstreams.resolve(parsed.host).await?,
    };
    Ok(SocketAddr::new(ip, parsed.port.unwrap_or(80)))
}
