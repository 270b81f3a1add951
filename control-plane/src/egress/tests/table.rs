//! `egress list`: the table and its filters.

use super::{destination, limits, observation, source};
use crate::egress::table::{Filter, render};
use crate::egress::{Decision, Inventory, InventoryFile, Protocol, Record};

fn records() -> Vec<Record> {
    let mut inventory = Inventory::new(limits(3));
    let sleep = source("default", "sleep");
    let batch = source("jobs", "batch");
    let seen = [
        (
            &sleep,
            destination("httpbin.org", 80, Protocol::Http),
            "default/httpbin",
            Decision::Allowed,
        ),
        (
            &sleep,
            destination("www.baidu.com", 443, Protocol::Tls),
            "PassthroughCluster",
            Decision::WouldBlock,
        ),
        (
            &batch,
            destination("203.0.113.7", 27017, Protocol::Tcp),
            "BlackHoleCluster",
            Decision::Blocked,
        ),
        (
            &batch,
            destination("example.com", 80, Protocol::Http),
            "PassthroughCluster",
            Decision::Allowed,
        ),
    ];
    for (at, (from, to, handled_by, decision)) in (1_700_000_000..).zip(seen) {
        inventory.observe(observation(from, to, handled_by, decision, at));
    }
    InventoryFile::of(&inventory).records
}

#[test]
fn the_table_lists_every_record_aligned_and_sorted() {
    let table = render(&records(), &Filter::default()).expect("rows");
    let expected = "\
NAMESPACE  WORKLOAD  DESTINATION    PORT   PROTOCOL  HANDLED BY          DECISION     COUNT  BYTES IN/OUT  CODES  FIRST SEEN            LAST SEEN
default    sleep     httpbin.org    80     HTTP      default/httpbin     allowed      1      100/1000      200:1  2023-11-14T22:13:20Z  2023-11-14T22:13:20Z
default    sleep     www.baidu.com  443    TLS       PassthroughCluster  would_block  1      100/1000      -      2023-11-14T22:13:21Z  2023-11-14T22:13:21Z
jobs       batch     203.0.113.7    27017  TCP       BlackHoleCluster    blocked      1      100/1000      -      2023-11-14T22:13:22Z  2023-11-14T22:13:22Z
jobs       batch     other          -      -         PassthroughCluster  allowed      1      100/1000      200:1  2023-11-14T22:13:23Z  2023-11-14T22:13:23Z
";
    assert_eq!(table, expected);
}

#[test]
fn the_filters_select_a_namespace_and_the_unregistered_destinations() {
    let destinations = |filter: &Filter| -> Vec<String> {
        render(&records(), filter)
            .map(|table| {
                table
                    .lines()
                    .skip(1)
                    .map(|line| line.split_whitespace().nth(2).expect("a cell").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let default = Filter {
        namespace: Some("default".to_string()),
        unregistered: false,
    };
    assert_eq!(destinations(&default), ["httpbin.org", "www.baidu.com"]);
    let unregistered = Filter {
        namespace: Some("default".to_string()),
        unregistered: true,
    };
    assert_eq!(destinations(&unregistered), ["www.baidu.com"]);
    let everywhere = Filter {
        namespace: None,
        unregistered: true,
    };
    assert_eq!(
        destinations(&everywhere),
        ["www.baidu.com", "203.0.113.7", "other"]
    );
    let nowhere = Filter {
        namespace: Some("none".to_string()),
        unregistered: false,
    };
    assert!(render(&records(), &nowhere).is_none());
}

#[test]
fn control_characters_are_stripped_from_every_cell() {
    let mut records = records();
    records[0].source.namespace = "def\u{1b}[2Jault".to_string();
    records[0].handled_by = "Passthrough\rCluster".to_string();
    if let Some(destination) = records[0].destination.as_mut() {
        destination.host = "httpbin\u{7}.org".to_string();
    }
    let table = render(&records, &Filter::default()).expect("rows");
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table:?}"
    );
    assert!(table.contains("def[2Jault"), "{table}");
    assert!(table.contains("httpbin.org"), "{table}");
    assert!(table.contains("PassthroughCluster"), "{table}");
}
