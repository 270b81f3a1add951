//! The xDS protocol's rules for requests, as a stream records them: a
//! type's first request subscribes, a request naming the last response's
//! nonce ACKs it (or NACKs it, with an error), one naming an older nonce is
//! ignored, and names are replaced (state of the world) or changed one by
//! one (delta).

use std::collections::HashMap;

use shared::type_url::{CLUSTER, ENDPOINT, LISTENER};

use super::*;

/// A request as a test writes it.
#[derive(Default)]
struct Ask {
    type_url: &'static str,
    nonce: &'static str,
    error: Option<&'static str>,
    delta: bool,
    names: Vec<String>,
    unsubscribe: Vec<String>,
    initial_versions: HashMap<String, String>,
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

impl Ask {
    /// A state-of-the-world request for every name in `names`.
    fn sotw(type_url: &'static str, names: &[&str]) -> Self {
        Self {
            type_url,
            names: strings(names),
            ..Default::default()
        }
    }

    /// A delta request subscribing to `names`.
    fn delta(type_url: &'static str, names: &[&str]) -> Self {
        Self {
            type_url,
            delta: true,
            names: strings(names),
            ..Default::default()
        }
    }

    fn unsubscribing(self, names: &[&str]) -> Self {
        Self {
            unsubscribe: strings(names),
            ..self
        }
    }

    fn holding(self, versions: &[(&str, &str)]) -> Self {
        let initial_versions = versions
            .iter()
            .map(|(name, version)| (name.to_string(), version.to_string()))
            .collect();
        Self {
            initial_versions,
            ..self
        }
    }

    /// Accepts the response with `nonce`.
    fn acking(self, nonce: &'static str) -> Self {
        Self { nonce, ..self }
    }

    /// Rejects the response with `nonce`.
    fn nacking(self, nonce: &'static str, error: &'static str) -> Self {
        Self {
            nonce,
            error: Some(error),
            ..self
        }
    }

    fn to(&self, subscriptions: &mut Subscriptions) -> Received {
        let names = if self.delta {
            Names::Changed {
                subscribe: &self.names,
                unsubscribe: &self.unsubscribe,
                initial_versions: &self.initial_versions,
            }
        } else {
            Names::Wanted(&self.names)
        };
        subscriptions.receive(&Request {
            type_url: self.type_url,
            response_nonce: self.nonce,
            error: self.error,
            error_code: if self.error.is_some() { 13 } else { 0 },
            names,
        })
    }
}

/// Records a response of `type_url` after which the proxy holds `holds`.
fn send(
    subscriptions: &mut Subscriptions,
    type_url: &str,
    version: &str,
    nonce: &str,
    holds: &[(&str, &str)],
) {
    let holds = holds
        .iter()
        .map(|(name, version)| (Arc::from(*name), Arc::from(*version)))
        .collect();
    subscriptions
        .get_mut(type_url)
        .expect("subscribed")
        .record_sent(version.to_string(), nonce.to_string(), Arc::new(holds));
}

/// The subscriptions after `first` and a response to it (version `v1`,
/// nonce `1`) after which the proxy holds `a` at version `1`.
fn after_first_response(first: Ask) -> Subscriptions {
    let mut subscriptions = Subscriptions::default();
    first.to(&mut subscriptions);
    send(&mut subscriptions, first.type_url, "v1", "1", &[("a", "1")]);
    subscriptions
}

fn subscription<'a>(subscriptions: &'a Subscriptions, type_url: &str) -> &'a Subscription {
    subscriptions
        .iter()
        .find_map(|(subscribed, subscription)| (subscribed == type_url).then_some(subscription))
        .expect("subscribed")
}

fn received(kind: RequestKind, respond: bool) -> Received {
    Received { kind, respond }
}

#[test]
fn the_first_request_of_a_type_subscribes_and_calls_for_a_response() {
    let mut subscriptions = Subscriptions::default();
    assert_eq!(
        Ask::sotw(ENDPOINT, &["outbound|80||a.example"]).to(&mut subscriptions),
        received(RequestKind::Subscribe, true)
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert!(eds.wants("outbound|80||a.example"));
    assert!(!eds.wants("outbound|80||b.example"));
    assert!(!eds.wildcard());
    assert_eq!(eds.last_sent_version(), "", "nothing sent yet");
}

#[test]
fn a_reconnecting_proxy_with_its_previous_streams_nonce_subscribes_and_gets_a_response() {
    let mut subscriptions = Subscriptions::default();
    assert_eq!(
        Ask::sotw(CLUSTER, &[]).acking("7").to(&mut subscriptions),
        received(RequestKind::Subscribe, true)
    );
    assert_eq!(
        Ask::sotw(ENDPOINT, &["outbound|80||a.example"])
            .nacking("8", "rejected by the old stream")
            .to(&mut subscriptions),
        received(RequestKind::Subscribe, true)
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert!(eds.wants("outbound|80||a.example"));
    assert_eq!(
        eds.status("outbound|80||a.example", "1"),
        ResourceStatus::Requested
    );
}

#[test]
fn listeners_and_clusters_without_names_or_with_a_star_are_wildcard_subscriptions() {
    let mut subscriptions = Subscriptions::default();
    Ask::sotw(LISTENER, &[]).to(&mut subscriptions);
    Ask::sotw(CLUSTER, &["*"]).to(&mut subscriptions);
    Ask::sotw(ENDPOINT, &[]).to(&mut subscriptions);
    assert!(subscription(&subscriptions, LISTENER).wants("0.0.0.0_80"));
    assert!(subscription(&subscriptions, CLUSTER).wants("outbound|80||a.example"));
    assert!(
        !subscription(&subscriptions, ENDPOINT).wants("outbound|80||a.example"),
        "endpoints are asked for by name"
    );
}

#[test]
fn a_request_with_the_last_nonce_acks_that_response() {
    let mut subscriptions = after_first_response(Ask::sotw(CLUSTER, &[]));
    assert_eq!(
        subscription(&subscriptions, CLUSTER).status("a", "1"),
        ResourceStatus::Requested,
        "sent, not answered yet"
    );
    assert_eq!(
        Ask::sotw(CLUSTER, &[]).acking("1").to(&mut subscriptions),
        received(RequestKind::Ack, false),
        "an ACK asks for nothing new"
    );
    let cds = subscription(&subscriptions, CLUSTER);
    assert_eq!(cds.acked_version("a"), Some("1"));
    assert_eq!(cds.status("a", "1"), ResourceStatus::Acked);
}

#[test]
fn a_nack_records_the_rejected_version_and_error_and_keeps_the_last_ack() {
    let mut subscriptions = after_first_response(Ask::sotw(CLUSTER, &[]));
    Ask::sotw(CLUSTER, &[]).acking("1").to(&mut subscriptions);
    send(&mut subscriptions, CLUSTER, "v2", "2", &[("a", "2")]);

    let nack = Nack {
        version: "v2".to_string(),
        nonce: "2".to_string(),
        error: "bad cluster".to_string(),
        code: 13,
    };
    assert_eq!(
        Ask::sotw(CLUSTER, &[])
            .nacking("2", "bad cluster")
            .to(&mut subscriptions),
        received(RequestKind::Nack(nack.clone()), false),
        "the rejected version is not sent again"
    );
    let cds = subscription(&subscriptions, CLUSTER);
    assert_eq!(cds.nack(), Some(&nack));
    assert_eq!(cds.status("a", "2"), ResourceStatus::Nacked(&nack));
    assert_eq!(cds.acked_version("a"), Some("1"), "the proxy keeps v1");

    send(&mut subscriptions, CLUSTER, "v3", "3", &[("a", "3")]);
    Ask::sotw(CLUSTER, &[]).acking("3").to(&mut subscriptions);
    let cds = subscription(&subscriptions, CLUSTER);
    assert_eq!(cds.nack(), None, "an ACK of a later response clears it");
    assert_eq!(cds.status("a", "3"), ResourceStatus::Acked);
}

#[test]
fn a_request_answering_an_older_response_is_stale_and_changes_nothing() {
    let mut subscriptions = after_first_response(Ask::sotw(ENDPOINT, &["a"]));
    send(&mut subscriptions, ENDPOINT, "v2", "2", &[("a", "2")]);

    assert_eq!(
        Ask::sotw(ENDPOINT, &["a", "b"])
            .acking("1")
            .to(&mut subscriptions),
        received(RequestKind::Stale, false)
    );
    assert_eq!(
        Ask::sotw(ENDPOINT, &["a"])
            .nacking("1", "bad endpoints")
            .to(&mut subscriptions),
        received(RequestKind::Stale, false)
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert_eq!(eds.acked_version("a"), None, "not ACKed");
    assert_eq!(eds.nack(), None, "not NACKed");
    assert!(!eds.wants("b"), "names of a stale request are not applied");

    assert_eq!(
        Ask::sotw(ENDPOINT, &["a"])
            .acking("2")
            .to(&mut subscriptions),
        received(RequestKind::Ack, false),
        "the answer to the last response still counts"
    );
}

#[test]
fn state_of_the_world_names_replace_the_whole_set_and_a_change_calls_for_a_response() {
    let mut subscriptions = after_first_response(Ask::sotw(ENDPOINT, &["a"]));
    assert_eq!(
        Ask::sotw(ENDPOINT, &["b", "c"])
            .acking("1")
            .to(&mut subscriptions),
        received(RequestKind::Ack, true),
        "an ACK that changes the names asks for them"
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert!(!eds.wants("a"), "a name left out is unsubscribed");
    assert!(eds.wants("b") && eds.wants("c"));

    send(
        &mut subscriptions,
        ENDPOINT,
        "v2",
        "2",
        &[("b", "1"), ("c", "1")],
    );
    assert_eq!(
        Ask::sotw(ENDPOINT, &["c", "b"])
            .acking("2")
            .to(&mut subscriptions),
        received(RequestKind::Ack, false),
        "the same names in another order are no change"
    );
}

#[test]
fn delta_requests_subscribe_and_unsubscribe_name_by_name() {
    let mut subscriptions = Subscriptions::default();
    assert_eq!(
        Ask::delta(ENDPOINT, &["a"]).to(&mut subscriptions),
        received(RequestKind::Subscribe, true)
    );
    send(&mut subscriptions, ENDPOINT, "v1", "1", &[("a", "1")]);
    assert_eq!(
        Ask::delta(ENDPOINT, &["b"]).to(&mut subscriptions),
        received(RequestKind::Subscribe, true),
        "a new name asks for a response"
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert!(eds.wants("a") && eds.wants("b"), "names add up");

    assert_eq!(
        Ask::delta(ENDPOINT, &[])
            .unsubscribing(&["a"])
            .to(&mut subscriptions),
        received(RequestKind::Subscribe, false),
        "removing a name asks for nothing"
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert!(!eds.wants("a") && eds.wants("b"));
    assert!(
        !eds.sent().contains_key("a"),
        "the proxy drops what it unsubscribed from: subscribing again sends it again"
    );
}

#[test]
fn a_delta_ack_can_carry_subscription_changes() {
    let mut subscriptions = after_first_response(Ask::delta(ENDPOINT, &["a"]));
    assert_eq!(
        Ask::delta(ENDPOINT, &["b"])
            .acking("1")
            .to(&mut subscriptions),
        received(RequestKind::Ack, true)
    );
    let eds = subscription(&subscriptions, ENDPOINT);
    assert_eq!(eds.acked_version("a"), Some("1"));
    assert!(eds.wants("b"));
}

#[test]
fn delta_wildcard_types_subscribe_to_everything_without_names_and_a_star_toggles_it() {
    let mut subscriptions = Subscriptions::default();
    Ask::delta(CLUSTER, &[]).to(&mut subscriptions);
    assert!(subscription(&subscriptions, CLUSTER).wildcard());

    Ask::delta(LISTENER, &["0.0.0.0_80"]).to(&mut subscriptions);
    let lds = subscription(&subscriptions, LISTENER);
    assert!(!lds.wildcard(), "names on the first request: those only");
    assert!(lds.wants("0.0.0.0_80") && !lds.wants("0.0.0.0_443"));

    Ask::delta(LISTENER, &["*"]).to(&mut subscriptions);
    assert!(subscription(&subscriptions, LISTENER).wants("0.0.0.0_443"));
    Ask::delta(LISTENER, &[])
        .unsubscribing(&["*"])
        .to(&mut subscriptions);
    let lds = subscription(&subscriptions, LISTENER);
    assert!(
        !lds.wants("0.0.0.0_443"),
        "unsubscribing * ends the wildcard"
    );
    assert!(lds.wants("0.0.0.0_80"), "and keeps the names");

    Ask::delta(ENDPOINT, &[]).to(&mut subscriptions);
    assert!(
        !subscription(&subscriptions, ENDPOINT).wildcard(),
        "endpoints are asked for by name"
    );
}

#[test]
fn delta_initial_resource_versions_are_what_a_reconnecting_proxy_already_holds() {
    let mut subscriptions = Subscriptions::default();
    Ask::delta(CLUSTER, &[])
        .holding(&[("a", "1")])
        .to(&mut subscriptions);
    let cds = subscription(&subscriptions, CLUSTER);
    assert_eq!(cds.sent().get("a").map(|v| &**v), Some("1"));
    assert_eq!(
        cds.acked_version("a"),
        None,
        "held, not ACKed on this stream"
    );

    Ask::delta(CLUSTER, &[])
        .holding(&[("b", "1")])
        .to(&mut subscriptions);
    assert!(
        !subscription(&subscriptions, CLUSTER)
            .sent()
            .contains_key("b"),
        "only the type's first request on a stream declares them"
    );
}

#[test]
fn types_are_subscribed_to_and_answered_apart() {
    let mut subscriptions = Subscriptions::default();
    Ask::sotw(CLUSTER, &[]).to(&mut subscriptions);
    Ask::sotw(LISTENER, &[]).to(&mut subscriptions);
    send(&mut subscriptions, CLUSTER, "c1", "1", &[("a", "1")]);
    send(&mut subscriptions, LISTENER, "l1", "2", &[("l", "1")]);
    assert_eq!(
        Ask::sotw(CLUSTER, &[]).acking("1").to(&mut subscriptions),
        received(RequestKind::Ack, false),
        "each type has its own last nonce"
    );
    assert_eq!(
        subscription(&subscriptions, LISTENER).acked_version("l"),
        None
    );
    let types: Vec<&str> = subscriptions.iter().map(|(type_url, _)| type_url).collect();
    assert_eq!(types, [CLUSTER, LISTENER]);
}
