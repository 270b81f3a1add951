//! Answers from the name table as pilot-agent's DNS proxy gives them.

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use proto::nds::NameTable;
use proto::nds::name_table::NameInfo;

use super::{Lookup, LookupTable, TTL};

fn names(hosts: &[(&str, &[&str])]) -> NameTable {
    NameTable {
        table: hosts
            .iter()
            .map(|(host, ips)| {
                let info = NameInfo {
                    ips: ips.iter().map(|ip| ip.to_string()).collect(),
                    registry: "External".to_string(),
                    ..Default::default()
                };
                (host.to_string(), info)
            })
            .collect::<BTreeMap<_, _>>(),
        name_info: None,
    }
}

fn table() -> LookupTable {
    LookupTable::new(
        &names(&[
            ("db.example.com", &["240.0.0.1", "240.0.0.2"]),
            ("dual.example.com", &["240.0.0.3", "2001:db8::3"]),
            ("*.wild.example.com", &["240.0.0.4"]),
            ("broken.example.com", &["not-an-ip"]),
        ]),
        &[
            "default.svc.cluster.local".to_string(),
            "svc.cluster.local".to_string(),
        ],
    )
}

fn lookup(name: &str, record_type: RecordType) -> Lookup {
    table().lookup(&Name::from_ascii(name).expect("name"), record_type)
}

/// Each answer as `(owner, TTL, data)` text.
fn rendered(lookup: Lookup) -> Vec<(String, u32, String)> {
    let Lookup::Answer(records) = lookup else {
        panic!("expected an answer, got {lookup:?}");
    };
    records
        .iter()
        .map(|record: &Record| {
            let data = match &record.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(aaaa) => aaaa.0.to_string(),
                RData::CNAME(cname) => format!("CNAME {}", cname.0),
                other => format!("{other:?}"),
            };
            (record.name.to_ascii(), record.ttl, data)
        })
        .collect()
}

#[test]
fn a_host_of_the_table_answers_with_its_addresses() {
    assert_eq!(
        rendered(lookup("db.example.com.", RecordType::A)),
        vec![
            ("db.example.com.".to_string(), TTL, "240.0.0.1".to_string()),
            ("db.example.com.".to_string(), TTL, "240.0.0.2".to_string()),
        ]
    );
    assert_eq!(
        rendered(lookup("DUAL.Example.COM.", RecordType::AAAA)),
        vec![(
            "DUAL.Example.COM.".to_string(),
            TTL,
            "2001:db8::3".to_string()
        )]
    );
}

#[test]
fn aaaa_for_a_v4_only_host_is_an_empty_answer_not_nxdomain() {
    assert_eq!(
        lookup("db.example.com.", RecordType::AAAA),
        Lookup::Answer(Vec::new())
    );
}

#[test]
fn other_names_and_other_types_go_upstream() {
    assert_eq!(lookup("httpbin.org.", RecordType::A), Lookup::Forward);
    assert_eq!(lookup("db.example.com.", RecordType::TXT), Lookup::Forward);
    assert_eq!(lookup("example.com.", RecordType::A), Lookup::Forward);
    assert_eq!(
        lookup("broken.example.com.", RecordType::A),
        Lookup::Forward
    );
}

#[test]
fn the_first_search_domain_variant_is_a_cname_to_the_host_with_its_records() {
    assert_eq!(
        rendered(lookup(
            "db.example.com.default.svc.cluster.local.",
            RecordType::A
        )),
        vec![
            (
                "db.example.com.default.svc.cluster.local.".to_string(),
                TTL,
                "CNAME db.example.com.".to_string()
            ),
            ("db.example.com.".to_string(), TTL, "240.0.0.1".to_string()),
            ("db.example.com.".to_string(), TTL, "240.0.0.2".to_string()),
        ]
    );
    assert_eq!(
        lookup(
            "db.example.com.default.svc.cluster.local.",
            RecordType::AAAA
        ),
        Lookup::Answer(Vec::new())
    );
    // Only the first search domain, as Istio.
    assert_eq!(
        lookup("db.example.com.svc.cluster.local.", RecordType::A),
        Lookup::Forward
    );
}

#[test]
fn a_wildcard_host_answers_for_names_below_it_by_the_name_asked() {
    assert_eq!(
        rendered(lookup("a.b.wild.example.com.", RecordType::A)),
        vec![(
            "a.b.wild.example.com.".to_string(),
            TTL,
            "240.0.0.4".to_string()
        )]
    );
    assert_eq!(lookup("wild.example.com.", RecordType::A), Lookup::Forward);
}
