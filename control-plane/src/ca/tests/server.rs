//! The serving certificate of the secure xDS port.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;

use super::*;

#[test]
fn the_serving_certificate_names_istiod_and_the_given_names() {
    let ca = new_ca(DEFAULT_WORKLOAD_CERT_TTL);
    let names: Vec<ServerName> = [
        "istiod.example.com",
        "10.0.0.1",
        "::1",
        "ISTIOD.istio-system.svc",
    ]
    .iter()
    .map(|n| n.parse().expect("a name"))
    .collect();
    let cert = ca.issue_server_certificate(&names).expect("issue");
    let leaf_pem = pem(&cert.cert_pem);
    let leaf = leaf_pem.parse_x509().expect("leaf");
    let root_pem = pem(ca.root_pem());
    let root = root_pem.parse_x509().expect("root");
    leaf.verify_signature(Some(root.public_key()))
        .expect("signed by the mesh root");
    let sans = leaf.subject_alternative_name().expect("SAN").expect("SAN");
    let ip = |text: &str| text.parse::<IpAddr>().expect("IP");
    let octets = |addr: IpAddr| match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let v4 = octets(ip("10.0.0.1"));
    let v6 = octets(ip("::1"));
    assert_eq!(
        sans.value.general_names,
        vec![
            GeneralName::DNSName("istiod.istio-system.svc"),
            GeneralName::DNSName("istiod.example.com"),
            GeneralName::IPAddress(&v4),
            GeneralName::IPAddress(&v6),
        ],
        "istiod's name first, each name once"
    );
    let key = rcgen::KeyPair::from_pem(cert.key_pem()).expect("key");
    assert_eq!(
        key.public_key_raw(),
        leaf.public_key().subject_public_key.data.as_ref()
    );
    assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
    assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    assert!(time_of(&leaf, true) <= ca.root_not_after);
}

#[test]
fn a_server_name_is_an_ip_or_a_dns_name() {
    assert!(matches!("10.1.2.3".parse(), Ok(ServerName::Ip(_))));
    assert_eq!(
        "Istiod.Example.com".parse(),
        Ok(ServerName::Dns("istiod.example.com".to_string()))
    );
    for bad in ["", "a..b", "-a.b", "a b", "spiffe://x", "a_b.c"] {
        assert!(bad.parse::<ServerName>().is_err(), "{bad:?}");
    }
}
