//! A proxy's admin interface, which Envoy and our agent serve alike:
//! `GET <path>` over plain HTTP, and `/ready` answering 200 `LIVE` once
//! the proxy is initialized.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use crate::curl::{Curl, CurlResponse};

/// How long one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin interface of the proxy `proxy` (its name in errors) at `addr`.
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    proxy: &'static str,
    addr: SocketAddr,
}

impl Admin {
    pub fn new(proxy: &'static str, addr: SocketAddr) -> Self {
        Self { proxy, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// GET `path` (e.g. `/clusters`), whatever the status.
    pub fn get(&self, path: &str) -> Result<CurlResponse> {
        Curl::get(format!("http://{}{path}", self.addr))
            .max_time(REQUEST_TIMEOUT)
            .run()
    }

    /// `method` `path`, whatever the status.
    pub fn request(&self, method: &str, path: &str) -> Result<CurlResponse> {
        Curl::get(format!("http://{}{path}", self.addr))
            .max_time(REQUEST_TIMEOUT)
            .arg("-X")
            .arg(method)
            .run()
    }

    /// POST `path` (e.g. `/drain_listeners?graceful`); fails unless it
    /// answers 200.
    pub fn post(&self, path: &str) -> Result<CurlResponse> {
        let response = Curl::get(format!("http://{}{path}", self.addr))
            .max_time(REQUEST_TIMEOUT)
            .arg("-X")
            .arg("POST")
            .run()?;
        response
            .ensure_status(200)
            .with_context(|| format!("{} admin POST {path}", self.proxy))?;
        Ok(response)
    }

    /// GET `path`; fails unless it answers 200.
    pub fn ok(&self, path: &str) -> Result<CurlResponse> {
        let response = self.get(path)?;
        response
            .ensure_status(200)
            .with_context(|| format!("{} admin {path}", self.proxy))?;
        Ok(response)
    }

    /// Fails unless `/ready` answers 200 `LIVE` (refused connections
    /// included: the admin port is not bound yet).
    pub fn ensure_live(&self) -> Result<()> {
        let ready = self.get("/ready")?;
        ensure!(
            ready.status == 200 && ready.body.trim() == "LIVE",
            "/ready answered {} {:?} (curl exit code {})",
            ready.status,
            ready.body.trim(),
            ready.exit_code
        );
        Ok(())
    }
}
