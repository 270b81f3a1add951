//! What the client knows of one resource type: how it is subscribed, what
//! the agent wants of it, what was last requested and applied, and the
//! requests (subscription, ACK, NACK) that follow from that.

use std::collections::{BTreeMap, BTreeSet};

use proto::pb::envoy::service::discovery::v3::DiscoveryRequest;
use proto::pb::google::rpc::Status as RpcStatus;
use proto::wkt::Any;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, NAME_TABLE, ROUTE, SECRET, short_name};

use super::invalid_argument;
use crate::xds::stats::{UpdateResult, XdsStats};
use crate::xds::{ConfigSink, Rejection};

/// How a type is subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Everything the control plane has for us (empty `resource_names`).
    Wildcard,
    /// The names [`ConfigSink::wanted_names`] returns.
    Named,
}

/// The types the client can subscribe to, in the order ADS wants them
/// requested (those the sink takes: [`ConfigSink::subscribes`]).
pub(super) const SUBSCRIPTIONS: [(&str, Mode); 6] = [
    (CLUSTER, Mode::Wildcard),
    (ENDPOINT, Mode::Named),
    (LISTENER, Mode::Wildcard),
    (ROUTE, Mode::Named),
    (SECRET, Mode::Named),
    (NAME_TABLE, Mode::Wildcard),
];

/// What the agent wants of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Interest {
    All,
    /// Sorted, without duplicates.
    Names(Vec<String>),
}

impl Interest {
    pub(super) fn resource_names(&self) -> Vec<String> {
        match self {
            Interest::All => Vec::new(),
            Interest::Names(names) => names.clone(),
        }
    }
}

/// The client's state for one type.
#[derive(Debug)]
pub(super) struct TypeState {
    pub(super) type_url: &'static str,
    pub(super) mode: Mode,
    /// The version of the last applied response; kept across streams.
    pub(super) accepted_version: String,
    /// Whether any response of this type was ever applied.
    pub(super) accepted_once: bool,
    /// The resource names in the last applied response.
    pub(super) received: BTreeSet<String>,
    /// What the last request on this stream asked for; `None` before the
    /// type's first request on a stream.
    pub(super) requested: Option<Interest>,
    /// The nonce of the last response on this stream.
    pub(super) nonce: String,
    /// Delta: the resources applied now, by name, as the sink has them.
    pub(super) held: BTreeMap<String, Held>,
}

/// A resource the agent holds (delta), with the version the control plane
/// gave it.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub(super) version: String,
    pub(super) resource: Any,
}

impl TypeState {
    pub(super) fn new(type_url: &'static str, mode: Mode) -> Self {
        Self {
            type_url,
            mode,
            accepted_version: String::new(),
            accepted_once: false,
            received: BTreeSet::new(),
            requested: None,
            nonce: String::new(),
            held: BTreeMap::new(),
        }
    }

    pub(super) fn interest(&self, sink: &dyn ConfigSink) -> Interest {
        match self.mode {
            Mode::Wildcard => Interest::All,
            Mode::Named => match sink.wanted_names(self.type_url) {
                None => Interest::All,
                Some(names) => Interest::Names(
                    names
                        .into_iter()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                ),
            },
        }
    }

    /// Whether `interest` calls for a new request. An empty name list is
    /// sent only to drop names asked for earlier on this stream.
    pub(super) fn needs_request(&self, interest: &Interest) -> bool {
        match (&self.requested, interest) {
            (Some(requested), interest) => requested != interest,
            (None, Interest::Names(names)) => !names.is_empty(),
            (None, Interest::All) => true,
        }
    }

    /// Whether everything `interest` asks for has been applied.
    pub(super) fn is_warm(&self, interest: &Interest) -> bool {
        match interest {
            Interest::All => self.accepted_once,
            Interest::Names(names) => names.iter().all(|name| self.received.contains(name)),
        }
    }

    /// Records what applying a response of `version` came to: on success
    /// the version and the resource names the type holds now. Logs and
    /// counts either way; returns the NACK's error detail.
    pub(super) fn settle(
        &mut self,
        stats: &XdsStats,
        version: String,
        applied: Result<BTreeSet<String>, Rejection>,
    ) -> Option<RpcStatus> {
        let resource_type = short_name(self.type_url);
        match applied {
            Ok(names) => {
                tracing::debug!(resource_type, %version, resources = names.len(), "applied config (ACK)");
                self.accepted_version = version;
                self.accepted_once = true;
                self.received = names;
                stats.record_update(self.type_url, UpdateResult::Accepted);
                None
            }
            Err(error) => {
                tracing::warn!(
                    resource_type,
                    %version,
                    kept_version = %self.accepted_version,
                    %error,
                    "rejected config (NACK)"
                );
                stats.record_update(self.type_url, UpdateResult::Rejected);
                Some(invalid_argument(error.to_string()))
            }
        }
    }

    /// A request in the type's current state: a subscription change, an ACK
    /// (right after `accepted_version` and `nonce` were updated) or, with an
    /// error, a NACK that still carries the last accepted version.
    pub(super) fn request(&self, error_detail: Option<RpcStatus>) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: self.accepted_version.clone(),
            resource_names: self
                .requested
                .as_ref()
                .map(Interest::resource_names)
                .unwrap_or_default(),
            type_url: self.type_url.to_string(),
            response_nonce: self.nonce.clone(),
            error_detail,
            ..Default::default()
        }
    }
}
