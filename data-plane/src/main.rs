//! `data-plane`: the agent. `data-plane proxy sidecar|router` subscribes to
//! the control plane over ADS and runs the proxy it describes.

/// The commands' larger parts.
mod cli {
    pub mod analyze;
    pub mod control_plane;
    pub mod dns;
    pub mod init;
    pub mod memory;
    pub mod node_args;
    pub mod open_files;
    pub mod proxy;
    pub mod proxy_config;
    pub mod sds;
    pub mod signal;
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use data_plane::admin::LogLevelError;
use shared::telemetry::{LogFormat, init_logging};
use tracing_subscriber::EnvFilter;

use cli::analyze::{AnalyzeArgs, analyze};
use cli::init::{InitArgs, cleanup, init};
use cli::proxy::{ProxyArgs, run};
use cli::sds::{SdsArgs, sds};

/// mimalloc: the proxy allocates and frees small buffers on every request;
/// glibc's malloc spent about a tenth of the agent's CPU time on them.
/// What a replaced config held is given back by `cli::memory`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "data-plane",
    version,
    about = "The mesh agent: a sidecar or egress gateway fed over ADS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written on stderr: `text` (coloured only on a
    /// terminal) or `json` (one object per line: time, level, target,
    /// message, fields).
    #[arg(long, global = true, env = "LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Proxy(Box<ProxyArgs>),
    /// Set up transparent capture (iptables REDIRECT to 15001), like
    /// istio-init; running it again changes nothing; `--cleanup` removes it.
    Init(InitArgs),
    /// Remove the capture rules `init` added (`init --cleanup`).
    Cleanup,
    /// Report every path out of this network namespace that bypasses the
    /// proxy, one line each; exit 1 if there is any.
    Analyze(AnalyzeArgs),
    /// Serve this proxy's certificate to a local Envoy over SDS on a Unix
    /// socket, as pilot-agent does: `default` and `ROOTCA`, from a key made
    /// here and a certificate from the control plane, renewed at half life.
    Sds(SdsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter_handle = init_logging(cli.log_format, "info");
    let set_log_level = Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|source| LogLevelError::Invalid {
            level: level.to_string(),
            source,
        })?;
        Ok(filter_handle.reload(filter)?)
    });
    let result = match cli.command {
        Command::Proxy(args) => run(*args, set_log_level),
        Command::Init(args) => init(&args),
        Command::Cleanup => cleanup(),
        Command::Analyze(args) => return analyze(&args),
        Command::Sds(args) => sds(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use clap::error::ErrorKind;

    use super::Cli;

    fn proxy(flags: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["data-plane", "proxy", "sidecar"].iter().chain(flags))
    }

    #[test]
    fn plaintext_refuses_the_tls_flags_it_would_ignore() {
        for flag in [
            ["--ca-root", "root-cert.pem"],
            ["--token", "token"],
            ["--xds-server-name", "istiod.example"],
            ["--trust-domain", "example.org"],
        ] {
            let error = proxy(&["--plaintext", flag[0], flag[1]])
                .err()
                .unwrap_or_else(|| panic!("--plaintext with {} is refused", flag[0]));
            assert_eq!(error.kind(), ErrorKind::ArgumentConflict, "{error}");
        }
        assert!(proxy(&["--plaintext"]).is_ok(), "defaults do not conflict");
        assert!(
            proxy(&[
                "--xds-server-name",
                "istiod.example",
                "--trust-domain",
                "example.org"
            ])
            .is_ok()
        );
    }

    #[test]
    fn the_dns_address_is_refused_without_dns_capture() {
        let error = proxy(&["--dns-addr", "127.0.0.1:25053"])
            .err()
            .expect("--dns-addr means nothing without --dns-capture");
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument, "{error}");
        assert!(proxy(&[]).is_ok(), "the default address needs no capture");
        assert!(proxy(&["--dns-capture", "--dns-addr", "127.0.0.1:25053"]).is_ok());
    }

    fn command(words: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["data-plane"].iter().chain(words))
    }

    #[test]
    fn init_refuses_flags_it_would_ignore() {
        let error = command(&["init", "--gateway-addresses", "192.0.2.10"])
            .err()
            .expect("gateway addresses mean nothing without --lockdown");
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument, "{error}");
        let error = command(&["init", "--lockdown"])
            .err()
            .expect("--lockdown without --capture-dns would refuse the app's DNS");
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument, "{error}");
        for flag in ["--lockdown", "--capture-dns"] {
            let error = command(&["init", "--cleanup", flag])
                .err()
                .unwrap_or_else(|| panic!("--cleanup with {flag} is refused"));
            assert_eq!(error.kind(), ErrorKind::ArgumentConflict, "{error}");
        }
        assert!(
            command(&[
                "init",
                "--lockdown",
                "--gateway-addresses",
                "192.0.2.10",
                "--capture-dns"
            ])
            .is_ok()
        );
        assert!(
            command(&["cleanup"]).is_ok(),
            "cleanup stays as init --cleanup"
        );
        assert!(command(&["analyze", "--admin-addr", "127.0.0.1:15000"]).is_ok());
    }
}
