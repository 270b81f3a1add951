//! Unit tests of the conversions: what each resource becomes, and every
//! reason one is rejected (the resource, the field and why).

mod cluster;
mod endpoint;
mod golden;
mod listener;
mod route;
mod tls;

use std::fmt::Debug;

use prost::Message;
use proto::pb::envoy::config::core::v3::{
    Address, DataSource, SocketAddress, TransportSocket, address, data_source, socket_address,
    transport_socket,
};
use proto::wkt::Any;

use crate::model::Error;

fn pack(type_url: &str, message: &impl Message) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

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

fn transport_socket(type_url: &str, message: &impl Message) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
            type_url, message,
        ))),
    }
}

fn inline(text: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    }
}

/// A self-signed certificate for `name` and its key, PEM.
fn certificate_pem(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("certificate parameters")
        .self_signed(&key)
        .expect("self-sign");
    (cert.pem(), key.serialize_pem())
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

/// Asserts that `result` rejects `field` of the `kind` resource `name`
/// because of `reason`.
#[track_caller]
fn assert_rejected<T: Debug>(
    result: Result<T, Error>,
    kind: &str,
    name: &str,
    field: &str,
    reason: &str,
) {
    assert_eq!(rejection(result, kind, name, field), reason);
}

/// As [`assert_rejected`], for a reason that ends with a message from the
/// OS or a library: only its start is asserted.
#[track_caller]
fn assert_rejected_starting<T: Debug>(
    result: Result<T, Error>,
    kind: &str,
    name: &str,
    field: &str,
    reason_start: &str,
) {
    let reason = rejection(result, kind, name, field);
    assert!(
        reason.starts_with(reason_start),
        "reason {reason:?} does not start with {reason_start:?}"
    );
}
