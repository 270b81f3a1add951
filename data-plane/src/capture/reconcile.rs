//! From the rules in place to the wanted ones: the `iptables-restore
//! --noflush` input that rewrites our chains (a declared chain is created
//! or flushed), adds missing jumps, and removes duplicate or stale jumps
//! and chains we no longer want; nothing when everything is already in
//! place, so `init` can run again. Cleanup is the same reconciliation to no
//! rules at all. Built-in chains are never flushed: only our jumps leave
//! them. One table's changes commit atomically.

use std::collections::BTreeMap;

use super::plan::{FamilyRules, OWNED_CHAINS, TableRules};
use super::saved::{SavedRules, SavedTable, target};

/// The restore input turning `saved` into `wanted`, or `None` when `saved`
/// already holds exactly the wanted rules.
pub fn restore_input(saved: &SavedRules, wanted: &FamilyRules) -> Option<String> {
    let mut input = String::new();
    for (table, owned) in OWNED_CHAINS {
        let wanted_table = wanted.tables.iter().find(|t| t.table == table);
        let empty = SavedTable::default();
        let saved_table = saved.table(table).unwrap_or(&empty);
        if let Some(section) = table_changes(table, owned, saved_table, wanted_table) {
            input.push_str(&section);
        }
    }
    (!input.is_empty()).then_some(input)
}

/// One table's section of the restore input, if it needs a change.
fn table_changes(
    table: &str,
    owned: &[&str],
    saved: &SavedTable,
    wanted: Option<&TableRules>,
) -> Option<String> {
    let wanted_chains: BTreeMap<&str, &[String]> = wanted
        .map(|t| {
            t.chains
                .iter()
                .map(|c| (c.name, c.rules.as_slice()))
                .collect()
        })
        .unwrap_or_default();
    let rewritten: Vec<&str> = wanted_chains
        .iter()
        .filter(|(name, rules)| saved.chains.get(**name).map(Vec::as_slice) != Some(**rules))
        .map(|(name, _)| *name)
        .collect();
    let stale: Vec<&str> = owned
        .iter()
        .copied()
        .filter(|name| saved.chains.contains_key(*name) && !wanted_chains.contains_key(name))
        .collect();
    let mut missing: Vec<(&str, &str)> = wanted
        .map(|t| t.jumps.iter().map(|j| (j.from, j.rule.as_str())).collect())
        .unwrap_or_default();
    let mut removed = Vec::new();
    for (chain, rules) in &saved.chains {
        if !saved.policies.contains_key(chain) {
            continue;
        }
        for rule in rules {
            if !target(rule).is_some_and(|t| owned.contains(&t)) {
                continue;
            }
            match missing.iter().position(|(c, r)| c == chain && r == rule) {
                Some(found) => {
                    missing.remove(found);
                }
                None => removed.push((chain.as_str(), rule.as_str())),
            }
        }
    }
    if rewritten.is_empty() && stale.is_empty() && missing.is_empty() && removed.is_empty() {
        return None;
    }
    let mut section = format!("*{table}\n");
    for chain in rewritten.iter().chain(&stale) {
        section.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for (chain, rule) in &removed {
        section.push_str(&format!("-D {chain} {rule}\n"));
    }
    for chain in &stale {
        section.push_str(&format!("-X {chain}\n"));
    }
    for chain in &rewritten {
        for rule in wanted_chains[chain] {
            section.push_str(&format!("-A {chain} {rule}\n"));
        }
    }
    for (chain, rule) in &missing {
        section.push_str(&format!("-A {chain} {rule}\n"));
    }
    section.push_str("COMMIT\n");
    Some(section)
}

#[cfg(test)]
mod tests;
