//! The config store: converts each xDS update into the model, builds the
//! next [`RunningConfig`] beside the current one and swaps it in atomically.
//! Readers load it once per connection or request, without locks. The
//! agent's own certificate comes in here too: each new one rebuilds the
//! clusters and listeners that use it, so new handshakes present it while
//! established connections go on with the config they started with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use prost::Message;
use proto::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use proto::pb::envoy::config::listener::v3::Listener as PbListener;
use proto::pb::envoy::config::route::v3::RouteConfiguration;
use proto::pb::envoy::extensions::transport_sockets::tls::v3::Secret as PbSecret;
use proto::wkt::Any;
use shared::type_url;
use tokio::sync::watch;

use crate::identity::WorkloadCertificate;
use crate::model::cluster::Discovery;
use crate::model::listener::ChainAction;
use crate::model::secret::{SecretSources, Secrets};
use crate::model::{self, Cluster, Listener, RunningConfig};
use crate::proxy::BindErrors;
use crate::xds::{ConfigSink, Rejection};

/// Called with every config about to be swapped in, before readers see it:
/// listener sockets are bound and cluster runtimes reconciled here. An
/// error rejects the update (NACK) and keeps the current config.
pub type ApplyHook = Box<dyn Fn(&RunningConfig) -> Result<(), BindErrors> + Send + Sync>;

/// Why an xDS update was rejected. It formats to one line: the NACK's
/// error_detail.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("resource of type {found} in a {expected} response")]
    WrongType { expected: String, found: String },
    #[error("cannot decode {type_url}: {error}")]
    Decode {
        type_url: String,
        error: prost::DecodeError,
    },
    /// Every resource that could not be converted, joined by `; `.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<model::Error>),
    #[error("resource type {0} is not supported by this agent")]
    UnsupportedType(String),
    #[error(transparent)]
    Bind(#[from] BindErrors),
}

/// The resources in force, as received, by type URL.
pub type Accepted = BTreeMap<String, Arc<[Any]>>;

pub struct ConfigStore {
    current: ArcSwap<RunningConfig>,
    changes: watch::Sender<Arc<RunningConfig>>,
    hook: ApplyHook,
    /// The accepted resources as received, by type URL, for config_dump.
    accepted: RwLock<Accepted>,
    /// Held while the next config is built and swapped in: xDS updates and
    /// new certificates come from different tasks.
    updating: Mutex<()>,
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
            updating: Mutex::new(()),
        }
    }

    /// The resources in force, as received, by type URL: shared, so that
    /// a reader (a config dump) holds them without copying.
    pub fn accepted(&self) -> Accepted {
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

    fn swap(&self, next: RunningConfig) -> Result<(), ApplyError> {
        (self.hook)(&next)?;
        let next = Arc::new(next);
        self.current.store(next.clone());
        self.changes.send_replace(next);
        Ok(())
    }

    /// Applies the complete set of `type_url` resources, or rejects them
    /// all and keeps the current config.
    pub fn update(&self, type_url: &str, resources: &[Any]) -> Result<(), ApplyError> {
        let _updating = self.updating.lock();
        let current = self.load();
        let mut next = (*current).clone();
        match type_url {
            type_url::CLUSTER => {
                next.clusters = clusters(resources, &current.secrets, &current.clusters)?;
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
                next.listeners = listeners(resources, &current.secrets, &current.listeners)?;
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
            type_url::SECRET => {
                next.secrets.ads = secrets(resources)?;
                self.rebuild_secret_users(&mut next, &current)?;
            }
            other => return Err(ApplyError::UnsupportedType(other.to_string())),
        }
        self.swap(next)?;
        self.accepted
            .write()
            .insert(type_url.to_string(), resources.into());
        Ok(())
    }
}

impl ConfigStore {
    /// Makes `certificate` the proxy's own (`default`, `ROOTCA` through
    /// `sds-grpc`) and rebuilds what uses it. On `Err` the previous
    /// certificate stays in use.
    pub fn set_identity(&self, certificate: &WorkloadCertificate) -> Result<(), ApplyError> {
        let _updating = self.updating.lock();
        let current = self.load();
        let mut next = (*current).clone();
        next.secrets.local = SecretSources::identity(
            certificate.chain_der().to_vec(),
            certificate.key_der(),
            certificate.root_der().to_vec(),
        );
        self.rebuild_secret_users(&mut next, &current)?;
        self.swap(next)
    }

    /// Applies every certificate `certificates` publishes, until it closes.
    /// One that cannot be used is logged and the previous one stays.
    pub async fn follow_identity(
        &self,
        mut certificates: watch::Receiver<Arc<WorkloadCertificate>>,
    ) {
        loop {
            let certificate = certificates.borrow_and_update().clone();
            if let Err(error) = self.set_identity(&certificate) {
                tracing::error!(
                    serial = certificate.serial(),
                    %error,
                    "cannot use the new workload certificate; keeping the previous one"
                );
            }
            if certificates.changed().await.is_err() {
                return;
            }
        }
    }

    /// Clusters and listeners embed the secrets they refer to: rebuilds
    /// them from what the control plane sent, with `next`'s secrets.
    fn rebuild_secret_users(
        &self,
        next: &mut RunningConfig,
        current: &RunningConfig,
    ) -> Result<(), ApplyError> {
        let accepted = self.accepted.read();
        if let Some(resources) = accepted.get(type_url::CLUSTER) {
            next.clusters = clusters(resources, &next.secrets, &current.clusters)?;
        }
        if let Some(resources) = accepted.get(type_url::LISTENER) {
            next.listeners = listeners(resources, &next.secrets, &current.listeners)?;
        }
        Ok(())
    }
}

fn decode_all<M: Message + Default>(
    resources: &[Any],
    expected: &str,
) -> Result<Vec<M>, ApplyError> {
    resources
        .iter()
        .map(|any| {
            if any.type_url != expected {
                return Err(ApplyError::WrongType {
                    expected: expected.to_string(),
                    found: any.type_url.clone(),
                });
            }
            M::decode(any.value.as_slice()).map_err(|error| ApplyError::Decode {
                type_url: expected.to_string(),
                error,
            })
        })
        .collect()
}

/// Every item, or every error.
fn all_or_errors<T>(
    results: impl IntoIterator<Item = Result<T, model::Error>>,
) -> Result<Vec<T>, ApplyError> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(item) => items.push(item),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(ApplyError::Invalid(errors))
    }
}

/// Converts every resource, keeping the previous `Arc` of those that did
/// not change; all errors are reported together.
fn convert_all<P, T>(
    protos: &[P],
    convert: impl Fn(&P) -> Result<T, model::Error>,
    name: impl Fn(&T) -> Arc<str>,
    previous: &HashMap<Arc<str>, Arc<T>>,
) -> Result<HashMap<Arc<str>, Arc<T>>, ApplyError>
where
    T: PartialEq,
{
    let items = all_or_errors(protos.iter().map(convert))?;
    Ok(items
        .into_iter()
        .map(|item| {
            let key = name(&item);
            let item = match previous.get(&key) {
                Some(old) if **old == item => old.clone(),
                _ => Arc::new(item),
            };
            (key, item)
        })
        .collect())
}

fn clusters(
    resources: &[Any],
    secrets: &SecretSources,
    previous: &HashMap<Arc<str>, Arc<Cluster>>,
) -> Result<HashMap<Arc<str>, Arc<Cluster>>, ApplyError> {
    let protos: Vec<PbCluster> = decode_all(resources, type_url::CLUSTER)?;
    convert_all(
        &protos,
        |c| model::cluster_from_proto(c, secrets),
        |c| c.name.clone(),
        previous,
    )
}

fn listeners(
    resources: &[Any],
    secrets: &SecretSources,
    previous: &HashMap<Arc<str>, Arc<Listener>>,
) -> Result<HashMap<Arc<str>, Arc<Listener>>, ApplyError> {
    let protos: Vec<PbListener> = decode_all(resources, type_url::LISTENER)?;
    convert_all(
        &protos,
        |l| model::listener_from_proto(l, secrets),
        |l| l.name.clone(),
        previous,
    )
}

/// The secrets of an SDS update, all or none.
fn secrets(resources: &[Any]) -> Result<Secrets, ApplyError> {
    let protos: Vec<PbSecret> = decode_all(resources, type_url::SECRET)?;
    let secrets = all_or_errors(protos.iter().map(model::secret_from_proto))?;
    Ok(secrets
        .into_iter()
        .map(|(name, secret)| (name, Arc::new(secret)))
        .collect())
}

impl ConfigSink for ConfigStore {
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), Rejection> {
        self.update(type_url, resources).map_err(Into::into)
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
            type_url::SECRET => Some(
                config
                    .clusters
                    .values()
                    .flat_map(|c| c.secret_names.iter())
                    .chain(
                        config
                            .listeners
                            .values()
                            .flat_map(|l| l.filter_chains.iter().chain(l.default_chain.iter()))
                            .filter_map(|c| c.tls.as_ref())
                            .flat_map(|tls| tls.secret_names.iter()),
                    )
                    .map(|name| name.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
