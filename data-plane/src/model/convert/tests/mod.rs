//! Unit tests of the conversions: what each resource becomes, and every
//! reason one is rejected (the resource, the field and why).

mod access_log;
mod cluster;
mod connection_limits;
mod egress_policy;
mod endpoint;
mod file_access_log;
mod golden;
mod hash_policy;
mod hcm_timeouts;
mod http_filters;
mod listener;
mod mirror;
mod path_normalization;
mod properties;
mod resilience;
mod route;
mod route_headers;
mod route_match;
mod route_retry;
mod sds;
mod subject_alt_names;
mod tcp_timeouts;
mod tls;
mod upgrade;

use std::fmt::Debug;

use proto::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};

use crate::model::Error;
use crate::model::proto_fixtures::{certificate_pem, inline, transport_socket};
use proto::pack;

fn socket_address(host: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// An address with a named port, which the agent cannot resolve.
fn named_port_address(host: &str) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::NamedPort("https".into())),
            ..Default::default()
        })),
    }
}

/// The reason `result` rejects `field` of the `kind` resource `name`;
/// panics if it is accepted or rejects something else.
#[track_caller]
fn rejection<T: Debug>(result: Result<T, Error>, kind: &str, name: &str, field: &str) -> String {
    let error = result.expect_err("the resource is rejected");
    assert_eq!(
        (error.kind, error.name.as_str(), error.field.as_str()),
        (kind, name, field),
        "{error}"
    );
    error.reason
}

/// What the reason of a rejection must be: exactly a text, or, for a
/// reason that ends with a message from the OS or a library, its start
/// ([`starting`]).
enum Reason<'a> {
    Exactly(&'a str),
    StartingWith(&'a str),
}

impl<'a> From<&'a str> for Reason<'a> {
    fn from(reason: &'a str) -> Self {
        Reason::Exactly(reason)
    }
}

impl<'a> From<&'a String> for Reason<'a> {
    fn from(reason: &'a String) -> Self {
        Reason::Exactly(reason)
    }
}

/// A reason that starts with `start`.
fn starting(start: &str) -> Reason<'_> {
    Reason::StartingWith(start)
}

/// Asserts that `result` rejects `field` of the `kind` resource `name`
/// because of `reason`.
#[track_caller]
fn assert_rejected<'a, T: Debug>(
    result: Result<T, Error>,
    kind: &str,
    name: &str,
    field: &str,
    reason: impl Into<Reason<'a>>,
) {
    let actual = rejection(result, kind, name, field);
    match reason.into() {
        Reason::Exactly(reason) => assert_eq!(actual, reason),
        Reason::StartingWith(start) => assert!(
            actual.starts_with(start),
            "reason {actual:?} does not start with {start:?}"
        ),
    }
}
