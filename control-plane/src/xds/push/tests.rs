//! What a push sends when one ServiceEntry of many changes: over delta,
//! the one changed cluster, with what the proxy then holds shared between
//! proxies; over state of the world, the clusters only.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use shared::type_url::{CLUSTER, LISTENER, ROUTE};

use crate::config::load::load_str;
use crate::translate::test_proxies::sidecar_in;
use crate::xds::cache::ProxySnapshot;
use crate::xds::cache::SnapshotCache;
use crate::xds::delta::Delta;
use crate::xds::sotw::StateOfTheWorld;
use crate::xds::state::MeshStatePublisher;
use crate::xds::stream::Protocol;
use crate::xds::subscription::{Names, Request, Subscription, Subscriptions, Versions};

const SERVICES: usize = 50;
/// What one push sent, type by type: the names of the resources it
/// carried, and what the proxy holds after it.
type Sent = Vec<(&'static str, Vec<String>, Versions)>;

const CHANGED_CLUSTER: &str = "outbound|80||changed.example.com";

/// `SERVICES` ServiceEntries on HTTP 80 and HTTPS 443, a VirtualService, and
/// one more ServiceEntry whose DNS endpoint is `backend-<revision>`.
fn mesh(revision: u32) -> Arc<crate::config::ConfigSnapshot> {
    let mut yaml = String::new();
    for i in 0..SERVICES {
        yaml.push_str(&format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext-{i}, namespace: default}}
spec:
  hosts: [service-{i}.example.com]
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  - {{number: 443, name: https, protocol: HTTPS}}
  resolution: DNS
---
"
        ));
    }
    yaml.push_str(&format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: changed, namespace: default}}
spec:
  hosts: [changed.example.com]
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  resolution: DNS
  endpoints:
  - address: backend-{revision}.example.net
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: service-0, namespace: default}}
spec:
  hosts: [service-0.example.com]
  http:
  - timeout: 3s
    route:
    - destination: {{host: service-0.example.com}}
"
    ));
    Arc::new(load_str(Path::new("mesh.yaml"), &yaml).expect("the mesh is valid"))
}

/// A sidecar's subscriptions (clusters and listeners by wildcard, route
/// `80`) as `P` opens them.
fn subscribe<P: Protocol>() -> Subscriptions {
    let route = ["80".to_string()];
    let no_versions = HashMap::new();
    let mut subscriptions = Subscriptions::default();
    for (type_url, names) in [(CLUSTER, &[][..]), (LISTENER, &[]), (ROUTE, &route)] {
        let names = if P::DELTA {
            Names::Changed {
                subscribe: names,
                unsubscribe: &[],
                initial_versions: &no_versions,
            }
        } else {
            Names::Wanted(names)
        };
        subscriptions.receive(&Request::new(type_url, "", None, names));
    }
    subscriptions
}

/// Pushes every type of `snapshot` to `subscriptions` as a mesh change
/// does (the first push as the subscriptions' responses), recording what
/// was sent.
fn push<P: Protocol>(
    subscriptions: &mut Subscriptions,
    snapshot: &ProxySnapshot,
    first: bool,
) -> Sent {
    let mut sent = Vec::new();
    for type_url in [CLUSTER, LISTENER, ROUTE] {
        let subscription: &mut Subscription = subscriptions.get_mut(type_url).expect("subscribed");
        if let Some(update) = P::update(subscription, snapshot, type_url, first) {
            let names = update
                .resources
                .iter()
                .map(|r| r.name.to_string())
                .collect();
            let holds = update.holds.clone();
            subscription.record_sent(update.version, format!("{type_url}-nonce"), update.holds);
            sent.push((type_url, names, holds));
        }
    }
    sent
}

/// Two sidecars of one namespace, pushed the mesh and then the mesh with
/// one ServiceEntry changed: what the second push sends each of them.
fn second_push<P: Protocol>() -> [Sent; 2] {
    let publisher = MeshStatePublisher::new(mesh(1));
    let cache = SnapshotCache::default();
    let proxies = [sidecar_in("default"), sidecar_in("default")];
    let mut subscriptions = [subscribe::<P>(), subscribe::<P>()];
    for (proxy, subscriptions) in proxies.iter().zip(&mut subscriptions) {
        let snapshot = cache.get(&publisher.current(), proxy);
        assert_eq!(push::<P>(subscriptions, &snapshot, true).len(), 3);
    }
    publisher.set_snapshot(mesh(2));
    let state = publisher.current();
    [0, 1].map(|i| {
        push::<P>(
            &mut subscriptions[i],
            &cache.get(&state, &proxies[i]),
            false,
        )
    })
}

#[test]
fn delta_sends_each_proxy_the_one_changed_cluster_and_shares_what_it_holds() {
    let [first, second] = second_push::<Delta>();
    for sent in [&first, &second] {
        let types: Vec<_> = sent.iter().map(|(type_url, ..)| *type_url).collect();
        assert_eq!(types, [CLUSTER], "only the clusters changed");
        assert_eq!(sent[0].1, [CHANGED_CLUSTER]);
        assert_eq!(sent[0].2.len(), 2 * SERVICES + 3, "every cluster is held");
    }
    assert!(
        Arc::ptr_eq(&first[0].2, &second[0].2),
        "proxies of one translation hold one shared set, not a copy each"
    );
}

#[test]
fn state_of_the_world_sends_only_the_clusters_whole() {
    let [first, second] = second_push::<StateOfTheWorld>();
    for sent in [&first, &second] {
        let types: Vec<_> = sent.iter().map(|(type_url, ..)| *type_url).collect();
        assert_eq!(types, [CLUSTER], "listeners and routes did not change");
        assert_eq!(
            sent[0].1.len(),
            2 * SERVICES + 3,
            "a response carries every cluster"
        );
        assert!(sent[0].1.iter().any(|name| name == CHANGED_CLUSTER));
    }
    assert!(Arc::ptr_eq(&first[0].2, &second[0].2));
}
