//! A series' key: the destination service, the upstream peer (the
//! workload behind the host, the identities on the connection) and the
//! rest of its labels (`Shape`), owned in the map and borrowed for
//! lookups, so a label set seen before is found without allocating.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use shared::egress::EgressPolicy;
use shared::workload::EndpointWorkload;

use super::{Destination, Peer, Protocol, Shape, escape_into};
use crate::upstream::Principals;

/// A series' labels, owned.
#[derive(Debug, Clone)]
pub(super) struct SeriesKey {
    pub(super) service: Arc<str>,
    pub(super) workload: Option<Arc<EndpointWorkload>>,
    pub(super) principals: Option<Arc<Principals>>,
    pub(super) shape: Shape,
}

impl SeriesKey {
    /// Writes the labels that differ between series of one proxy.
    pub(super) fn write_labels(&self, out: &mut String) {
        let shape = &self.shape;
        out.push_str("destination_service=\"");
        escape_into(out, &self.service);
        out.push_str("\",destination_service_name=\"");
        escape_into(out, Destination::service_name(shape.class, &self.service));
        let protocol = match shape.protocol {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
            Protocol::Tcp => "tcp",
        };
        let _ = write!(
            out,
            "\",request_protocol=\"{protocol}\",response_code=\"{}\"",
            shape.response_code
        );
        if shape.protocol != Protocol::Tcp {
            out.push_str(",grpc_response_status=\"");
            if let Some(status) = shape.grpc_status {
                let _ = write!(out, "{status}");
            }
            out.push('"');
        }
        let _ = write!(
            out,
            ",response_flags=\"{}\",egress_policy=\"{}\"",
            shape.response_flags,
            EgressPolicy::label(shape.egress_policy),
        );
    }
}

/// A series' labels, borrowed for a lookup.
pub(super) struct SeriesRef<'a> {
    pub(super) service: &'a str,
    pub(super) peer: Peer<'a>,
    pub(super) shape: Shape,
}

/// What an owned and a borrowed series key share, so the map can be
/// searched with a borrowed one.
pub(super) trait SeriesLabels {
    fn service(&self) -> &str;
    fn workload(&self) -> Option<&EndpointWorkload>;
    fn principals(&self) -> Option<&Principals>;
    fn shape(&self) -> Shape;
}

impl SeriesLabels for SeriesKey {
    fn service(&self) -> &str {
        &self.service
    }
    fn workload(&self) -> Option<&EndpointWorkload> {
        self.workload.as_deref()
    }
    fn principals(&self) -> Option<&Principals> {
        self.principals.as_deref()
    }
    fn shape(&self) -> Shape {
        self.shape
    }
}

impl SeriesLabels for SeriesRef<'_> {
    fn service(&self) -> &str {
        self.service
    }
    fn workload(&self) -> Option<&EndpointWorkload> {
        self.peer.workload.map(|workload| &**workload)
    }
    fn principals(&self) -> Option<&Principals> {
        self.peer.principals.map(|principals| &**principals)
    }
    fn shape(&self) -> Shape {
        self.shape
    }
}

impl Hash for dyn SeriesLabels + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.service().hash(state);
        self.workload().hash(state);
        self.principals().hash(state);
        self.shape().hash(state);
    }
}

impl PartialEq for dyn SeriesLabels + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.service() == other.service()
            && self.workload() == other.workload()
            && self.principals() == other.principals()
            && self.shape() == other.shape()
    }
}

impl Eq for dyn SeriesLabels + '_ {}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn SeriesLabels).hash(state);
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn SeriesLabels) == (other as &dyn SeriesLabels)
    }
}

impl Eq for SeriesKey {}

impl<'a> Borrow<dyn SeriesLabels + 'a> for SeriesKey {
    fn borrow(&self) -> &(dyn SeriesLabels + 'a) {
        self
    }
}
