//! Subject alt name matching of a server certificate, as Envoy's default
//! certificate validator does it: any configured matcher matching any SAN
//! of its type accepts the certificate; an exact DNS matcher follows DNS
//! rules (case insensitive, a `*.` certificate name covers one label), every
//! other matcher compares the SAN as text.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::model::cluster::{SanType, SubjectAltName};
use crate::model::route::StringMatch;

/// The subject alt names of a DER certificate, in its order, with their
/// types; IP addresses as text. Empty when it cannot be read.
pub(crate) fn certificate_sans(der: &[u8]) -> Vec<(SanType, String)> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(sans)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    sans.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((SanType::Dns, dns.to_string())),
            GeneralName::URI(uri) => Some((SanType::Uri, uri.to_string())),
            GeneralName::RFC822Name(email) => Some((SanType::Email, email.to_string())),
            GeneralName::IPAddress(bytes) => ip_text(bytes).map(|ip| (SanType::IpAddress, ip)),
            _ => None,
        })
        .collect()
}

/// Whether a DER certificate names itself as its issuer.
pub(crate) fn is_self_signed(der: &[u8]) -> bool {
    X509Certificate::from_der(der)
        .is_ok_and(|(_, cert)| cert.issuer().as_raw() == cert.subject().as_raw())
}

/// Whether any of `matchers` matches any of `sans`.
pub(crate) fn any_matches(matchers: &[SubjectAltName], sans: &[(SanType, String)]) -> bool {
    matchers.iter().any(|matcher| {
        sans.iter()
            .any(|(kind, value)| *kind == matcher.san_type && matches(matcher, value))
    })
}

fn matches(matcher: &SubjectAltName, value: &str) -> bool {
    match (&matcher.san_type, &matcher.pattern) {
        (SanType::Dns, StringMatch::Exact(name)) => dns_name_match(name, value),
        (_, pattern) => pattern.matches(value, matcher.ignore_case),
    }
}

/// Whether the configured DNS `name` is covered by the certificate's
/// `san`: equal ignoring case, or `san` is `*.<rest>` and `name` is one
/// more label in front of `<rest>`.
fn dns_name_match(name: &str, san: &str) -> bool {
    if name.eq_ignore_ascii_case(san) {
        return true;
    }
    let Some(rest) = san.strip_prefix("*.") else {
        return false;
    };
    match name.split_once('.') {
        Some((label, tail)) => !label.is_empty() && tail.eq_ignore_ascii_case(rest),
        None => false,
    }
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(san_type: SanType, pattern: StringMatch) -> SubjectAltName {
        SubjectAltName {
            san_type,
            pattern,
            ignore_case: false,
        }
    }

    #[test]
    fn exact_dns_matchers_follow_dns_rules() {
        assert!(dns_name_match("server.test", "server.test"));
        assert!(dns_name_match("SERVER.test", "server.TEST"));
        assert!(dns_name_match("api.example.com", "*.example.com"));
        assert!(!dns_name_match("a.api.example.com", "*.example.com"));
        assert!(!dns_name_match("example.com", "*.example.com"));
        assert!(!dns_name_match("*.example.com", "api.example.com"));
    }

    #[test]
    fn other_matchers_compare_the_san_as_text_and_only_of_their_type() {
        let sans = vec![
            (SanType::Dns, "server.test".to_string()),
            (SanType::Uri, "spiffe://td/ns/a/sa/b".to_string()),
            (SanType::IpAddress, "10.0.0.7".to_string()),
        ];
        let ok = |m: SubjectAltName| any_matches(&[m], &sans);
        assert!(ok(matcher(
            SanType::Uri,
            StringMatch::Prefix("spiffe://td/".into())
        )));
        assert!(ok(matcher(
            SanType::Dns,
            StringMatch::Suffix(".test".into())
        )));
        assert!(ok(matcher(
            SanType::IpAddress,
            StringMatch::Exact("10.0.0.7".into())
        )));
        assert!(!ok(matcher(
            SanType::Dns,
            StringMatch::Prefix("spiffe://".into())
        )));
        assert!(!ok(matcher(
            SanType::Uri,
            StringMatch::Exact("spiffe://td/ns/a/sa/c".into())
        )));
        let regex = regex::Regex::new("spiffe://td/ns/[a-z]+/sa/b").unwrap();
        assert!(ok(matcher(SanType::Uri, StringMatch::Regex(regex))));
        let mut upper = matcher(
            SanType::Uri,
            StringMatch::Exact("SPIFFE://TD/NS/A/SA/B".into()),
        );
        assert!(!ok(upper.clone()));
        upper.ignore_case = true;
        assert!(ok(upper));
    }

    #[test]
    fn reads_the_sans_of_a_certificate_in_order() {
        let mut params = rcgen::CertificateParams::new(vec!["server.test".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://td/ns/a/sa/b".try_into().unwrap(),
        ));
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("10.0.0.7".parse().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            certificate_sans(cert.der()),
            vec![
                (SanType::Dns, "server.test".to_string()),
                (SanType::Uri, "spiffe://td/ns/a/sa/b".to_string()),
                (SanType::IpAddress, "10.0.0.7".to_string()),
            ]
        );
        assert!(is_self_signed(cert.der()));
    }
}
