//! What a user sees of one scenario, as named facts: the status of each
//! request, the flags each access log line carries, which upstream served,
//! headers, stats. The agent's facts must equal Envoy's and the expected.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

/// Named facts, in the order stated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts(Vec<(String, String)>);

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) fact `name`.
    pub fn with(mut self, name: &str, value: impl Display) -> Self {
        self.set(name, value);
        self
    }

    /// Sets fact `name` (replacing an earlier value, keeping its place).
    pub fn set(&mut self, name: &str, value: impl Display) {
        let value = value.to_string();
        match self.0.iter_mut().find(|(key, _)| key == name) {
            Some(fact) => fact.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    /// The value of fact `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every fact's name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }
}

/// `≥ <bound>` when `elapsed` is at least `bound` (timing facts state lower
/// bounds only), else what it was.
pub fn at_least(elapsed: Duration, bound: Duration) -> String {
    if elapsed >= bound {
        format!("≥ {bound:?}")
    } else {
        format!("{elapsed:.2?} < {bound:?}")
    }
}

/// `value×count` for each distinct value, in first-seen order: `200×4
/// 503×2`.
pub fn tally<T: Display>(values: impl IntoIterator<Item = T>) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for value in values {
        let value = value.to_string();
        match counts.iter_mut().find(|(seen, _)| *seen == value) {
            Some((_, count)) => *count += 1,
            None => counts.push((value, 1)),
        }
    }
    if counts.is_empty() {
        return "none".to_string();
    }
    counts
        .iter()
        .map(|(value, count)| format!("{value}×{count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `value×count` for each distinct value, sorted: the same for any order.
pub fn sorted_tally<T: Display>(values: impl IntoIterator<Item = T>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value.to_string()).or_default() += 1;
    }
    tally(
        counts
            .into_iter()
            .flat_map(|(value, count)| std::iter::repeat_n(value, count)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_keep_their_order_and_replace_in_place() {
        let mut facts = Facts::new().with("status", 200).with("flags", "-");
        facts.set("status", 503);
        assert_eq!(facts.names().collect::<Vec<_>>(), ["status", "flags"]);
        assert_eq!(facts.get("status"), Some("503"));
        assert_eq!(facts.get("other"), None);
    }

    #[test]
    fn tallies_count_each_value() {
        assert_eq!(tally(["a", "b", "a"]), "a×2 b×1");
        assert_eq!(sorted_tally(["b", "a", "b"]), "a×1 b×2");
        assert_eq!(tally(Vec::<u16>::new()), "none");
    }

    #[test]
    fn lower_bounds_show_only_the_bound_when_met() {
        let second = Duration::from_secs(1);
        assert_eq!(at_least(Duration::from_millis(1200), second), "≥ 1s");
        assert_eq!(
            at_least(Duration::from_millis(300), second),
            "300.00ms < 1s"
        );
    }
}
