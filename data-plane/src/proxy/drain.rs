//! Draining, as Envoy does it under pilot-agent: a drain asks every open
//! connection to finish (an HTTP/1.1 response gets `Connection: close`,
//! HTTP/2 a GOAWAY; a TCP proxy connection goes on) while new connections
//! are refused, and ends when the connections are done or the drain time
//! (`--drain-time-s`) has passed. The server drains on SIGTERM or
//! `/drain_listeners`; a listener drains when an update removes or moves it,
//! a filter chain when an update removes or changes it (see [`chains`]), and
//! their connections still open at the end of the drain time are closed.
//!
//! With the `immediate` strategy (pilot-agent's) every connection is asked
//! at once; with `gradual` (Envoy's own default) each at a moment drawn
//! uniformly over the drain time, so that a connection has been asked by
//! time `t` with probability `t / drain time`, as Envoy's drain decision.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fast_random;
use super::stats::Stats;
use super::stats::lifecycle::ServerState;
use crate::model::listener::{FilterChain, Listener};

pub mod chains;

use chains::ChainDrains;

/// When the open connections are asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStrategy {
    /// Each connection at a random moment of the drain time.
    Gradual,
    /// Every connection as the drain starts.
    Immediate,
}

/// How a drain goes.
#[derive(Debug, Clone, Copy)]
pub struct DrainSettings {
    /// The longest a drain lasts (`--drain-time-s`).
    pub time: Duration,
    pub strategy: DrainStrategy,
}

impl Default for DrainSettings {
    /// pilot-agent's: Envoy started with `--drain-time-s 45` (the mesh's
    /// `drainDuration`) and `--drain-strategy immediate`.
    fn default() -> Self {
        Self {
            time: Duration::from_secs(45),
            strategy: DrainStrategy::Immediate,
        }
    }
}

/// One thing that drains, the server or one listener: when its drain
/// started, and how many of its connections are open.
#[derive(Debug)]
pub struct DrainScope {
    started: watch::Sender<Option<Instant>>,
    active: watch::Sender<usize>,
}

impl Default for DrainScope {
    fn default() -> Self {
        Self {
            started: watch::Sender::new(None),
            active: watch::Sender::new(0),
        }
    }
}

impl DrainScope {
    /// Starts the drain now; false if it had started already.
    pub fn start(&self) -> bool {
        self.started.send_if_modified(|started| {
            if started.is_some() {
                return false;
            }
            *started = Some(Instant::now());
            true
        })
    }

    pub fn is_draining(&self) -> bool {
        self.started.borrow().is_some()
    }

    /// When the drain started, once it has.
    pub async fn started(&self) -> Instant {
        let mut started = self.started.subscribe();
        let at = started
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|at| *at);
        match at {
            Some(at) => at,
            None => std::future::pending().await,
        }
    }

    /// Connections open in this scope.
    pub fn active(&self) -> usize {
        *self.active.borrow()
    }

    /// Resolves when no connection of this scope is open.
    pub async fn idle(&self) {
        let _ = self.active.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Resolves when the drain that started at `started` has run for
    /// `settings.time`, or earlier once no connection is open.
    pub async fn done(&self, settings: DrainSettings) {
        let started = self.started().await;
        tokio::select! {
            () = self.idle() => {}
            () = tokio::time::sleep_until(started + settings.time) => {}
        }
    }

    fn enter(self: &Arc<Self>) -> Open {
        self.active.send_modify(|n| *n += 1);
        Open(self.clone())
    }
}

/// One open connection of a scope; counted until dropped.
#[derive(Debug)]
struct Open(Arc<DrainScope>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The server's drain: every connection is asked to finish, and the
/// listeners stop accepting, now or at the end of the drain time.
pub struct ServerDrain {
    pub scope: Arc<DrainScope>,
    pub settings: DrainSettings,
    stop_accepting: watch::Sender<bool>,
    /// Where `server.state` and the listeners draining are counted.
    pub stats: Arc<Stats>,
    /// The filter chains of the current listeners, and their drains.
    pub chains: Arc<ChainDrains>,
}

/// When the listeners stop accepting in a server drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAccepting {
    /// At once (SIGTERM; `/drain_listeners` without `graceful`).
    Now,
    /// At the end of the drain time (`/drain_listeners?graceful`): new
    /// connections are still served meanwhile, each asked to close.
    AfterDrainTime,
    /// Never (`skip_exit`).
    Never,
}

impl ServerDrain {
    pub fn new(settings: DrainSettings, stats: Arc<Stats>) -> Self {
        Self {
            scope: Arc::default(),
            settings,
            stop_accepting: watch::Sender::new(false),
            stats,
            chains: Arc::default(),
        }
    }

    /// Starts the drain (once: a second call changes nothing but may stop
    /// the listeners sooner) and stops the listeners as `stop` says.
    pub fn start(self: &Arc<Self>, stop: StopAccepting) {
        if self.scope.start() {
            tracing::info!(drain_time = ?self.settings.time, strategy = ?self.settings.strategy, "draining: open connections are asked to close");
            self.stats.lifecycle.set_server_state(ServerState::Draining);
        }
        match stop {
            StopAccepting::Now => self.stop_accepting(),
            StopAccepting::AfterDrainTime => {
                let drain = self.clone();
                tokio::spawn(async move {
                    let started = drain.scope.started().await;
                    tokio::time::sleep_until(started + drain.settings.time).await;
                    drain.stop_accepting();
                });
            }
            StopAccepting::Never => {}
        }
    }

    fn stop_accepting(&self) {
        if !self.stop_accepting.send_replace(true) {
            tracing::info!("listeners stop accepting");
        }
    }

    /// Resolves once the listeners must stop accepting.
    pub async fn accepting_stopped(&self) {
        let _ = self.stop_accepting.subscribe().wait_for(|stop| *stop).await;
    }

    /// The drain of a connection accepted by a listener of `listener`.
    pub fn connection(&self, listener: &Arc<DrainScope>) -> ConnectionDrain {
        let delay = match self.settings.strategy {
            DrainStrategy::Immediate => Duration::ZERO,
            DrainStrategy::Gradual => {
                let fraction = (fast_random() >> 11) as f64 / (1u64 << 53) as f64;
                self.settings.time.mul_f64(fraction)
            }
        };
        ConnectionDrain {
            server: self.scope.clone(),
            listener: listener.clone(),
            chain: watch::Sender::new(None),
            chains: self.chains.clone(),
            delay,
            time: self.settings.time,
            _open: [self.scope.enter(), listener.enter()],
        }
    }
}

/// One connection's place in the drains: asked to close when the server,
/// its listener or its filter chain drains, closed when the drain time of
/// its listener or filter chain is over.
#[derive(Debug)]
pub struct ConnectionDrain {
    server: Arc<DrainScope>,
    listener: Arc<DrainScope>,
    /// The filter chain's scope, once the chain is chosen.
    chain: watch::Sender<Option<Open>>,
    /// Where the filter chains' scopes are.
    chains: Arc<ChainDrains>,
    /// How long after a drain starts this connection is asked to close
    /// (zero with the immediate strategy).
    delay: Duration,
    /// The drain time, after which its listener's drain closes it.
    time: Duration,
    _open: [Open; 2],
}

tokio::task_local! {
    /// The drain of the connection this task serves.
    static CONNECTION: Arc<ConnectionDrain>;
}

impl ConnectionDrain {
    /// Runs `connection` (its handling, from accept to close) counted as
    /// open, with [`notified`] answering for it; stops it, closing its
    /// sockets, when its listener's drain time is over.
    pub async fn run(self, connection: impl Future<Output = ()>) {
        let drain = Arc::new(self);
        let deadline = drain.clone();
        CONNECTION
            .scope(drain, async move {
                tokio::select! {
                    () = connection => {}
                    () = deadline.listener_deadline() => {
                        tracing::debug!("listener drain time over; closing the connection");
                    }
                }
            })
            .await;
    }

    /// Counts this connection in `chain` of `listener`, the filter chain
    /// chosen for it (`current`: that listener as applied now), whose drain
    /// it follows from now on.
    pub fn join_chain(
        &self,
        listener: &Arc<Listener>,
        chain: &FilterChain,
        current: Option<&Arc<Listener>>,
    ) {
        let scope = self.chains.scope(listener, chain, current);
        self.chain.send_replace(Some(scope.enter()));
    }

    /// When the drain of this connection's filter chain started, once it
    /// has.
    async fn chain_started(&self) -> Instant {
        let mut chain = self.chain.subscribe();
        let scope = chain
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|open| open.as_ref().map(|open| open.0.clone()));
        match scope {
            Some(scope) => scope.started().await,
            None => std::future::pending().await,
        }
    }

    /// Resolves when this connection is to be asked to close.
    async fn asked(&self) {
        let started = tokio::select! {
            at = self.server.started() => at,
            at = self.listener.started() => at,
            at = self.chain_started() => at,
        };
        tokio::time::sleep_until(started + self.delay).await;
    }

    /// Whether this connection has been asked to close by now.
    pub fn is_asked(&self) -> bool {
        let chain = self
            .chain
            .borrow()
            .as_ref()
            .and_then(|open| *open.0.started.borrow());
        let started = [&self.server, &self.listener]
            .into_iter()
            .filter_map(|scope| *scope.started.borrow())
            .chain(chain)
            .min();
        started.is_some_and(|at| Instant::now() >= at + self.delay)
    }

    /// Resolves when the drain time of this connection's listener or
    /// filter chain is over.
    async fn listener_deadline(&self) {
        let started = tokio::select! {
            at = self.listener.started() => at,
            at = self.chain_started() => at,
        };
        tokio::time::sleep_until(started + self.time).await;
    }
}

/// The drain of the connection the calling task serves; none outside a
/// connection (a test calling a handler directly).
pub fn current() -> Option<Arc<ConnectionDrain>> {
    CONNECTION.try_with(Arc::clone).ok()
}

/// Resolves when the connection the calling task serves is asked to
/// close; never outside a connection.
pub async fn notified() {
    match current() {
        Some(drain) => drain.asked().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
