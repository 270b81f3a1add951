//! Fault injection on one request, as Envoy's fault filter does it: a
//! delay holds the request (flag DI, `delays_injected`) and then lets it
//! go on; an abort, decided after any delay, answers locally with the
//! status and `fault filter abort` (flag FI, details `fault_filter_abort`,
//! `aborts_injected`). A gRPC request is answered trailers-only: HTTP 200
//! with `grpc-status` and `grpc-message`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::model::fault::{Abort, AbortStatus, Fault};
use crate::proxy::fast_random;
use crate::proxy::respond::LocalReply;
use crate::proxy::stats::FilterStats;

use super::ResponseBody;
use super::exchange::Exchange;
use super::filters::Stop;

const DETAILS: &str = "fault_filter_abort";

/// Applies `fault` to a request: waits out its delay, if drawn, and
/// returns its abort, if drawn.
pub(super) async fn inject(fault: &Fault, grpc: bool, exchange: &mut Exchange<'_>) -> Option<Stop> {
    let stats = exchange.stats.clone();
    let stats = stats.as_deref().map(|stats| &stats.filters);
    let mut active = Active { stats, on: false };
    if let Some(delay) = fault.delay(fast_random()) {
        active.start();
        if let Some(stats) = stats {
            stats.delays_injected.fetch_add(1, Ordering::Relaxed);
        }
        exchange.delay_injected = true;
        tracing::debug!(?delay, "fault: delaying request");
        tokio::time::sleep(delay).await;
    }
    let abort = fault.abort(fast_random())?;
    active.start();
    if let Some(stats) = stats {
        stats.aborts_injected.fetch_add(1, Ordering::Relaxed);
    }
    Some(if grpc {
        exchange.log.response_flags = "FI";
        exchange.log.response_code_details = DETAILS;
        Stop::Respond(grpc_abort(abort))
    } else {
        Stop::Reply(http_abort(abort))
    })
}

/// The `active_faults` gauge, held while the filter injects a fault.
struct Active<'s> {
    stats: Option<&'s FilterStats>,
    on: bool,
}

impl Active<'_> {
    fn start(&mut self) {
        if !self.on
            && let Some(stats) = self.stats
        {
            stats.active_faults.fetch_add(1, Ordering::Relaxed);
            self.on = true;
        }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        if self.on
            && let Some(stats) = self.stats
        {
            stats.active_faults.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The abort of a request that is not gRPC: the HTTP status (200 for a
/// gRPC status) with the abort body.
fn http_abort(abort: &Abort) -> LocalReply {
    let status = match abort.status {
        AbortStatus::Http(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        AbortStatus::Grpc(_) => StatusCode::OK,
    };
    LocalReply {
        status,
        body: abort.body.to_string(),
        flags: "FI",
        details: DETAILS,
        transport_failure: String::new(),
    }
}

/// The abort of a gRPC request, trailers-only as Envoy answers one
/// locally: 200, `grpc-status` (an HTTP status mapped as Envoy maps it),
/// `grpc-message` the body, percent-encoded.
fn grpc_abort(abort: &Abort) -> Response<ResponseBody> {
    let code = match abort.status {
        AbortStatus::Grpc(code) => code,
        AbortStatus::Http(status) => grpc_status_of(status),
    };
    let mut response = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(message) = HeaderValue::from_str(&grpc_percent_encode(&abort.body)) {
        headers.insert("grpc-message", message);
    }
    response
}

/// Envoy's gRPC status for an HTTP status.
fn grpc_status_of(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside printable
/// ASCII, and `%`.
fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `flags` with DI added where Envoy's order puts it (after the upstream
/// and no-route flags, before FI and the rest).
pub(super) fn with_delay_injected(flags: &'static str) -> &'static str {
    match flags {
        "" | "-" => "DI",
        "UH" => "UH,DI",
        "UT" => "UT,DI",
        "LR" => "LR,DI",
        "UR" => "UR,DI",
        "UF" => "UF,DI",
        "UC" => "UC,DI",
        "UO" => "UO,DI",
        "NR" => "NR,DI",
        "FI" => "DI,FI",
        "URX" => "DI,URX",
        "URX,UF" => "DI,URX,UF",
        "URX,UO" => "DI,URX,UO",
        "URX,UR" => "DI,URX,UR",
        "URX,UT" => "DI,URX,UT",
        "NC" => "DI,NC",
        other => {
            tracing::debug!(flags = other, "response flags kept without DI");
            other
        }
    }
}

#[cfg(test)]
mod tests;
