//! Envoy's connection limits: the global one checked first, then the
//! listener's, each refusal counted on the listener.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::*;

fn admission(global: Option<u64>, per_listener: Option<u64>) -> Arc<Admission> {
    Arc::new(Admission::new(ConnectionLimits {
        global,
        per_listener,
        by_listener: BTreeMap::new(),
    }))
}

#[test]
fn istio_sets_a_global_limit_and_none_per_listener() {
    assert_eq!(
        ConnectionLimits::default(),
        ConnectionLimits {
            global: Some(2_147_483_647),
            per_listener: None,
            by_listener: BTreeMap::new(),
        }
    );
}

#[test]
fn past_the_global_limit_a_connection_is_refused_and_counted_as_global_overflow() {
    let admission = admission(Some(2), None);
    let (a, b) = (
        Arc::new(ListenerStats::default()),
        Arc::new(ListenerStats::default()),
    );
    let first = admission.admit(&a, "a").unwrap();
    let _second = admission.admit(&b, "b").unwrap();
    assert_eq!(admission.admit(&b, "b").unwrap_err(), Refusal::Global);
    assert_eq!(b.global_cx_overflow.load(Relaxed), 1);
    assert_eq!(b.cx_overflow.load(Relaxed), 0);
    assert_eq!(b.cx_active.load(Relaxed), 1);
    assert_eq!(admission.active(), 2);
    // Envoy counts open connections: one closing makes room.
    drop(first);
    assert_eq!(a.cx_active.load(Relaxed), 0);
    let _third = admission.admit(&b, "b").unwrap();
    assert_eq!(b.cx_active.load(Relaxed), 2);
}

#[test]
fn past_a_listeners_limit_only_that_listener_refuses() {
    let admission = admission(None, Some(1));
    let (a, b) = (
        Arc::new(ListenerStats::default()),
        Arc::new(ListenerStats::default()),
    );
    let _open = admission.admit(&a, "a").unwrap();
    assert_eq!(admission.admit(&a, "a").unwrap_err(), Refusal::Listener);
    assert_eq!(a.cx_overflow.load(Relaxed), 1);
    assert_eq!(a.global_cx_overflow.load(Relaxed), 0);
    // The refused connection is not counted open anywhere.
    assert_eq!(a.cx_active.load(Relaxed), 1);
    assert_eq!(admission.active(), 1);
    let _other = admission.admit(&b, "b").unwrap();
    assert_eq!(b.cx_overflow.load(Relaxed), 0);
}

#[test]
fn the_global_limit_is_checked_before_the_listeners() {
    let admission = admission(Some(1), Some(1));
    let a = Arc::new(ListenerStats::default());
    let _open = admission.admit(&a, "a").unwrap();
    assert_eq!(admission.admit(&a, "a").unwrap_err(), Refusal::Global);
    assert_eq!(a.global_cx_overflow.load(Relaxed), 1);
    assert_eq!(a.cx_overflow.load(Relaxed), 0);
}

#[test]
fn without_limits_everything_is_admitted() {
    let admission = admission(None, None);
    let a = Arc::new(ListenerStats::default());
    let open: Vec<_> = (0..1000)
        .map(|_| admission.admit(&a, "a").unwrap())
        .collect();
    assert_eq!(a.cx_active.load(Relaxed), 1000);
    drop(open);
    assert_eq!(admission.active(), 0);
}

#[test]
fn a_named_listeners_limit_holds_for_that_listener_alone_and_the_limit_of_every_listener_wins() {
    let admission = Arc::new(Admission::new(ConnectionLimits {
        global: None,
        per_listener: None,
        by_listener: BTreeMap::from([("0.0.0.0_80".to_string(), 1)]),
    }));
    let (named, other) = (
        Arc::new(ListenerStats::default()),
        Arc::new(ListenerStats::default()),
    );
    let _open = admission.admit(&named, "0.0.0.0_80").unwrap();
    assert_eq!(
        admission.admit(&named, "0.0.0.0_80").unwrap_err(),
        Refusal::Listener
    );
    let _others: Vec<_> = (0..3)
        .map(|_| admission.admit(&other, "0.0.0.0_443").unwrap())
        .collect();
    let limits = ConnectionLimits {
        per_listener: Some(5),
        ..admission.limits().clone()
    };
    assert_eq!(limits.of_listener("0.0.0.0_80"), Some(5));
    assert_eq!(limits.of_listener("0.0.0.0_443"), Some(5));
}
