//! `data-plane analyze`: run in the app's network namespace, prints every
//! path out that bypasses the proxy (`bypass: ...`, one line each) and the
//! checks it could not make (`note: ...`); exits 1 if it found any path, 2
//! if it could not read the rules.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use data_plane::capture::analyze;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The agent's admin address, for the ServiceEntry addresses of its
    /// listeners (`/config_dump`); unreachable is a note, not a failure.
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], shared::ports::AGENT_ADMIN)))]
    pub admin_addr: SocketAddr,
}

pub fn analyze(args: &AnalyzeArgs) -> ExitCode {
    let facts = match analyze::gather(args.admin_addr) {
        Ok(facts) => facts,
        Err(error) => {
            eprintln!("error: {error}");
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
