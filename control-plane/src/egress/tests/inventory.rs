//! Records: one per source and destination, merged, bounded, folded.

use super::{destination, observation, source};
use crate::egress::{Decision, Inventory, Placement, Protocol, ResponseCodes};

#[test]
fn the_same_source_and_destination_add_up_in_one_record() {
    let sleep = source("default", "sleep");
    let httpbin = destination("httpbin.org", 80, Protocol::Http);
    let mut inventory = Inventory::new(10);
    let mut second = observation(
        &sleep,
        httpbin.clone(),
        "PassthroughCluster",
        Decision::Allowed,
        20,
    );
    second.response_code = Some(404);
    inventory.observe(second);
    inventory.observe(observation(
        &sleep,
        httpbin.clone(),
        "PassthroughCluster",
        Decision::Allowed,
        10,
    ));
    assert_eq!(inventory.len(), 1);
    let record = inventory.records().next().expect("one record");
    assert_eq!(record.destination.as_ref(), Some(&httpbin));
    assert_eq!(
        (record.count, record.received_bytes, record.sent_bytes),
        (2, 200, 2000)
    );
    assert_eq!((record.first_seen, record.last_seen), (10, 20));
    assert_eq!(
        record.response_codes,
        ResponseCodes::from([(200, 1), (404, 1)])
    );
}

#[test]
fn another_workload_or_port_or_protocol_is_another_record() {
    let mut inventory = Inventory::new(10);
    let sleep = source("default", "sleep");
    let other_ns = source("other", "sleep");
    for (from, to) in [
        (&sleep, destination("httpbin.org", 80, Protocol::Http)),
        (&other_ns, destination("httpbin.org", 80, Protocol::Http)),
        (&sleep, destination("httpbin.org", 8080, Protocol::Http)),
        (&sleep, destination("httpbin.org", 443, Protocol::Tls)),
    ] {
        inventory.observe(observation(
            from,
            to,
            "PassthroughCluster",
            Decision::Allowed,
            1,
        ));
    }
    assert_eq!(inventory.len(), 4);
}

#[test]
fn the_latest_handler_and_decision_win_and_older_ones_do_not_override_them() {
    let sleep = source("default", "sleep");
    let httpbin = destination("httpbin.org", 80, Protocol::Http);
    let mut inventory = Inventory::new(10);
    inventory.observe(observation(
        &sleep,
        httpbin.clone(),
        "PassthroughCluster",
        Decision::WouldBlock,
        10,
    ));
    inventory.observe(observation(
        &sleep,
        httpbin.clone(),
        "default/httpbin",
        Decision::Allowed,
        30,
    ));
    inventory.observe(observation(
        &sleep,
        httpbin,
        "BlackHoleCluster",
        Decision::Blocked,
        20,
    ));
    let record = inventory.records().next().expect("one record");
    assert_eq!(record.handled_by, "default/httpbin");
    assert_eq!(record.decision, Decision::Allowed);
    assert_eq!(record.count, 3);
}

#[test]
fn past_the_bound_new_destinations_fold_into_one_other_record_per_source() {
    let sleep = source("default", "sleep");
    let curl = source("default", "curl");
    let mut inventory = Inventory::new(2);
    let observe = |inventory: &mut Inventory, from, host: &str| {
        inventory.observe(observation(
            from,
            destination(host, 80, Protocol::Http),
            "PassthroughCluster",
            Decision::Allowed,
            5,
        ))
    };
    assert_eq!(observe(&mut inventory, &sleep, "a.example"), Placement::Own);
    assert_eq!(observe(&mut inventory, &sleep, "b.example"), Placement::Own);
    assert_eq!(
        observe(&mut inventory, &sleep, "c.example"),
        Placement::Folded
    );
    assert_eq!(
        observe(&mut inventory, &sleep, "d.example"),
        Placement::Folded
    );
    assert_eq!(
        observe(&mut inventory, &curl, "c.example"),
        Placement::Folded
    );
    assert_eq!(
        observe(&mut inventory, &sleep, "a.example"),
        Placement::Own,
        "a destination already recorded is still counted in its own record"
    );
    assert_eq!(inventory.len(), 4, "two destinations and two other records");
    let others: Vec<_> = inventory.records().filter(|r| r.is_other()).collect();
    assert_eq!(others.len(), 2);
    let sleep_other = others.iter().find(|r| r.source == sleep).expect("sleep's");
    assert_eq!(sleep_other.count, 2);
    assert_eq!(sleep_other.received_bytes, 200);
}
