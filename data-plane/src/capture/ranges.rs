//! IP ranges as the capture flags take them (`*`, CIDRs, bare addresses),
//! kept in the canonical form iptables-save prints (`10.0.0.0/8`,
//! `10.0.0.1/32`, `2001:db8::/32`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::CaptureError;

/// An include list: everything (`*`) or these ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncludeRanges {
    All,
    Only(Vec<IpNet>),
}

/// Parses one range: a CIDR (host bits cleared, as iptables stores it) or
/// a bare address (a /32 or /128).
pub fn parse_range(range: &str) -> Result<IpNet, CaptureError> {
    let invalid = || CaptureError::InvalidRange(range.to_string());
    if range.contains('/') {
        range
            .parse::<IpNet>()
            .map(|net| net.trunc())
            .map_err(|_| invalid())
    } else {
        range
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| invalid())
    }
}

/// Parses a comma-separated list of CIDRs; `*` is not a range here (Istio
/// refuses it in an exclude list too).
pub fn parse_ranges(text: &str) -> Result<Vec<IpNet>, CaptureError> {
    text.split(',')
        .map(str::trim)
        .filter(|range| !range.is_empty())
        .map(parse_range)
        .collect()
}

/// Parses an include list: `*` alone, or CIDRs.
pub fn parse_include(text: &str) -> Result<IncludeRanges, CaptureError> {
    if text.split(',').any(|range| range.trim() == "*") {
        return Ok(IncludeRanges::All);
    }
    parse_ranges(text).map(IncludeRanges::Only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_the_form_iptables_save_prints() {
        let ranges = parse_ranges(" 10.1.2.3/8 , 192.0.2.7 ,2001:db8::1/32,::1").unwrap();
        let printed: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "::1/128"]
        );
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in ["10.0.0.0/33", "not-an-ip", "*", "2001:db8::/129"] {
            assert!(parse_ranges(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_star_includes_everything() {
        assert_eq!(parse_include("*").unwrap(), IncludeRanges::All);
        assert_eq!(parse_include("").unwrap(), IncludeRanges::Only(vec![]));
        assert_eq!(
            parse_include("10.0.0.0/24").unwrap(),
            IncludeRanges::Only(vec!["10.0.0.0/24".parse().unwrap()])
        );
    }
}
