//! CORS on one request, as Envoy's CORS filter does it with the route's
//! policy: an allowed origin is counted (`origin_valid`, else
//! `origin_invalid`) and granted on the response whatever it is
//! (`access-control-allow-origin`, `-allow-credentials`,
//! `-expose-headers`); a preflight (OPTIONS with `Origin` and
//! `Access-Control-Request-Method`) is answered locally, 200 with the
//! `Access-Control-*` headers, unless its origin is not allowed and the
//! policy forwards such preflights (Envoy's default).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};

use crate::model::cors::CorsPolicy;
use crate::proxy::fast_random;

use super::ResponseBody;
use super::exchange::Exchange;
use super::filters::FilterRequest;

/// What an allowed origin is granted on the response.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    origin: HeaderValue,
    credentials: bool,
    expose_headers: Option<HeaderValue>,
}

impl Grant {
    /// Sets the granted headers on a response, replacing the upstream's.
    pub(super) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.origin.clone());
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(expose) = &self.expose_headers {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

/// Runs `policy` on a request: records the grant on `exchange`, and
/// returns the answer to a preflight that is answered locally.
pub(super) fn decode(
    policy: &CorsPolicy,
    request: &FilterRequest,
    exchange: &mut Exchange<'_>,
) -> Option<Response<ResponseBody>> {
    let enabled = policy.filter_enabled.is_none_or(|f| f.hits(fast_random()));
    let shadow = policy.shadow_enabled.is_some_and(|f| f.hits(fast_random()));
    if !enabled && !shadow {
        return None;
    }
    let origin = request.origin.as_ref().filter(|o| !o.is_empty())?;
    let allowed = origin
        .to_str()
        .is_ok_and(|origin| policy.allows_origin(origin));
    if let Some(stats) = exchange.stats.as_deref() {
        let counter = if allowed {
            &stats.filters.origin_valid
        } else {
            &stats.filters.origin_invalid
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if !enabled {
        return None;
    }
    let credentials = policy.allow_credentials == Some(true);
    if allowed {
        exchange.cors = Some(Grant {
            origin: origin.clone(),
            credentials,
            expose_headers: policy
                .expose_headers
                .as_deref()
                .and_then(|h| HeaderValue::from_str(h).ok()),
        });
    }
    let request_method = request.request_method.as_ref().filter(|m| !m.is_empty());
    if !request.options || request_method.is_none() {
        return None;
    }
    if !allowed && policy.forward_not_matching_preflights != Some(false) {
        return None;
    }
    exchange.log.response_code_details = "cors_response";
    Some(preflight(
        policy,
        request,
        allowed.then_some(origin),
        credentials,
    ))
}

/// The local answer to a preflight.
fn preflight(
    policy: &CorsPolicy,
    request: &FilterRequest,
    origin: Option<&HeaderValue>,
    credentials: bool,
) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    );
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    if credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    // `*` echoes what the preflight asks for.
    let mut allow = |name: HeaderName, configured: Option<&str>, asked: Option<&HeaderValue>| {
        let value = match configured {
            None => return,
            Some("*") => asked
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("")),
            Some(list) => match HeaderValue::from_str(list) {
                Ok(value) => value,
                Err(_) => return,
            },
        };
        headers.insert(name, value);
    };
    allow(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        policy.allow_methods.as_deref(),
        request.request_method.as_ref(),
    );
    allow(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        policy.allow_headers.as_deref(),
        request.request_headers.as_ref(),
    );
    if let Some(max_age) = policy
        .max_age
        .as_deref()
        .and_then(|age| HeaderValue::from_str(age).ok())
    {
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, max_age);
    }
    if policy.allow_private_network_access == Some(true) && request.private_network {
        headers.insert(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
    }
    response
}

#[cfg(test)]
mod tests;
