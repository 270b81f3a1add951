//! Real grpcurl against the control plane's xDS port, with every schema
//! learned from the server's reflection service, as an operator would
//! inspect it: over TLS trusting the mesh root (`-cacert`, `-servername`)
//! with a bearer token (`-H authorization: Bearer ..`), or in plaintext.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::binaries;
use crate::process::{self, CommandOutput};

/// Extra time allowed past `-max-time` before the harness kills grpcurl.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// `-max-time` of `list` and `describe`.
const QUERY_TIME: Duration = Duration::from_secs(10);

/// grpcurl aimed at one server.
#[derive(Debug, Clone)]
pub struct Grpcurl {
    addr: SocketAddr,
    /// `None` for plaintext.
    tls: Option<Tls>,
    /// What reflection calls carry in `authorization: Bearer ..`.
    reflection_token: Option<String>,
    /// What the calls themselves carry.
    call_token: Option<String>,
}

#[derive(Debug, Clone)]
struct Tls {
    root_cert: PathBuf,
    server_name: String,
}

impl Grpcurl {
    /// `-plaintext`.
    pub fn plaintext(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            reflection_token: None,
            call_token: None,
        }
    }

    /// TLS, trusting only `root_cert` and verifying `server_name`.
    pub fn tls(addr: SocketAddr, root_cert: &Path, server_name: &str) -> Self {
        Self {
            addr,
            tls: Some(Tls {
                root_cert: root_cert.to_path_buf(),
                server_name: server_name.to_string(),
            }),
            reflection_token: None,
            call_token: None,
        }
    }

    /// Sends `authorization: Bearer <token>` with every call, reflection
    /// included.
    pub fn bearer(self, token: &str) -> Self {
        Self {
            reflection_token: Some(token.to_string()),
            call_token: Some(token.to_string()),
            ..self
        }
    }

    /// The calls themselves carry `token` (or no token), while reflection
    /// keeps what [`Grpcurl::bearer`] gave it: so that a refused token is
    /// refused by the method called, not by reflection first.
    pub fn call_token(self, token: Option<&str>) -> Self {
        Self {
            call_token: token.map(str::to_string),
            ..self
        }
    }

    /// `grpcurl ADDR list`: the services, one a line.
    pub fn list(&self) -> Result<CommandOutput> {
        self.run(&[], &["list"], QUERY_TIME)
    }

    /// `grpcurl ADDR describe SYMBOL`.
    pub fn describe(&self, symbol: &str) -> Result<CommandOutput> {
        self.run(&[], &["describe", symbol], QUERY_TIME)
    }

    /// `grpcurl -max-time T -d REQUEST ADDR METHOD`. A stream
    /// the server keeps open ends at `max_time` with a non-zero exit; what
    /// arrived before is on stdout ([`messages`]).
    pub fn call(&self, method: &str, request: &Value, max_time: Duration) -> Result<CommandOutput> {
        self.run(&["-d", &request.to_string()], &[method], max_time)
    }

    /// CSDS `FetchClientStatus` for node `node_id`: the status of every
    /// resource of type `type_url` the server sent that proxy (its
    /// `genericXdsConfigs`, with `name`, `clientStatus`, `errorState`..).
    pub fn client_status(&self, node_id: &str, type_url: &str) -> Result<Vec<Value>> {
        let output = self.call(
            "envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus",
            &json!({ "node": { "id": node_id } }),
            QUERY_TIME,
        )?;
        output.ensure_success()?;
        let status = output.json()?;
        let configs = status["config"].as_array().cloned().unwrap_or_default();
        Ok(configs
            .iter()
            .flat_map(|config| {
                config["genericXdsConfigs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|resource| resource["typeUrl"] == type_url)
            .collect())
    }

    fn run(
        &self,
        flags: &[&str],
        after_addr: &[&str],
        max_time: Duration,
    ) -> Result<CommandOutput> {
        let mut command = Command::new(binaries::grpcurl()?);
        match &self.tls {
            None => {
                command.arg("-plaintext");
            }
            Some(tls) => {
                command
                    .arg("-cacert")
                    .arg(&tls.root_cert)
                    .args(["-servername", &tls.server_name]);
            }
        }
        let header = |token: &String| format!("authorization: Bearer {token}");
        if self.reflection_token == self.call_token {
            if let Some(token) = &self.call_token {
                command.arg("-H").arg(header(token));
            }
        } else {
            if let Some(token) = &self.reflection_token {
                command.arg("-reflect-header").arg(header(token));
            }
            if let Some(token) = &self.call_token {
                command.arg("-rpc-header").arg(header(token));
            }
        }
        command
            .arg("-max-time")
            .arg(format!("{:.3}", max_time.as_secs_f64()))
            .args(flags)
            .arg(self.addr.to_string())
            .args(after_addr);
        process::run("grpcurl", command, max_time + KILL_GRACE)
    }
}

/// The `(name, clientStatus)` of each resource [`Grpcurl::client_status`]
/// gave.
pub fn client_statuses(resources: &[Value]) -> BTreeSet<(String, String)> {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    resources
        .iter()
        .map(|resource| (text(&resource["name"]), text(&resource["clientStatus"])))
        .collect()
}

/// The JSON messages grpcurl printed, in order.
pub fn messages(stdout: &str) -> Result<Vec<Value>> {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .with_context(|| format!("grpcurl printed something other than JSON messages:\n{stdout}"))
}
