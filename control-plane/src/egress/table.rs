//! `control-plane egress list`: the records a filter selects, as an aligned table.

use std::time::{Duration, UNIX_EPOCH};

use super::handling::is_unregistered;
use super::inventory::{OTHER, Record};

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this source namespace's.
    pub namespace: Option<String>,
    /// Only destinations no ServiceEntry declares (handled by
    /// `PassthroughCluster` or `BlackHoleCluster`).
    pub unregistered: bool,
}

impl Filter {
    pub fn admits(&self, record: &Record) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|namespace| *namespace == record.source.namespace)
            && (!self.unregistered || is_unregistered(&record.handled_by))
    }
}

const HEADER: [&str; 12] = [
    "NAMESPACE",
    "WORKLOAD",
    "DESTINATION",
    "PORT",
    "PROTOCOL",
    "HANDLED BY",
    "DECISION",
    "COUNT",
    "BYTES IN/OUT",
    "CODES",
    "FIRST SEEN",
    "LAST SEEN",
];

/// The table of the records `filter` admits, sorted by namespace,
/// workload, destination and port; `None` when it admits none.
pub fn render(records: &[Record], filter: &Filter) -> Option<String> {
    let mut rows: Vec<[String; 12]> = records
        .iter()
        .filter(|record| filter.admits(record))
        .map(row)
        .collect();
    if rows.is_empty() {
        return None;
    }
    rows.sort_by(|a, b| {
        (&a[0], &a[1], &a[2], a[3].parse::<u32>().ok()).cmp(&(
            &b[0],
            &b[1],
            &b[2],
            b[3].parse::<u32>().ok(),
        ))
    });
    let header = HEADER.map(str::to_string);
    let mut widths = [0; 12];
    for cells in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for cells in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Some(out)
}

fn row(record: &Record) -> [String; 12] {
    let (destination, port, protocol) = match &record.destination {
        Some(d) => (d.host.clone(), d.port.to_string(), d.protocol.to_string()),
        None => (OTHER.to_string(), "-".to_string(), "-".to_string()),
    };
    let codes = if record.response_codes.is_empty() {
        "-".to_string()
    } else {
        record
            .response_codes
            .iter()
            .map(|(code, count)| format!("{code}:{count}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    [
        record.source.namespace.clone(),
        record.source.name().to_string(),
        destination,
        port,
        protocol,
        record.handled_by.clone(),
        record.decision.to_string(),
        record.count.to_string(),
        format!("{}/{}", record.received_bytes, record.sent_bytes),
        codes,
        timestamp(record.first_seen),
        timestamp(record.last_seen),
    ]
    .map(|cell| printable(&cell))
}

/// `text` without its control characters: what a table cell shows comes
/// from proxies or from a file, and must not drive the terminal.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

fn timestamp(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}
