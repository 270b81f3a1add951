//! What one stream knows about each resource type (what the proxy asked
//! for, what was sent, what it ACKed, its last NACK) and what a request
//! means for it: an ACK, a NACK, a stale nonce or a subscription. Both
//! protocols, state of the world and delta, go through here; CSDS reports
//! this state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proto::pb::google::rpc::Status as RpcStatus;

/// Name → version of the resources a proxy holds. The names and versions
/// are those of the translated resources, shared by every proxy that holds
/// them, and one set is shared by the states it describes (sent, ACKed): a
/// connected proxy costs pointers, not copies.
pub type Versions = Arc<BTreeMap<Arc<str>, Arc<str>>>;

/// The name that subscribes to every resource of a type.
pub const WILDCARD: &str = "*";

/// LDS, CDS and the name table (NDS, as Istio has it) are wildcard types:
/// no names means "everything".
pub fn is_wildcard_type(type_url: &str) -> bool {
    matches!(
        type_url,
        shared::type_url::LISTENER | shared::type_url::CLUSTER | shared::type_url::NAME_TABLE
    )
}

/// A request for one type, in the terms both protocols share.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub type_url: &'a str,
    /// The nonce of the response this request answers; empty for none.
    pub response_nonce: &'a str,
    /// Why the proxy rejected that response: set on a NACK only.
    pub error: Option<&'a str>,
    /// The NACK's gRPC status code (0 when the request is no NACK).
    pub error_code: i32,
    pub names: Names<'a>,
}

impl<'a> Request<'a> {
    /// The fields both protocols' requests have.
    pub fn new(
        type_url: &'a str,
        response_nonce: &'a str,
        error_detail: Option<&'a RpcStatus>,
        names: Names<'a>,
    ) -> Self {
        Self {
            type_url,
            response_nonce,
            error: error_detail.map(|status| status.message.as_str()),
            error_code: error_detail.map_or(0, |status| status.code),
            names,
        }
    }
}

/// The names a request subscribes to.
#[derive(Debug, Clone, Copy)]
pub enum Names<'a> {
    /// State of the world: every name the proxy wants now (for a wildcard
    /// type, none or `*` means all of them).
    Wanted(&'a [String]),
    /// Delta: names added and removed (`*` for all of a type), and, on the
    /// type's first request of a stream, the versions the proxy already
    /// holds from an earlier one.
    Changed {
        subscribe: &'a [String],
        unsubscribe: &'a [String],
        initial_versions: &'a HashMap<String, String>,
    },
}

/// A rejected response, as the proxy reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub version: String,
    pub nonce: String,
    pub error: String,
    /// The gRPC status code the proxy gave (Envoy: INTERNAL).
    pub code: i32,
}

/// What a request says about the last response of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// It answers no response: it only says which names the proxy wants
    /// (the type's first request, or a change of names).
    Subscribe,
    /// It accepts the last response.
    Ack,
    /// It rejects the last response.
    Nack(Nack),
    /// It answers a response older than the last one: ignored, as the
    /// answer to the last one is still to come.
    Stale,
}

/// What a request was, and whether it calls for a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub kind: RequestKind,
    /// The type's first request, or one that changed its names: the proxy
    /// gets a response even when nothing changed.
    pub respond: bool,
}

/// Where a resource the proxy was sent stands (as CSDS reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceStatus<'a> {
    /// The proxy ACKed the response that carried its current version.
    Acked,
    /// The proxy rejected the last response of its type.
    Nacked(&'a Nack),
    /// Sent, not answered yet.
    Requested,
}

/// One resource type on one stream.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Every resource of the type (LDS/CDS without names, or `*`; never
    /// any other type).
    wildcard: bool,
    names: BTreeSet<String>,
    last_sent_version: String,
    last_sent_nonce: String,
    /// Name → version of what the proxy holds (sent, or declared on a
    /// delta reconnect).
    sent: Versions,
    /// What the proxy held when it last ACKed.
    acked: Versions,
    nack: Option<Nack>,
}

impl Subscription {
    /// The subscription a type's first request opens.
    fn open(type_url: &str, names: &Names<'_>) -> Self {
        let (wildcard, sent) = match names {
            Names::Wanted(_) => (is_wildcard_type(type_url), Versions::default()),
            Names::Changed {
                subscribe,
                initial_versions,
                ..
            } => (
                is_wildcard_type(type_url) && subscribe.is_empty(),
                Arc::new(
                    initial_versions
                        .iter()
                        .map(|(name, version)| (name.as_str().into(), version.as_str().into()))
                        .collect(),
                ),
            ),
        };
        Self {
            wildcard,
            names: BTreeSet::new(),
            last_sent_version: String::new(),
            last_sent_nonce: String::new(),
            sent,
            acked: Versions::default(),
            nack: None,
        }
    }

    /// Whether the proxy wants resource `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// The names the proxy asked for (besides a wildcard).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub fn wildcard(&self) -> bool {
        self.wildcard
    }

    /// The version of the last response sent (empty before the first).
    pub fn last_sent_version(&self) -> &str {
        &self.last_sent_version
    }

    /// Name → version of every resource the proxy holds.
    pub fn sent(&self) -> &Versions {
        &self.sent
    }

    /// The version of `name` the proxy ACKed, if it did.
    pub fn acked_version(&self, name: &str) -> Option<&str> {
        self.acked.get(name).map(|version| &**version)
    }

    /// The proxy's last rejection, until it ACKs a later response.
    pub fn nack(&self) -> Option<&Nack> {
        self.nack.as_ref()
    }

    /// Where resource `name`, sent at `version`, stands.
    pub fn status(&self, name: &str, version: &str) -> ResourceStatus<'_> {
        if self.acked_version(name) == Some(version) {
            ResourceStatus::Acked
        } else if let Some(nack) = &self.nack {
            ResourceStatus::Nacked(nack)
        } else {
            ResourceStatus::Requested
        }
    }

    /// Records a response just sent; `holds` is every resource the proxy
    /// has after applying it (name → version).
    pub fn record_sent(&mut self, version: String, nonce: String, holds: Versions) {
        self.last_sent_version = version;
        self.last_sent_nonce = nonce;
        self.sent = holds;
    }

    /// What `request` says about the last response, recorded. A nonce
    /// before this stream sent anything of the type comes from the proxy's
    /// previous stream (a reconnect, maybe to another control plane): as in
    /// Istio, it subscribes, and any error it carries was about a response
    /// this stream never sent.
    fn answer(&mut self, request: &Request<'_>) -> RequestKind {
        let nonce = request.response_nonce;
        if !nonce.is_empty() && self.last_sent_nonce.is_empty() {
            return RequestKind::Subscribe;
        }
        if !nonce.is_empty() && nonce != self.last_sent_nonce {
            return RequestKind::Stale;
        }
        if let Some(error) = request.error {
            let nack = Nack {
                version: self.last_sent_version.clone(),
                nonce: nonce.to_string(),
                error: error.to_string(),
                code: request.error_code,
            };
            self.nack = Some(nack.clone());
            return RequestKind::Nack(nack);
        }
        if nonce.is_empty() {
            return RequestKind::Subscribe;
        }
        self.acked = self.sent.clone();
        self.nack = None;
        RequestKind::Ack
    }

    /// Applies the request's names; returns whether the proxy asked for
    /// anything new.
    fn update_names(&mut self, type_url: &str, names: &Names<'_>) -> bool {
        match names {
            Names::Wanted(wanted) => {
                let names: BTreeSet<String> = wanted.iter().cloned().collect();
                let wildcard =
                    is_wildcard_type(type_url) && (names.is_empty() || names.contains(WILDCARD));
                let changed = names != self.names || wildcard != self.wildcard;
                self.names = names;
                self.wildcard = wildcard;
                changed
            }
            Names::Changed {
                subscribe,
                unsubscribe,
                ..
            } => {
                // `*` means every resource only for a wildcard type; for
                // any other (SDS above all) it is a name no resource has,
                // so it subscribes to nothing.
                let wildcard_type = is_wildcard_type(type_url);
                for name in subscribe.iter() {
                    if name == WILDCARD && wildcard_type {
                        self.wildcard = true;
                    } else {
                        self.names.insert(name.clone());
                    }
                }
                for name in unsubscribe.iter() {
                    if name == WILDCARD && wildcard_type {
                        self.wildcard = false;
                    } else {
                        self.names.remove(name);
                        if self.sent.contains_key(name.as_str()) {
                            Arc::make_mut(&mut self.sent).remove(name.as_str());
                        }
                    }
                }
                !subscribe.is_empty()
            }
        }
    }
}

/// One stream's subscriptions, by type URL.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_type: BTreeMap<String, Subscription>,
}

impl Subscriptions {
    /// Records what a request says: opens its type's subscription on the
    /// type's first request, records an ACK or a NACK of the last response,
    /// and applies the names it asks for. A request that answers an older
    /// response than the last one changes nothing else.
    pub fn receive(&mut self, request: &Request<'_>) -> Received {
        let type_url = request.type_url;
        let first = !self.by_type.contains_key(type_url);
        let subscription = self
            .by_type
            .entry(type_url.to_string())
            .or_insert_with(|| Subscription::open(type_url, &request.names));
        let kind = subscription.answer(request);
        if kind == RequestKind::Stale {
            return Received {
                kind,
                respond: false,
            };
        }
        let changed = subscription.update_names(type_url, &request.names);
        Received {
            kind,
            respond: first || changed,
        }
    }

    pub fn get(&self, type_url: &str) -> Option<&Subscription> {
        self.by_type.get(type_url)
    }

    pub fn get_mut(&mut self, type_url: &str) -> Option<&mut Subscription> {
        self.by_type.get_mut(type_url)
    }

    /// Every subscription, by type URL.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Subscription)> {
        self.by_type
            .iter()
            .map(|(type_url, subscription)| (type_url.as_str(), subscription))
    }
}

#[cfg(test)]
mod tests;
