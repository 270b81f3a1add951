//! The config store: converts each xDS update into the model, builds the
//! next [`RunningConfig`] beside the current one and swaps it in atomically.
//! Readers load it once per connection or request, without locks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::RwLock;
use prost::Message;
use proto::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use proto::pb::envoy::config::listener::v3::Listener as PbListener;
use proto::pb::envoy::config::route::v3::RouteConfiguration;
use proto::wkt::Any;
use shared::type_url;
use tokio::sync::watch;

use crate::model::cluster::Discovery;
use crate::model::listener::ChainAction;
use crate::model::{self, RunningConfig};
use crate::xds::ConfigSink;

/// Called with every config about to be swapped in, before readers see it
/// (the upstream side reconciles its cluster runtimes here).
pub type ApplyHook = Box<dyn Fn(&RunningConfig) + Send + Sync>;

pub struct ConfigStore {
    current: ArcSwap<RunningConfig>,
    changes: watch::Sender<Arc<RunningConfig>>,
    hook: ApplyHook,
    /// The accepted resources as received, by type URL, for config_dump.
    accepted: RwLock<BTreeMap<String, Vec<Any>>>,
}

impl ConfigStore {
    pub fn new(hook: ApplyHook) -> Self {
        let initial = Arc::new(RunningConfig::default());
        let (changes, _) = watch::channel(initial.clone());
        Self {
            current: ArcSwap::new(initial),
            changes,
            hook,
            accepted: RwLock::new(BTreeMap::new()),
        }
    }

    /// The resources in force, as received, by type URL.
    pub fn accepted(&self) -> BTreeMap<String, Vec<Any>> {
        self.accepted.read().clone()
    }

    /// The config in force now.
    pub fn load(&self) -> Arc<RunningConfig> {
        self.current.load_full()
    }

    /// Notified after every swap.
    pub fn subscribe(&self) -> watch::Receiver<Arc<RunningConfig>> {
        self.changes.subscribe()
    }

    fn swap(&self, next: RunningConfig) {
        (self.hook)(&next);
        let next = Arc::new(next);
        self.current.store(next.clone());
        self.changes.send_replace(next);
    }
}

fn decode_all<M: Message + Default>(resources: &[Any], expected: &str) -> Result<Vec<M>, String> {
    resources
        .iter()
        .map(|any| {
            if any.type_url != expected {
                return Err(format!(
                    "resource of type {} in a {expected} response",
                    any.type_url
                ));
            }
            M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode {expected}: {e}"))
        })
        .collect()
}

/// Converts every resource; all errors are reported together, one per line.
fn convert_all<P, T>(
    protos: &[P],
    convert: impl Fn(&P) -> Result<T, model::Error>,
    name: impl Fn(&T) -> Arc<str>,
    previous: &HashMap<Arc<str>, Arc<T>>,
) -> Result<HashMap<Arc<str>, Arc<T>>, String>
where
    T: PartialEq,
{
    let mut out = HashMap::with_capacity(protos.len());
    let mut errors = Vec::new();
    for proto in protos {
        match convert(proto) {
            Ok(item) => {
                let key = name(&item);
                let item = match previous.get(&key) {
                    Some(old) if **old == item => old.clone(),
                    _ => Arc::new(item),
                };
                out.insert(key, item);
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

impl ConfigSink for ConfigStore {
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), String> {
        let current = self.load();
        let mut next = (*current).clone();
        match type_url {
            type_url::CLUSTER => {
                let protos: Vec<PbCluster> = decode_all(resources, type_url)?;
                next.clusters = convert_all(
                    &protos,
                    model::cluster_from_proto,
                    |c| c.name.clone(),
                    &current.clusters,
                )?;
            }
            type_url::ENDPOINT => {
                let protos: Vec<ClusterLoadAssignment> = decode_all(resources, type_url)?;
                next.endpoints = convert_all(
                    &protos,
                    model::load_assignment_from_proto,
                    |e| e.cluster_name.clone(),
                    &current.endpoints,
                )?;
            }
            type_url::LISTENER => {
                let protos: Vec<PbListener> = decode_all(resources, type_url)?;
                next.listeners = convert_all(
                    &protos,
                    model::listener_from_proto,
                    |l| l.name.clone(),
                    &current.listeners,
                )?;
            }
            type_url::ROUTE => {
                let protos: Vec<RouteConfiguration> = decode_all(resources, type_url)?;
                next.routes = convert_all(
                    &protos,
                    model::route_config_from_proto,
                    |r| r.name.clone(),
                    &current.routes,
                )?;
            }
            other => {
                return Err(format!(
                    "resource type {other} is not supported by this agent"
                ));
            }
        }
        self.swap(next);
        self.accepted
            .write()
            .insert(type_url.to_string(), resources.to_vec());
        Ok(())
    }

    fn wanted_names(&self, type_url: &str) -> Option<Vec<String>> {
        let config = self.load();
        match type_url {
            type_url::ENDPOINT => Some(
                config
                    .clusters
                    .values()
                    .filter_map(|c| match &c.discovery {
                        Discovery::Eds { service_name } => Some(service_name.to_string()),
                        _ => None,
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            ),
            type_url::ROUTE => Some(
                config
                    .listeners
                    .values()
                    .flat_map(|l| l.filter_chains.iter().chain(l.default_chain.iter()))
                    .filter_map(|c| match &c.action {
                        ChainAction::Http(hcm) if hcm.inline_routes.is_none() => {
                            Some(hcm.route_config_name.to_string())
                        }
                        _ => None,
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            ),
            _ => None,
        }
    }
}
