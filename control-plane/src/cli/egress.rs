//! `control-plane egress list|suggest`: the egress inventory a `serve --state-dir` keeps, as a table or as the ServiceEntries that would register what it saw.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use control_plane::egress::{self, InventoryFile, suggest, table};

#[derive(Subcommand)]
pub enum EgressCommand {
    /// Print the destinations workloads reached: namespace, workload,
    /// destination, port, protocol, the resource that handled it, the
    /// decision, count, bytes (from/to the workload), HTTP codes, first
    /// and last seen.
    List {
        #[command(flatten)]
        source: InventorySource,
        /// Only the destinations no ServiceEntry declares
        /// (PassthroughCluster, BlackHoleCluster).
        #[arg(long)]
        unregistered: bool,
    },
    /// Print a ServiceEntry (YAML, one document each) for every
    /// unregistered destination seen, one per source namespace and host,
    /// exported to that namespace only.
    Suggest {
        #[command(flatten)]
        source: InventorySource,
    },
}

#[derive(Args)]
pub struct InventorySource {
    /// The state directory `serve --state-dir` writes.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Only this source namespace's traffic.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
}

pub fn egress(command: EgressCommand) -> anyhow::Result<()> {
    match command {
        EgressCommand::List {
            source,
            unregistered,
        } => {
            let inventory = read(&source.state_dir)?;
            let filter = table::Filter {
                namespace: source.namespace.clone(),
                unregistered,
            };
            match table::render(&inventory.records, &filter) {
                Some(table) => print!("{table}"),
                None => eprintln!("{}", nothing_seen(&source, unregistered)),
            }
        }
        EgressCommand::Suggest { source } => {
            let inventory = read(&source.state_dir)?;
            let suggestions = suggest::suggestions(&inventory.records, source.namespace.as_deref());
            if suggestions.is_empty() {
                eprintln!("{}", nothing_seen(&source, true));
            } else {
                print!("{}", suggest::render(&suggestions));
            }
        }
    }
    Ok(())
}

/// The inventory in `dir`: empty while `serve` has recorded nothing; a
/// missing directory is an error that says which flag makes one.
fn read(dir: &Path) -> anyhow::Result<InventoryFile> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory: give the --state-dir of `control-plane serve`",
            dir.display()
        );
    }
    Ok(egress::load(dir)?.unwrap_or_default())
}

fn nothing_seen(source: &InventorySource, unregistered: bool) -> String {
    format!(
        "no {}egress recorded{}",
        if unregistered { "unregistered " } else { "" },
        source
            .namespace
            .as_ref()
            .map_or_else(String::new, |ns| format!(" from namespace {ns}"))
    )
}
