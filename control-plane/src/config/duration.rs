//! Durations as Istio's YAML writes them (Go / protobuf style: `3s`, `100ms`,
//! `1m30s`, `1.5s`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: expected a number with a unit (h, m, s, ms, us, ns), e.g. 3s or 250ms"
)]
pub struct DurationError(String);

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || DurationError(text.to_string());
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(err());
        }
        let mut total_nanos: f64 = 0.0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            if number_len == 0 {
                return Err(err());
            }
            let value: f64 = rest[..number_len].parse().map_err(|_| err())?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let nanos_per_unit = match &rest[..unit_len] {
                "h" => 3_600e9,
                "m" => 60e9,
                "s" => 1e9,
                "ms" => 1e6,
                "us" | "µs" => 1e3,
                "ns" => 1.0,
                _ => return Err(err()),
            };
            rest = &rest[unit_len..];
            total_nanos += value * nanos_per_unit;
        }
        if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
            return Err(err());
        }
        Ok(Duration(std::time::Duration::from_nanos(
            total_nanos.round() as u64,
        )))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Duration {
    /// As a protobuf `Duration`.
    pub fn to_proto(self) -> proto::wkt::Duration {
        proto::wkt::Duration {
            seconds: self.0.as_secs() as i64,
            nanos: self.0.subsec_nanos() as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn parses_istio_durations() {
        for (text, expected) in [
            ("3s", Std::from_secs(3)),
            ("100ms", Std::from_millis(100)),
            ("1m30s", Std::from_secs(90)),
            ("1.5s", Std::from_millis(1500)),
            ("2h", Std::from_secs(7200)),
            ("0s", Std::ZERO),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().0, expected, "{text}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for text in ["", "3", "s", "3 s", "3x", "-1s", "1.2.3s"] {
            assert!(text.parse::<Duration>().is_err(), "{text}");
        }
    }
}
