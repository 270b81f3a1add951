//! `bench-upstream`: the upstream of `bench/run.sh`. An HTTP/1.1 server on
//! loopback that answers `/big` with a large body and every other path
//! with the same small one, as cheaply as hyper allows, so the proxies
//! under test are the bottleneck. With `--tls-name` it speaks TLS with a
//! certificate from a CA of its own (integration-tests' test CA), whose
//! certificate it writes to `--ca-out` for the clients and proxies to
//! trust; with `--delay-ms` every answer waits that long (the slow upstream).
//!
//! ```text
//! bench-upstream 127.0.0.1:18080
//! bench-upstream 127.0.0.1:18443 --tls-name tls.bench.local --ca-out /tmp/ca.pem
//! bench-upstream 127.0.0.1:18090 --delay-ms 1000
//! ```
//!
//! Not a test: benchmarks never run in CI.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use integration_tests::tls::TestCa;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const BODY: &[u8] = b"hello from the bench upstream\n";
/// The path answered with `--big-bytes` of body.
const BIG_PATH: &str = "/big";

#[derive(Parser)]
#[command(about = "The upstream of bench/run.sh")]
struct Args {
    /// Where to listen.
    #[arg(default_value = "127.0.0.1:18080")]
    addr: SocketAddr,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Speak TLS with a certificate for these names (repeatable).
    #[arg(long)]
    tls_name: Vec<String>,
    /// With --tls-name: where to write the CA certificate (PEM).
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// How long every answer waits, in milliseconds.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// The body size of `/big`.
    #[arg(long, default_value_t = 1 << 20)]
    big_bytes: usize,
}

/// What every connection answers with.
struct Answers {
    small: Bytes,
    big: Bytes,
    delay: Option<Duration>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let acceptor = match (args.tls_name.is_empty(), &args.ca_out) {
        (true, None) => None,
        (false, Some(ca_out)) => {
            let ca = TestCa::new()?;
            std::fs::write(ca_out, ca.cert_pem())
                .with_context(|| format!("writing {}", ca_out.display()))?;
            let names: Vec<&str> = args.tls_name.iter().map(String::as_str).collect();
            Some(TlsAcceptor::from(ca.server_config(&names, &[b"http/1.1"])?))
        }
        _ => bail!("--tls-name and --ca-out go together"),
    };
    let answers = Arc::new(Answers {
        small: Bytes::from_static(BODY),
        big: Bytes::from(vec![b'x'; args.big_bytes]),
        delay: args.delay_ms.map(Duration::from_millis),
    });
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args.addr, acceptor, answers))
}

async fn serve(
    addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    answers: Arc<Answers>,
) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("bench-upstream listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let answers = answers.clone();
        match &acceptor {
            None => {
                tokio::spawn(serve_connection(stream, answers));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, answers).await;
                    }
                });
            }
        }
    }
}

async fn serve_connection<S>(stream: S, answers: Arc<Answers>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let answers = answers.clone();
        async move {
            if let Some(delay) = answers.delay {
                tokio::time::sleep(delay).await;
            }
            let body = if request.uri().path() == BIG_PATH {
                answers.big.clone()
            } else {
                answers.small.clone()
            };
            let mut response = Response::new(Full::new(body));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok::<_, Infallible>(response)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
