//! A fake [`ConfigSink`] that records what it applies, wants what its
//! clusters and listeners refer to, and can be told to reject a type.

use std::collections::HashMap;

use parking_lot::Mutex;
use proto::wkt::Any;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET};

use crate::xds::client::resource_name;
use crate::xds::{ConfigSink, Rejection};

/// EDS wants the name of every applied cluster; RDS wants, for every
/// applied listener, the route configuration of the same name.
#[derive(Default)]
pub(super) struct FakeSink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    /// Every call to `apply`: the type and the resource names.
    applies: Vec<(String, Vec<String>)>,
    /// Types to reject, with the error to return.
    rejections: HashMap<String, String>,
    clusters: Vec<String>,
    listeners: Vec<String>,
}

impl FakeSink {
    pub(super) fn with_config(clusters: &[&str], listeners: &[&str]) -> Self {
        let sink = Self::default();
        {
            let mut state = sink.state.lock();
            state.clusters = clusters.iter().map(|c| c.to_string()).collect();
            state.listeners = listeners.iter().map(|l| l.to_string()).collect();
        }
        sink
    }

    pub(super) fn reject(&self, type_url: &str, error: &str) {
        self.state
            .lock()
            .rejections
            .insert(type_url.to_string(), error.to_string());
    }

    pub(super) fn accept(&self, type_url: &str) {
        self.state.lock().rejections.remove(type_url);
    }

    /// The resource names of the last apply of `type_url`.
    pub(super) fn last_applied(&self, type_url: &str) -> Vec<String> {
        let state = self.state.lock();
        let (_, names) = state
            .applies
            .iter()
            .rev()
            .find(|(t, _)| t == type_url)
            .expect("applied");
        names.clone()
    }

    pub(super) fn applied_types(&self) -> Vec<String> {
        self.state
            .lock()
            .applies
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }
}

impl ConfigSink for FakeSink {
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), Rejection> {
        let names: Vec<String> = resources.iter().filter_map(resource_name).collect();
        let mut state = self.state.lock();
        state.applies.push((type_url.to_string(), names.clone()));
        if let Some(error) = state.rejections.get(type_url) {
            return Err(error.clone().into());
        }
        match type_url {
            CLUSTER => state.clusters = names,
            LISTENER => state.listeners = names,
            _ => {}
        }
        Ok(())
    }

    fn wanted_names(&self, type_url: &str) -> Option<Vec<String>> {
        let state = self.state.lock();
        match type_url {
            ENDPOINT => Some(state.clusters.clone()),
            ROUTE => Some(state.listeners.clone()),
            SECRET => Some(Vec::new()),
            _ => None,
        }
    }
}
