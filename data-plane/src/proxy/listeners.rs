//! Keeps the bound sockets in line with the config: listeners whose
//! address did not change keep their socket (their filter chains are read
//! from the current config on every connection); new ones are bound;
//! removed or moved ones stop accepting and drain: their open connections
//! are asked to finish, and closed at the end of the drain time. The
//! connections of a filter chain an update removes or changes drain the
//! same way; those of unchanged chains go on. When the server drains,
//! every listener stops accepting. The sidecar's
//! `virtualOutbound` binds where the agent is told (loopback by default),
//! not at the control plane's wildcard address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::{Listener, RunningConfig};
use shared::naming::VIRTUAL_OUTBOUND_LISTENER;

use super::ProxyContext;
use super::admission::Admission;
use super::drain::{DrainScope, ServerDrain};
use super::outbound;

/// A listener whose address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("listener {listener:?}: cannot bind {address}: {error} ({advice})")]
pub struct BindError {
    pub listener: Arc<str>,
    pub address: SocketAddr,
    pub error: std::io::Error,
    /// What to check, or what moves the listener.
    pub advice: &'static str,
}

/// The advice of a listener bound where the control plane says.
const PORT_IN_USE: &str = "is the port in use?";
/// The advice of the sidecar's outbound listener, bound where the agent is
/// told.
const OUTBOUND_IN_USE: &str =
    "is another sidecar on this host using it? Give this one another with --outbound-addr";

/// Every listener of an update that could not be bound, joined by `; `.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct BindErrors(pub Vec<BindError>);

struct Bound {
    address: SocketAddr,
    accept: JoinHandle<()>,
    /// The drain of the connections this listener accepted.
    drain: Arc<DrainScope>,
}

/// Where this agent binds the listeners of its config: each at its own
/// address, except the sidecar's `virtualOutbound` (captured traffic and
/// the explicit proxy), bound at `outbound` when set. Istio's control plane
/// sends `0.0.0.0:15001`; bound there, the explicit proxy relays for anyone
/// who reaches the host, and only one sidecar fits on it. iptables'
/// REDIRECT of the app's own connections reaches a loopback address too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindPlan {
    pub outbound: Option<SocketAddr>,
}

impl BindPlan {
    /// The address `listener` is bound at.
    pub fn address(&self, listener: &Listener) -> SocketAddr {
        self.moved(listener).unwrap_or(listener.address)
    }

    /// The address `listener` is bound at instead of its own, if any.
    fn moved(&self, listener: &Listener) -> Option<SocketAddr> {
        self.outbound
            .filter(|_| &*listener.name == VIRTUAL_OUTBOUND_LISTENER)
    }

    /// What to say when `listener` cannot be bound.
    fn advice(&self, listener: &Listener) -> &'static str {
        match self.moved(listener) {
            Some(_) => OUTBOUND_IN_USE,
            None => PORT_IN_USE,
        }
    }
}

/// Sockets bound while an LDS update is applied, so that a port that cannot
/// be bound rejects the update (NACK) as Envoy does, instead of failing
/// later where nobody sees it.
///
/// Both maps sit behind one lock: a socket moves from prepared to active in
/// one step, so an update applied meanwhile never sees it in neither and
/// binds its port a second time.
#[derive(Default)]
pub struct ListenerSockets {
    state: Mutex<SocketState>,
    plan: BindPlan,
}

#[derive(Default)]
struct SocketState {
    /// Listener name → address the manager is accepting on.
    active: HashMap<Arc<str>, SocketAddr>,
    /// Bound for the next config, waiting for the manager.
    prepared: HashMap<Arc<str>, std::net::TcpListener>,
    /// The server drains: nothing more is bound.
    stopped: bool,
}

impl ListenerSockets {
    /// Sockets bound as `plan` says.
    pub fn new(plan: BindPlan) -> Self {
        Self {
            state: Mutex::default(),
            plan,
        }
    }

    /// Binds every listener of `config` that is not bound yet at its address.
    pub fn prepare(&self, config: &RunningConfig) -> Result<(), BindErrors> {
        let mut state = self.state.lock();
        let mut errors = Vec::new();
        if state.stopped {
            return Ok(());
        }
        for (name, listener) in config.listeners.iter().filter(|(_, l)| l.bind_to_port) {
            let address = self.plan.address(listener);
            let already = state.active.get(name) == Some(&address)
                || state
                    .prepared
                    .get(name)
                    .and_then(|socket| socket.local_addr().ok())
                    .is_some_and(|addr| addr == address);
            if already {
                continue;
            }
            match bind(address) {
                Ok(socket) => {
                    state.prepared.insert(name.clone(), socket);
                }
                Err(error) => errors.push(BindError {
                    listener: name.clone(),
                    address,
                    error,
                    advice: self.plan.advice(listener),
                }),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(BindErrors(errors))
        }
    }

    /// The socket prepared for `name` at `address`, now active.
    fn take(&self, name: &Arc<str>, address: SocketAddr) -> Option<std::net::TcpListener> {
        let mut state = self.state.lock();
        let socket = state.prepared.remove(name)?;
        if socket.local_addr().ok() != Some(address) {
            return None;
        }
        state.active.insert(name.clone(), address);
        Some(socket)
    }

    /// Records the listeners the manager accepts on.
    fn set_active(&self, active: HashMap<Arc<str>, SocketAddr>) {
        self.state.lock().active = active;
    }

    /// Binds nothing more, and closes what was bound for the manager.
    fn stop(&self) {
        let mut state = self.state.lock();
        state.stopped = true;
        state.prepared.clear();
        state.active.clear();
    }
}

fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = std::net::TcpListener::bind(address)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

pub struct ListenerManager {
    context: Arc<ProxyContext>,
    sockets: Arc<ListenerSockets>,
    bound: HashMap<Arc<str>, Bound>,
    /// True once the listeners of the first applied config are bound.
    ready: watch::Sender<bool>,
    drain: Arc<ServerDrain>,
    /// The connection limits every listener admits connections under.
    admission: Arc<Admission>,
}

impl ListenerManager {
    pub fn new(
        context: Arc<ProxyContext>,
        sockets: Arc<ListenerSockets>,
        ready: watch::Sender<bool>,
        (drain, admission): (Arc<ServerDrain>, Arc<Admission>),
    ) -> Self {
        Self {
            context,
            sockets,
            bound: HashMap::new(),
            ready,
            drain,
            admission,
        }
    }

    /// Follows config changes until the store goes away, or until the
    /// server drain stops the listeners.
    pub async fn run(mut self) {
        let mut changes = self.context.store.subscribe();
        let mut received = false;
        let drain = self.drain.clone();
        loop {
            let config = changes.borrow_and_update().clone();
            self.reconcile(&config).await;
            // A gateway may have no listeners yet: once any config has been
            // applied, what it asks for is bound.
            if received || !config.listeners.is_empty() {
                self.ready.send_replace(true);
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = drain.accepting_stopped() => {
                    self.stop();
                    return;
                }
            }
            received = true;
        }
    }

    /// Stops accepting on every listener; their connections go on.
    fn stop(&mut self) {
        self.sockets.stop();
        for (name, bound) in self.bound.drain() {
            tracing::info!(listener = %name, address = %bound.address, "stop accepting");
            bound.accept.abort();
        }
    }

    /// Stops accepting on a removed or moved listener and drains its
    /// connections (`listener_manager.total_listeners_draining` counts it
    /// until they are done or the drain time is over).
    fn drain_listener(&self, name: &str, bound: Bound) {
        tracing::info!(listener = %name, address = %bound.address, "listener removed or moved: stop accepting; open connections drain");
        bound.accept.abort();
        if !bound.drain.start() {
            return;
        }
        let stats = self.context.stats.clone();
        let settings = self.drain.settings;
        stats.lifecycle.listener_draining();
        let name = name.to_string();
        tokio::spawn(async move {
            bound.drain.done(settings).await;
            stats.lifecycle.listener_drained();
            tracing::info!(listener = %name, still_open = bound.drain.active(), "listener drained");
        });
    }

    /// Drains the connections of the filter chains an update removed or
    /// changed (`listener_manager.total_filter_chains_draining` counts
    /// each until its connections are done or the drain time is over).
    fn drain_chains(&self, config: &RunningConfig) {
        let settings = self.drain.settings;
        for scope in self.drain.chains.update(config) {
            if !scope.start() {
                continue;
            }
            if scope.active() > 0 {
                tracing::info!(
                    open = scope.active(),
                    "filter chain removed or changed: its connections drain"
                );
            }
            let stats = self.context.stats.clone();
            stats.lifecycle.filter_chain_draining();
            tokio::spawn(async move {
                scope.done(settings).await;
                stats.lifecycle.filter_chain_drained();
            });
        }
    }

    async fn reconcile(&mut self, config: &RunningConfig) {
        self.drain_chains(config);
        let wanted: HashMap<&Arc<str>, SocketAddr> = config
            .listeners
            .iter()
            .filter(|(_, l)| l.bind_to_port)
            .map(|(name, l)| (name, self.sockets.plan.address(l)))
            .collect();
        let gone: Vec<Arc<str>> = self
            .bound
            .iter()
            .filter(|(name, bound)| wanted.get(name) != Some(&bound.address))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(bound) = self.bound.remove(&name) {
                self.drain_listener(&name, bound);
            }
        }
        for (name, address) in wanted {
            if self.bound.contains_key(name) {
                continue;
            }
            let socket = match self.sockets.take(name, address) {
                Some(prepared) => TcpListener::from_std(prepared),
                None => TcpListener::bind(address).await,
            };
            match socket {
                Ok(socket) => {
                    tracing::info!(listener = %name, %address, "listening");
                    let drain = Arc::new(DrainScope::default());
                    let accept = tokio::spawn(outbound::accept_loop(
                        socket,
                        name.clone(),
                        self.context.clone(),
                        (self.drain.clone(), drain.clone()),
                        self.admission.clone(),
                    ));
                    self.bound.insert(
                        name.clone(),
                        Bound {
                            address,
                            accept,
                            drain,
                        },
                    );
                }
                Err(error) => {
                    tracing::error!(listener = %name, %address, %error, "cannot bind listener (is the port in use?)");
                }
            }
        }
        self.sockets.set_active(
            self.bound
                .iter()
                .map(|(name, bound)| (name.clone(), bound.address))
                .collect(),
        );
    }
}

impl Drop for ListenerManager {
    fn drop(&mut self) {
        for bound in self.bound.values() {
            bound.accept.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_listener(address: SocketAddr) -> RunningConfig {
        named_listener("0.0.0.0_8080", address)
    }

    fn named_listener(name: &str, address: SocketAddr) -> RunningConfig {
        let listener = Listener {
            name: name.into(),
            address,
            bind_to_port: true,
            use_original_dst: false,
            inspect_tls: false,
            filters_timeout: Default::default(),
            filter_chains: Vec::new(),
            default_chain: None,
        };
        let mut config = RunningConfig::default();
        config
            .listeners
            .insert(listener.name.clone(), Arc::new(listener));
        config
    }

    #[test]
    fn a_port_in_use_rejects_the_update() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sockets = ListenerSockets::default();
        let address = taken.local_addr().unwrap();
        let BindErrors(errors) = sockets.prepare(&config_with_listener(address)).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(&*errors[0].listener, "0.0.0.0_8080");
        assert_eq!(errors[0].address, address);
        assert_eq!(errors[0].error.kind(), std::io::ErrorKind::AddrInUse);
        let message = errors[0].to_string();
        assert!(message.ends_with("(is the port in use?)"), "{message}");
    }

    #[test]
    fn an_outbound_port_in_use_names_the_flag_that_moves_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let sockets = ListenerSockets::new(BindPlan {
            outbound: Some(address),
        });
        let config = named_listener(VIRTUAL_OUTBOUND_LISTENER, "0.0.0.0:15001".parse().unwrap());
        let BindErrors(errors) = sockets.prepare(&config).unwrap_err();
        let message = errors[0].to_string();
        assert!(message.contains(&address.to_string()), "{message}");
        assert!(
            message.ends_with("Give this one another with --outbound-addr)"),
            "{message}"
        );
    }

    /// A free port, and sockets that prepared a listener on it.
    fn prepared_free_port() -> (SocketAddr, ListenerSockets, RunningConfig) {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let sockets = ListenerSockets::default();
        let config = config_with_listener(free);
        sockets.prepare(&config).unwrap();
        (free, sockets, config)
    }

    #[test]
    fn a_free_port_is_bound_once_and_handed_over() {
        let (free, sockets, config) = prepared_free_port();
        sockets.prepare(&config).unwrap();
        let name = Arc::from("0.0.0.0_8080");
        assert!(sockets.take(&name, free).is_some());
        assert!(sockets.take(&name, free).is_none());
    }

    #[test]
    fn an_update_applied_while_the_manager_takes_a_socket_does_not_bind_it_again() {
        let (free, sockets, config) = prepared_free_port();
        // The manager has the socket but has not finished reconciling.
        let _taken = sockets.take(&Arc::from("0.0.0.0_8080"), free).unwrap();
        sockets
            .prepare(&config)
            .expect("the taken socket counts as bound");
    }

    #[test]
    fn virtual_outbound_binds_where_the_agent_is_told() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let wildcard: SocketAddr = "0.0.0.0:15001".parse().unwrap();
        let plan = BindPlan {
            outbound: Some(free),
        };
        let outbound = named_listener(VIRTUAL_OUTBOUND_LISTENER, wildcard);
        let listener = &outbound.listeners[VIRTUAL_OUTBOUND_LISTENER];
        assert_eq!(plan.address(listener), free);
        assert_eq!(
            BindPlan::default().address(listener),
            wildcard,
            "unset: the control plane's address"
        );
        let gateway = named_listener("0.0.0.0_8080", wildcard);
        assert_eq!(
            plan.address(&gateway.listeners["0.0.0.0_8080"]),
            wildcard,
            "other listeners keep their address"
        );
        let sockets = ListenerSockets::new(plan);
        sockets.prepare(&outbound).unwrap();
        let name = Arc::from(VIRTUAL_OUTBOUND_LISTENER);
        let socket = sockets
            .take(&name, free)
            .expect("bound at the plan's address");
        assert_eq!(socket.local_addr().unwrap(), free);
    }
}
