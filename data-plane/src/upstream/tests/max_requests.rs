//! `max_requests_per_connection`: Envoy closes an upstream connection after
//! that many requests (1: no keep-alive), so the next request opens another.

use super::{TestServer, fetch, settle, static_cluster, upstreams};

const CLUSTER: &str = "outbound|80||httpbin.test";

async fn connections_for_three_requests(max: Option<u32>) -> usize {
    let server = TestServer::start(None, false).await;
    let mut cluster = static_cluster(CLUSTER, &[server.addr]);
    cluster.max_requests_per_connection = max;
    let upstreams = upstreams(vec![cluster]);
    for _ in 0..3 {
        let (status, _, _) = fetch(&upstreams, CLUSTER, "httpbin.test", None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        settle(&upstreams).await;
    }
    server.accepted()
}

#[tokio::test]
async fn one_request_per_connection_opens_a_connection_per_request() {
    assert_eq!(connections_for_three_requests(Some(1)).await, 3);
}

#[tokio::test]
async fn a_connection_is_reused_until_its_limit() {
    assert_eq!(connections_for_three_requests(Some(2)).await, 2);
    assert_eq!(connections_for_three_requests(None).await, 1);
}
