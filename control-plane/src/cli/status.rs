//! `control-plane status DIR`: the conditions Istio would write on the
//! Gateway API objects of a config directory, as a table or as the
//! `status` stanzas Kubernetes would store (`-o yaml`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use control_plane::config::{self, gateway_api::status};

use super::table;

#[derive(Args)]
pub struct StatusOptions {
    /// The config directory (or file).
    dir: PathBuf,
    #[arg(long)]
    mesh: Option<PathBuf>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Table)]
    output: StatusFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusFormat {
    Table,
    Yaml,
}

/// Prints the statuses; exit 1 when a condition does not hold.
pub fn print_status(options: &StatusOptions) -> anyhow::Result<ExitCode> {
    let checked = config::load_checked(&options.dir, options.mesh.as_deref());
    for error in &checked.errors {
        eprintln!("error: {error}");
    }
    let statuses = &checked.gateway_api_status;
    match options.output {
        StatusFormat::Table if statuses.is_empty() => {
            println!("no Gateway API objects in {}", options.dir.display());
        }
        StatusFormat::Table => print!("{}", status_table(statuses)),
        StatusFormat::Yaml => print!("{}", status::to_yaml(statuses)?),
    }
    Ok(if statuses.iter().all(status::ObjectStatus::healthy) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The statuses as `validate` and `status` print them.
pub fn status_table(statuses: &[status::ObjectStatus]) -> String {
    let rows: Vec<Vec<String>> = status::table(statuses).into_iter().map(Vec::from).collect();
    table::render(&status::TABLE_HEADER, &rows)
}
