//! `data-plane analyze`: run in the app's network namespace, prints every
//! path out that bypasses the proxy (`bypass: ...`, one line each) and the
//! checks it could not make (`note: ...`); exits 1 if it found any path, 2
//! if it could not read the rules or a `--proxy-exe`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use clap::Args;
use data_plane::capture::analyze;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The agent's admin address, for the ServiceEntry addresses of its
    /// listeners (`/config_dump`); unreachable is a note, not a failure.
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], shared::ports::AGENT_ADMIN)))]
    pub admin_addr: SocketAddr,
    /// An Envoy binary the proxy runs (repeatable): its processes, like
    /// this `data-plane`'s, may use the uid/gid the rules exempt. Other
    /// processes running as those ids are reported, whatever their name.
    #[arg(long)]
    pub proxy_exe: Vec<PathBuf>,
}

/// This binary and the `--proxy-exe` paths, resolved as /proc/PID/exe
/// shows them.
fn proxy_executables(args: &AnalyzeArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut executables = vec![std::env::current_exe().context("find this data-plane binary")?];
    for path in &args.proxy_exe {
        let resolved = std::fs::canonicalize(path).with_context(|| {
            format!(
                "--proxy-exe {}: give the path of an existing binary",
                path.display()
            )
        })?;
        executables.push(resolved);
    }
    Ok(executables)
}

pub fn analyze(args: &AnalyzeArgs) -> ExitCode {
    let facts = match proxy_executables(args)
        .and_then(|executables| Ok(analyze::gather(args.admin_addr, executables)?))
    {
        Ok(facts) => facts,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let report = analyze::analyze(&facts);
    for note in &report.notes {
        println!("note: {note}");
    }
    for finding in &report.findings {
        println!("bypass: {finding}");
    }
    if report.findings.is_empty() {
        println!("no path out bypasses the proxy");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
