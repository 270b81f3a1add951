//! DNS clusters against a fake DNS server: STRICT_DNS and LOGICAL_DNS resolution,
//! unknown names, a silent server, and re-resolution keeping the last good answer.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::model::cluster::Discovery;
use crate::upstream::dns::{DnsDiscovery, DnsError, Resolver};

use super::*;

fn dns_cluster(name: &str, hosts: &[(&str, u16)], logical: bool) -> Cluster {
    cluster(
        name,
        Discovery::Dns {
            assignment: assignment(name, hosts),
            logical,
        },
    )
}

fn upstreams_with_dns(server: SocketAddr, clusters: Vec<Cluster>) -> Upstreams {
    let upstreams = Upstreams::new(DnsConfig {
        server: Some(server),
    });
    upstreams.update(&config(clusters));
    upstreams
}

/// Fails the test instead of hanging if resolution is not bounded.
async fn bounded<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("the upstream call must not hang")
}

#[test]
fn building_needs_no_runtime() {
    let upstreams = Upstreams::new(DnsConfig::default());
    upstreams.update(&config(vec![dns_cluster(
        "d",
        &[("httpbin.test", 80)],
        false,
    )]));
    assert_eq!(upstreams.describe()[0].endpoints, Vec::new());
}

#[tokio::test]
async fn strict_dns_cluster_resolves_through_the_configured_server() {
    let dns = fake_dns(Some(records(&[("httpbin.test", Ipv4Addr::LOCALHOST)]))).await;
    let server = TestServer::start(None, false).await;
    let name = "outbound|80||httpbin.test";
    let upstreams = upstreams_with_dns(
        dns,
        vec![dns_cluster(
            name,
            &[("httpbin.test", server.addr.port())],
            false,
        )],
    );

    let (status, seen, info) = bounded(fetch(&upstreams, name, "httpbin.test", None))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(seen.starts_with("host=httpbin.test "), "{seen}");
    assert_eq!(info.address, server.addr);

    let status = &upstreams.describe()[0];
    assert_eq!(status.discovery, "STRICT_DNS");
    assert_eq!(status.dns_error, None);
    assert_eq!(status.endpoints.len(), 1);
    assert_eq!(
        status.endpoints[0].hostname.as_deref(),
        Some("httpbin.test")
    );

    let (_, used) = bounded(upstreams.connect_tcp(name, None)).await.unwrap();
    assert_eq!(used, server.addr);
    let ip = bounded(upstreams.resolve("httpbin.test")).await.unwrap();
    assert_eq!(ip, Ipv4Addr::LOCALHOST);
}

#[tokio::test]
async fn logical_dns_and_ip_literals() {
    let dns = fake_dns(Some(records(&[("api.test", Ipv4Addr::LOCALHOST)]))).await;
    let server = TestServer::start(None, false).await;
    let port = server.addr.port();
    let upstreams = upstreams_with_dns(
        dns,
        vec![
            dns_cluster("logical", &[("api.test", port)], true),
            dns_cluster("literal", &[("127.0.0.1", port)], false),
        ],
    );
    let (status, _, info) = bounded(fetch(&upstreams, "logical", "api.test", None))
        .await
        .unwrap();
    assert_eq!((status, info.address), (200, server.addr));
    let (status, _, info) = bounded(fetch(&upstreams, "literal", "api.test", None))
        .await
        .unwrap();
    assert_eq!((status, info.address), (200, server.addr));
    let literal = upstreams
        .describe()
        .into_iter()
        .find(|c| &*c.name == "literal")
        .unwrap();
    assert_eq!(literal.discovery, "STRICT_DNS");
    assert_eq!(literal.endpoints[0].hostname, None);
}

#[tokio::test]
async fn an_unknown_name_is_a_resolve_error() {
    let dns = fake_dns(Some(records(&[]))).await;
    let upstreams = upstreams_with_dns(
        dns,
        vec![dns_cluster("missing", &[("missing.test", 80)], false)],
    );
    let err = bounded(fetch(&upstreams, "missing", "missing.test", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Resolve { host, .. } if host == "missing.test"),
        "{err}"
    );
    assert_eq!(err.response_flag(), "UH");
    assert!(
        upstreams.describe()[0]
            .dns_error
            .as_deref()
            .unwrap()
            .starts_with("missing.test: ")
    );
    let err = bounded(upstreams.resolve("missing.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Resolve { host, .. } if host == "missing.test"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_dns_server_fails_within_the_connect_timeout() {
    let dns = fake_dns(None).await;
    let mut silent = dns_cluster("silent", &[("slow.test", 80)], false);
    silent.connect_timeout = Duration::from_millis(300);
    let upstreams = upstreams_with_dns(dns, vec![silent]);
    let err = bounded(fetch(&upstreams, "silent", "slow.test", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Resolve { host, reason } if host == "slow.test" && matches!(reason, DnsError::Timeout(_))),
        "{err}"
    );
}

#[tokio::test]
async fn re_resolution_follows_dns_and_keeps_the_last_good_addresses() {
    let names = records(&[("moving.test", Ipv4Addr::new(127, 0, 0, 2))]);
    let server = fake_dns(Some(names.clone())).await;
    let resolver = Arc::new(Resolver::new(&DnsConfig {
        server: Some(server),
    }));
    let targets = assignment("moving", &[("moving.test", 8080), ("127.0.0.9", 8081)]).endpoints;
    let discovery = DnsDiscovery::new(resolver, targets, false, Duration::from_secs(5));
    let addrs = |candidates: Vec<crate::upstream::lb::Candidate>| -> Vec<SocketAddr> {
        candidates.into_iter().map(|c| c.addr).collect()
    };

    let first = bounded(discovery.resolve()).await.unwrap();
    assert_eq!(first[0].hostname.as_deref(), Some("moving.test"));
    assert_eq!(first[1].hostname, None);
    assert_eq!(
        addrs(first),
        vec![
            "127.0.0.2:8080".parse().unwrap(),
            "127.0.0.9:8081".parse().unwrap()
        ]
    );

    names
        .lock()
        .insert("moving.test", Ipv4Addr::new(127, 0, 0, 3));
    let moved = addrs(bounded(discovery.resolve()).await.unwrap());
    assert_eq!(moved[0], "127.0.0.3:8080".parse().unwrap());
    assert_eq!(discovery.last_error(), None);

    names.lock().clear();
    let kept = addrs(bounded(discovery.resolve()).await.unwrap());
    assert_eq!(
        kept[0],
        "127.0.0.3:8080".parse().unwrap(),
        "a failed lookup keeps the last good address"
    );
    assert!(discovery.last_error().unwrap().starts_with("moving.test: "));
}
