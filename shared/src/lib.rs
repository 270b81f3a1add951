//! What both sides of the mesh must agree on, and nothing else: Istio's
//! access log formats, resource names, node identity and metadata keys, well-known ports, xDS type
//! URLs, the size a config regex may have, the workload metadata telemetry reads, and the tracing setup both
//! binaries use; and one piece of runtime both share, what their accept
//! loops do when an accept fails (`accept.rs`).

pub mod accept;
pub mod access_log;
pub mod egress;
pub mod identity;
pub mod naming;
pub mod node;
pub mod ports;
pub mod regex_limit;
pub mod telemetry;
pub mod type_url;
pub mod workload;
