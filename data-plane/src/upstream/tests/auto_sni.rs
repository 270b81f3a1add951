//! `auto_sni` and `auto_san_validation`, as Envoy's router applies them:
//! the SNI is the request's host (its Host without the port) unless that
//! is an IP address, and the certificate must be valid for that name.

use crate::model::cluster::Trust;

use super::tls::{TestCa, origination};
use super::*;

const CLUSTER: &str = "tls";

async fn auto_sni_cluster(
    names: &[&str],
) -> (TestServer, Upstreams, Arc<Mutex<Vec<Option<String>>>>) {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(Some(TestCa::config_for(ca.issue(names), &[])), false).await;
    let mut tls = origination("", Trust::Roots(vec![ca.cert.to_vec()]));
    tls.auto_sni = true;
    tls.verify_server_name = true;
    let upstreams = upstreams(vec![with_tls(static_cluster(CLUSTER, &[server.addr]), tls)]);
    let snis = server.snis.clone();
    (server, upstreams, snis)
}

#[tokio::test]
async fn the_sni_is_each_requests_host_without_its_port() {
    let (_server, upstreams, snis) = auto_sni_cluster(&["api.test", "www.test"]).await;
    let (status, _, _) = fetch(&upstreams, CLUSTER, "api.test:8443", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _, _) = fetch(&upstreams, CLUSTER, "www.test", None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        *snis.lock(),
        vec![Some("api.test".to_string()), Some("www.test".to_string())],
        "one connection per name"
    );
}

#[tokio::test]
async fn auto_san_validation_refuses_a_certificate_not_for_the_requests_host() {
    let (_server, upstreams, snis) = auto_sni_cluster(&["api.test"]).await;
    let err = fetch(&upstreams, CLUSTER, "other.test", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.transport_failure_reason(),
        "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: verify SAN list:TLS_error_end"
    );
    assert_eq!(*snis.lock(), Vec::<Option<String>>::new());
}

#[tokio::test]
async fn an_ip_address_host_sends_no_sni() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(
        Some(TestCa::config_for(ca.issue(&["api.test"]), &[])),
        false,
    )
    .await;
    let mut tls = origination("", Trust::Roots(vec![ca.cert.to_vec()]));
    tls.auto_sni = true;
    tls.verify_server_name = false;
    let upstreams = upstreams(vec![with_tls(static_cluster(CLUSTER, &[server.addr]), tls)]);
    let (status, _, _) = fetch(&upstreams, CLUSTER, "127.0.0.1:8443", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(*server.snis.lock(), vec![None]);
}

#[tokio::test]
async fn without_auto_sni_the_clusters_sni_is_sent_whatever_the_host() {
    let ca = TestCa::new("test CA");
    let server = TestServer::start(
        Some(TestCa::config_for(ca.issue(&["api.test"]), &[])),
        false,
    )
    .await;
    let mut tls = origination("api.test", Trust::Roots(vec![ca.cert.to_vec()]));
    tls.verify_server_name = false;
    let upstreams = upstreams(vec![with_tls(static_cluster(CLUSTER, &[server.addr]), tls)]);
    fetch(&upstreams, CLUSTER, "www.test", None).await.unwrap();
    assert_eq!(*server.snis.lock(), vec![Some("api.test".to_string())]);
}
