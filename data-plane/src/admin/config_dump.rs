//! `/config_dump` in Envoy's shape: one `*ConfigDump` per resource type,
//! holding the dynamic resources as the control plane sent them. It is
//! written resource by resource (a route configuration virtual host by
//! virtual host, `config_dump/routes.rs`) as the client reads it, so a
//! large config streams in bounded memory, and the writing stops when the
//! client goes.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::StreamBody;
use prost::Message;
use proto::pb::envoy::admin::v3::{
    ClientResourceStatus, clusters_config_dump::DynamicCluster,
    endpoints_config_dump::DynamicEndpointConfig, listeners_config_dump::DynamicListener,
    listeners_config_dump::DynamicListenerState, routes_config_dump::DynamicRouteConfig,
};
use proto::wkt::Any;
use shared::type_url;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::store::{Accepted, ConfigStore};
use crate::xds::client::resource_name;

/// Dumps written at once; more wait for their turn (or their client to go).
pub const MAX_CONCURRENT_DUMPS: usize = 2;
/// The size of one chunk of the body handed to the connection.
const CHUNK: usize = 64 * 1024;
/// Chunks written ahead of the client.
const CHUNKS_AHEAD: usize = 4;

/// Why a dump stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("the client went away")]
    Cancelled,
    #[error("cannot write the config dump: {0}")]
    Json(#[from] proto::JsonError),
}

/// One `*ConfigDump` of the dump: the resources of `type_url` as the
/// elements of its `field`.
struct Section {
    /// The full name of the `*ConfigDump` message.
    dump_type: &'static str,
    field: &'static str,
    /// The full name of one element's message.
    element_type: &'static str,
    type_url: &'static str,
    element: fn(Any) -> Vec<u8>,
}

const ACKED: i32 = ClientResourceStatus::Acked as i32;

/// In Envoy's order: clusters, endpoints, listeners, routes.
const SECTIONS: [Section; 4] = [
    Section {
        dump_type: "envoy.admin.v3.ClustersConfigDump",
        field: "dynamic_active_clusters",
        element_type: "envoy.admin.v3.ClustersConfigDump.DynamicCluster",
        type_url: type_url::CLUSTER,
        element: |cluster| {
            DynamicCluster {
                cluster: Some(cluster),
                client_status: ACKED,
                ..Default::default()
            }
            .encode_to_vec()
        },
    },
    Section {
        dump_type: "envoy.admin.v3.EndpointsConfigDump",
        field: "dynamic_endpoint_configs",
        element_type: "envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig",
        type_url: type_url::ENDPOINT,
        element: |endpoint_config| {
            DynamicEndpointConfig {
                endpoint_config: Some(endpoint_config),
                client_status: ACKED,
                ..Default::default()
            }
            .encode_to_vec()
        },
    },
    Section {
        dump_type: "envoy.admin.v3.ListenersConfigDump",
        field: "dynamic_listeners",
        element_type: "envoy.admin.v3.ListenersConfigDump.DynamicListener",
        type_url: type_url::LISTENER,
        element: |listener| {
            DynamicListener {
                name: resource_name(&listener).unwrap_or_default(),
                active_state: Some(DynamicListenerState {
                    listener: Some(listener),
                    ..Default::default()
                }),
                client_status: ACKED,
                ..Default::default()
            }
            .encode_to_vec()
        },
    },
    Section {
        dump_type: "envoy.admin.v3.RoutesConfigDump",
        field: "dynamic_route_configs",
        element_type: "envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
        type_url: type_url::ROUTE,
        element: |route_config| {
            DynamicRouteConfig {
                route_config: Some(route_config),
                client_status: ACKED,
                ..Default::default()
            }
            .encode_to_vec()
        },
    },
];

/// Writes the dump of `accepted` to `out` as pretty-printed protobuf JSON
/// (`.proto` field names, like Envoy's), one resource at a time. An error
/// writing to `out` means the client went away.
pub fn write(accepted: &Accepted, out: &mut impl Write) -> Result<(), DumpError> {
    let io = |_: std::io::Error| DumpError::Cancelled;
    out.write_all(b"{\n  \"configs\": [\n").map_err(io)?;
    for (index, section) in SECTIONS.iter().enumerate() {
        write!(
            out,
            "    {{\n      \"@type\": \"type.googleapis.com/{}\"",
            section.dump_type
        )
        .map_err(io)?;
        let resources = accepted
            .get(section.type_url)
            .map(|r| &r[..])
            .unwrap_or(&[]);
        if !resources.is_empty() {
            write!(out, ",\n      \"{}\": [\n", section.field).map_err(io)?;
            for (position, resource) in resources.iter().enumerate() {
                out.write_all(ELEMENT_INDENT).map_err(io)?;
                if section.type_url == type_url::ROUTE {
                    routes::write(resource.clone(), out)?;
                } else {
                    let bytes = (section.element)(resource.clone());
                    let mut indented = Indented {
                        out: &mut *out,
                        indent: ELEMENT_INDENT,
                    };
                    write_json(section.element_type, &bytes, &mut indented)?;
                }
                let separator: &[u8] = if position + 1 < resources.len() {
                    b",\n"
                } else {
                    b"\n"
                };
                out.write_all(separator).map_err(io)?;
            }
            out.write_all(b"      ]").map_err(io)?;
        }
        let end: &[u8] = if index + 1 < SECTIONS.len() {
            b"\n    },\n"
        } else {
            b"\n    }\n"
        };
        out.write_all(end).map_err(io)?;
    }
    out.write_all(b"  ]\n}").map_err(io)
}

/// Writes the encoded message of type `type_name` to `out`, pretty JSON.
fn write_json(type_name: &str, bytes: &[u8], out: &mut impl Write) -> Result<(), DumpError> {
    proto::write_pretty_json_proto_names(type_name, bytes, out).map_err(|error| match error {
        proto::JsonError::Serialize { source, .. } if source.is_io() => DumpError::Cancelled,
        error => DumpError::Json(error),
    })
}

/// The depth of an element of a `*ConfigDump`'s list.
const ELEMENT_INDENT: &[u8] = b"        ";

/// Indents every line after the first by `indent`. A JSON string holds no
/// raw newline: each one starts a line of the message.
struct Indented<'a, W: Write> {
    out: &'a mut W,
    indent: &'a [u8],
}

impl<W: Write> Write for Indented<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut lines = bytes.split(|&byte| byte == b'\n');
        if let Some(first) = lines.next() {
            self.out.write_all(first)?;
        }
        for line in lines {
            self.out.write_all(b"\n")?;
            self.out.write_all(self.indent)?;
            self.out.write_all(line)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The dumps in progress, and those whose client left before their end.
#[derive(Debug)]
pub struct Dumps {
    permits: Arc<Semaphore>,
    active: AtomicUsize,
    cancelled: AtomicU64,
    bytes: AtomicU64,
}

impl Default for Dumps {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DUMPS)),
            active: AtomicUsize::new(0),
            cancelled: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Dumps {
    /// Dumps being written now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Dumps stopped (or never started) because their client went away.
    pub fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Bytes of dumps handed to their connections.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The admin's own series, Prometheus text.
    pub fn render_prometheus(&self, out: &mut String) {
        out.push_str(&format!(
            "# HELP admin_config_dumps_active Config dumps being written.\n\
             # TYPE admin_config_dumps_active gauge\n\
             admin_config_dumps_active {}\n\
             # HELP admin_config_dumps_cancelled_total Config dumps stopped because their client went away.\n\
             # TYPE admin_config_dumps_cancelled_total counter\n\
             admin_config_dumps_cancelled_total {}\n\
             # HELP admin_config_dump_bytes_total Bytes of config dumps handed to their connections.\n\
             # TYPE admin_config_dump_bytes_total counter\n\
             admin_config_dump_bytes_total {}\n",
            self.active(),
            self.cancelled(),
            self.bytes()
        ));
    }
}

/// A chunk of the body, or why the body stops short.
pub type DumpFrame = Result<Frame<Bytes>, DumpError>;

/// The body of one `/config_dump` response. It is written on the blocking
/// pool, at most [`MAX_CONCURRENT_DUMPS`] at once, a few chunks ahead of
/// the client; once the body is dropped (the client went away) the
/// writing stops, and a dump still waiting for its turn never starts.
pub fn stream(store: Arc<ConfigStore>, dumps: Arc<Dumps>) -> StreamBody<ReceiverStream<DumpFrame>> {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    tokio::spawn(async move {
        let permit = tokio::select! {
            permit = dumps.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = tx.closed() => {
                dumps.cancelled.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let accepted = store.accepted();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            dumps.active.fetch_add(1, Ordering::Relaxed);
            let mut out = Chunks {
                tx: &tx,
                dumps: &dumps,
                buffer: Vec::with_capacity(CHUNK),
            };
            let result = write(&accepted, &mut out).and_then(|()| out.send());
            match result {
                Ok(()) => {}
                Err(DumpError::Cancelled) => {
                    dumps.cancelled.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("config dump stopped: the client went away");
                }
                Err(error) => {
                    tracing::warn!(%error, "config dump failed");
                    let _ = tx.blocking_send(Err(error));
                }
            }
            dumps.active.fetch_sub(1, Ordering::Relaxed);
        });
    });
    StreamBody::new(ReceiverStream::new(rx))
}

/// Gathers writes into chunks of [`CHUNK`] bytes, sent as body frames.
struct Chunks<'a> {
    tx: &'a mpsc::Sender<DumpFrame>,
    dumps: &'a Dumps,
    buffer: Vec<u8>,
}

impl Chunks<'_> {
    /// Sends what is gathered; `Cancelled` once the body is gone.
    fn send(&mut self) -> Result<(), DumpError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let size = chunk.len() as u64;
        self.tx
            .blocking_send(Ok(Frame::data(Bytes::from(chunk))))
            .map_err(|_| DumpError::Cancelled)?;
        self.dumps.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }
}

impl Write for Chunks<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

mod routes;

#[cfg(test)]
mod tests;
