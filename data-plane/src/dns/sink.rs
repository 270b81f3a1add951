//! The name table as one more xDS type: a config sink that applies NDS responses to the DNS proxy and hands every other type to the config store.

use std::sync::Arc;

use prost::Message;
use proto::nds::NameTable;
use proto::wkt::Any;
use shared::type_url::NAME_TABLE;

use super::DnsProxy;
use crate::xds::{ConfigSink, Rejection};

/// Why a name table update was rejected (the NACK's error_detail).
#[derive(Debug, thiserror::Error)]
pub enum NameTableError {
    #[error("resource of type {0} in a {NAME_TABLE} response")]
    WrongType(String),
    #[error("cannot decode {NAME_TABLE}: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// `inner` for every type, and the DNS proxy's table for NDS.
pub struct DnsSink {
    inner: Arc<dyn ConfigSink>,
    dns: Arc<DnsProxy>,
}

impl DnsSink {
    pub fn new(inner: Arc<dyn ConfigSink>, dns: Arc<DnsProxy>) -> Self {
        Self { inner, dns }
    }
}

impl ConfigSink for DnsSink {
    fn apply(&self, type_url: &str, resources: &[Any]) -> Result<(), Rejection> {
        if type_url != NAME_TABLE {
            return self.inner.apply(type_url, resources);
        }
        let table = merged(resources)?;
        self.dns.update(&table);
        Ok(())
    }

    fn wanted_names(&self, type_url: &str) -> Option<Vec<String>> {
        self.inner.wanted_names(type_url)
    }

    fn subscribes(&self, type_url: &str) -> bool {
        type_url == NAME_TABLE || self.inner.subscribes(type_url)
    }
}

/// One table of every host the resources name (istiod sends one).
fn merged(resources: &[Any]) -> Result<NameTable, NameTableError> {
    let mut table = NameTable::default();
    for any in resources {
        if any.type_url != NAME_TABLE {
            return Err(NameTableError::WrongType(any.type_url.clone()));
        }
        table
            .table
            .extend(NameTable::decode(any.value.as_slice())?.table);
    }
    Ok(table)
}

#[cfg(test)]
mod tests;
