//! RING_HASH and MAGLEV clusters: a request's hash (its extension) sticks
//! it to one host; without a hash the host is random.

use std::collections::HashSet;

use crate::model::cluster::LbPolicy;
use crate::upstream::RequestHashKey;

use super::*;

async fn host_for(upstreams: &Upstreams, cluster: &str, hash: Option<u64>) -> SocketAddr {
    let mut req = get("hashed.test", "/get");
    if let Some(hash) = hash {
        req.extensions_mut().insert(RequestHashKey(hash));
    }
    let (_, info) = upstreams.send_http(cluster, req, None).await.unwrap();
    info.address
}

#[tokio::test]
async fn the_same_hash_reaches_the_same_host() {
    let servers = [
        TestServer::start(None, false).await,
        TestServer::start(None, false).await,
        TestServer::start(None, false).await,
    ];
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    for lb in [
        LbPolicy::RingHash {
            minimum_ring_size: 1024,
            maximum_ring_size: 8 * 1024 * 1024,
        },
        LbPolicy::Maglev { table_size: 65537 },
    ] {
        let mut cluster = static_cluster("hashed", &addrs);
        cluster.lb = lb;
        let upstreams = upstreams(vec![cluster]);
        assert!(upstreams.hashes("hashed"));
        let mut seen = HashSet::new();
        for key in 0..30u64 {
            let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let first = host_for(&upstreams, "hashed", Some(hash)).await;
            for _ in 0..3 {
                assert_eq!(
                    host_for(&upstreams, "hashed", Some(hash)).await,
                    first,
                    "{lb:?}"
                );
            }
            seen.insert(first);
        }
        assert_eq!(seen.len(), 3, "{lb:?}: hashes spread over every host");
        let mut unhashed = HashSet::new();
        for _ in 0..60 {
            unhashed.insert(host_for(&upstreams, "hashed", None).await);
        }
        assert!(unhashed.len() > 1, "{lb:?}: no hash picks at random");
    }
    let round_robin = upstreams(vec![static_cluster("rr", &addrs)]);
    assert!(!round_robin.hashes("rr"));
}
