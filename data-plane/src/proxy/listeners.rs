//! Keeps the bound sockets in line with the config: listeners whose
//! address did not change keep their socket (their filter chains are read
//! from the current config on every connection); new ones are bound;
//! removed ones stop accepting while their open connections finish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::RunningConfig;

use super::ProxyContext;
use super::outbound;

struct Bound {
    address: SocketAddr,
    accept: JoinHandle<()>,
}

pub struct ListenerManager {
    context: Arc<ProxyContext>,
    bound: HashMap<Arc<str>, Bound>,
    /// True once the listeners of the first applied config are bound.
    ready: watch::Sender<bool>,
}

impl ListenerManager {
    pub fn new(context: Arc<ProxyContext>, ready: watch::Sender<bool>) -> Self {
        Self {
            context,
            bound: HashMap::new(),
            ready,
        }
    }

    /// Follows config changes until the store goes away.
    pub async fn run(mut self) {
        let mut changes = self.context.store.subscribe();
        let mut received = false;
        loop {
            let config = changes.borrow_and_update().clone();
            self.reconcile(&config).await;
            // A gateway may have no listeners yet: once any config has been
            // applied, what it asks for is bound.
            if received || !config.listeners.is_empty() {
                self.ready.send_replace(true);
            }
            if changes.changed().await.is_err() {
                return;
            }
            received = true;
        }
    }

    async fn reconcile(&mut self, config: &RunningConfig) {
        let wanted: HashMap<&Arc<str>, SocketAddr> = config
            .listeners
            .iter()
            .filter(|(_, l)| l.bind_to_port)
            .map(|(name, l)| (name, l.address))
            .collect();
        self.bound.retain(|name, bound| {
            let keep = wanted.get(name) == Some(&bound.address);
            if !keep {
                tracing::info!(listener = %name, address = %bound.address, "listener removed or moved: stop accepting; open connections finish");
                bound.accept.abort();
            }
            keep
        });
        for (name, address) in wanted {
            if self.bound.contains_key(name) {
                continue;
            }
            match TcpListener::bind(address).await {
                Ok(socket) => {
                    tracing::info!(listener = %name, %address, "listening");
                    let accept = tokio::spawn(outbound::accept_loop(
                        socket,
                        name.clone(),
                        self.context.clone(),
                    ));
                    self.bound.insert(name.clone(), Bound { address, accept });
                }
                Err(error) => {
                    tracing::error!(listener = %name, %address, %error, "cannot bind listener (is the port in use?)");
                }
            }
        }
    }
}

impl Drop for ListenerManager {
    fn drop(&mut self) {
        for bound in self.bound.values() {
            bound.accept.abort();
        }
    }
}
