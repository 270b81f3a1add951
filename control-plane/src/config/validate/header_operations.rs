//! Checks of VirtualService `headers` (on a route and on each destination)
//! and of the header names a match reads, as Istio's validation makes them:
//! pseudo-headers and `host` cannot be edited, except the request
//! authority, which a route sets once (or rewrites).

use super::check::Check;
use super::http_policy::is_header_name;
use crate::config::error::Problem;
use crate::config::model::{HeaderOperations, Headers, HttpRoute};

/// Whether a header names the request authority (`:authority` or `host`).
fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

impl Check<'_> {
    /// The `headers` of route `field` and of its destinations, and the
    /// authority they and `rewrite` set.
    pub(super) fn route_headers(&mut self, field: &str, route: &HttpRoute) {
        if let Some(headers) = &route.headers {
            self.headers(&format!("{field}.headers"), headers);
        }
        for (at, to) in route.route.iter().enumerate() {
            if let Some(headers) = &to.headers {
                self.headers(&format!("{field}.route[{at}].headers"), headers);
            }
        }
        let rewrite = route.rewrite.as_ref().and_then(|r| r.authority.as_ref());
        let mut authorities = rewrite.into_iter().chain(
            route
                .headers
                .iter()
                .filter_map(|h| h.request.as_ref())
                .flat_map(|ops| ops.set.iter().chain(ops.add.iter()))
                .filter(|(name, _)| is_authority(name))
                .map(|(_, value)| value),
        );
        if let (Some(first), Some(again)) = (authorities.next(), authorities.next()) {
            self.report(
                format!("{field}.headers.request"),
                Problem::AuthoritySetTwice {
                    first: first.clone(),
                    again: again.clone(),
                },
            );
        }
    }

    fn headers(&mut self, field: &str, headers: &Headers) {
        let sides = [
            ("request", &headers.request),
            ("response", &headers.response),
        ];
        for (side, ops) in sides {
            if let Some(ops) = ops {
                self.operations(&format!("{field}.{side}"), ops, side == "request");
            }
        }
    }

    /// One side's operations; only a request's `set`/`add` may name the
    /// authority.
    fn operations(&mut self, field: &str, ops: &HeaderOperations, request: bool) {
        let edits = [("set", &ops.set), ("add", &ops.add)];
        for (operation, map) in edits {
            for name in map.keys() {
                if !(request && is_authority(name)) {
                    self.header_operation_name(&format!("{field}.{operation}.{name}"), name);
                }
            }
        }
        for (at, name) in ops.remove.iter().enumerate() {
            self.header_operation_name(&format!("{field}.remove[{at}]"), name);
        }
    }

    fn header_operation_name(&mut self, field: &str, name: &str) {
        if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
            self.report(
                field,
                Problem::InternalHeader {
                    name: name.to_string(),
                },
            );
        } else if !is_header_name(name) {
            self.report(
                field,
                Problem::InvalidHeaderName {
                    name: name.to_string(),
                },
            );
        }
    }

    /// A header name a match reads: a token; JWT claims (`@request.auth.claims`)
    /// need request authentication, which this control plane does not have.
    pub(super) fn match_header_name(&mut self, field: &str, name: &str) {
        if name.starts_with("@request.auth.claims") {
            self.report(
                field,
                Problem::NotSupported {
                    field: name.to_string(),
                },
            );
        } else if !is_header_name(name) {
            self.report(
                field,
                Problem::InvalidHeaderName {
                    name: name.to_string(),
                },
            );
        }
    }
}
