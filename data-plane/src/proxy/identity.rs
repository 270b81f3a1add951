//! The peer's mesh identity: the SPIFFE URI in its certificate's subject
//! alt names (`spiffe://cluster.local/ns/<ns>/sa/<sa>`).

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The first URI subject alt name of a DER certificate.
pub fn uri_san(der: &[u8]) -> Option<String> {
    uri_sans(der).into_iter().next()
}

/// Every URI subject alt name of a DER certificate.
pub fn uri_sans(der: &[u8]) -> Vec<String> {
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
            GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_spiffe_id() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from("spiffe://cluster.local/ns/default/sa/sleep")
                .unwrap(),
        )];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            uri_san(cert.der()).as_deref(),
            Some("spiffe://cluster.local/ns/default/sa/sleep")
        );
        assert_eq!(uri_san(b"not a certificate"), None);
    }
}
