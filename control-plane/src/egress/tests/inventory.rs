//! Records: one per source and destination, merged, bounded, folded.

use super::{destination, limits, observation, source};
use crate::egress::{
    Decision, Inventory, Limits, OTHER, Placement, Protocol, ResponseCodes, SourceWorkload,
};

#[test]
fn the_same_source_and_destination_add_up_in_one_record() {
    let sleep = source("default", "sleep");
    let httpbin = destination("httpbin.org", 80, Protocol::Http);
    let mut inventory = Inventory::new(limits(10));
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
    let mut inventory = Inventory::new(limits(10));
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
    let mut inventory = Inventory::new(limits(10));
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
    let mut inventory = Inventory::new(limits(2));
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

fn observe_http(inventory: &mut Inventory, from: &SourceWorkload, host: &str) -> Placement {
    inventory.observe(observation(
        from,
        destination(host, 80, Protocol::Http),
        "PassthroughCluster",
        Decision::Allowed,
        5,
    ))
}

#[test]
fn one_namespace_past_its_quota_leaves_room_for_another_namespaces_records() {
    let noisy = source("noisy", "scanner");
    let quiet = source("quiet", "sleep");
    let mut inventory = Inventory::new(Limits {
        records: 4,
        per_namespace: 2,
        ..Limits::default()
    });
    let placements: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|host| observe_http(&mut inventory, &noisy, &format!("{host}.example")))
        .collect();
    assert_eq!(
        placements,
        [
            Placement::Own,
            Placement::Own,
            Placement::Folded,
            Placement::Folded,
            Placement::Folded
        ]
    );
    assert_eq!(
        observe_http(&mut inventory, &quiet, "a.example"),
        Placement::Own
    );
    assert_eq!(
        observe_http(&mut inventory, &quiet, "b.example"),
        Placement::Own
    );
    let quiet_hosts: Vec<_> = inventory
        .records()
        .filter(|r| r.source == quiet)
        .filter_map(|r| r.destination.as_ref().map(|d| d.host.as_str()))
        .collect();
    assert_eq!(quiet_hosts, ["a.example", "b.example"]);
    assert_eq!(
        observe_http(&mut inventory, &quiet, "c.example"),
        Placement::Folded,
        "the global bound still holds"
    );
}

#[test]
fn past_the_bound_on_other_records_a_namespaces_workloads_fold_into_its_workload_other() {
    let mut inventory = Inventory::new(Limits {
        records: 0,
        per_namespace: 0,
        other_records: 1,
    });
    let first = source("default", "first");
    assert_eq!(
        observe_http(&mut inventory, &first, "a.example"),
        Placement::Folded
    );
    for n in 0..10 {
        let workload = source("default", &format!("churn-{n}"));
        assert_eq!(
            observe_http(&mut inventory, &workload, "a.example"),
            Placement::FoldedIntoNamespace
        );
    }
    assert_eq!(
        observe_http(&mut inventory, &source("jobs", "batch"), "a.example"),
        Placement::FoldedIntoNamespace
    );
    assert_eq!(
        observe_http(&mut inventory, &first, "b.example"),
        Placement::Folded,
        "a workload's own other record still takes its traffic"
    );
    assert_eq!(
        inventory.len(),
        3,
        "first's, default's and jobs' other records"
    );
    let default_other = inventory
        .records()
        .find(|r| r.source == SourceWorkload::namespace_other("default"))
        .expect("default's other record");
    assert_eq!(default_other.source.name(), OTHER);
    assert!(default_other.is_other());
    assert_eq!(default_other.count, 10);
}
