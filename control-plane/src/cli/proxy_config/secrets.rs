//! `proxy-config secrets`: one row per secret the proxy was sent, with its
//! type, status and its first certificate's validity and serial, as
//! istioctl prints it. Secrets reach here without their private key.

use proto::pb::envoy::admin::v3::ClientResourceStatus;
use proto::pb::envoy::config::core::v3::{DataSource, data_source};
use proto::pb::envoy::extensions::transport_sockets::tls::v3::{Secret, secret};
use time::{OffsetDateTime, UtcOffset};
use x509_parser::pem::parse_x509_pem;

use super::Sent;

pub const HEADER: [&str; 7] = [
    "RESOURCE NAME",
    "TYPE",
    "STATUS",
    "VALID CERT",
    "SERIAL NUMBER",
    "NOT AFTER",
    "NOT BEFORE",
];

/// The rows, by name.
pub fn rows(secrets: &[Sent<Secret>]) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|sent| row(sent, OffsetDateTime::now_utc()))
        .collect();
    rows.sort();
    rows
}

fn row(sent: &Sent<Secret>, now: OffsetDateTime) -> Vec<String> {
    let secret = &sent.message;
    let (kind, pem) = match &secret.r#type {
        Some(secret::Type::TlsCertificate(cert)) => ("Cert Chain", cert.certificate_chain.as_ref()),
        Some(secret::Type::ValidationContext(context)) => ("CA", context.trusted_ca.as_ref()),
        _ => ("", None),
    };
    let status = match sent.status {
        ClientResourceStatus::Acked => "ACTIVE",
        ClientResourceStatus::Nacked => "NACKED",
        _ => "WARMING",
    };
    let mut row = vec![secret.name.clone(), kind.to_string(), status.to_string()];
    match pem.and_then(inline).and_then(|pem| certificate(&pem, now)) {
        Some(cert) => row.extend(cert),
        None => row.push("false".to_string()),
    }
    row
}

fn inline(source: &DataSource) -> Option<Vec<u8>> {
    match source.specifier.as_ref()? {
        data_source::Specifier::InlineBytes(bytes) => Some(bytes.clone()),
        data_source::Specifier::InlineString(text) => Some(text.as_bytes().to_vec()),
        _ => None,
    }
}

/// VALID CERT, SERIAL NUMBER, NOT AFTER, NOT BEFORE of the first
/// certificate in `pem`.
fn certificate(pem: &[u8], now: OffsetDateTime) -> Option<[String; 4]> {
    let (_, pem) = parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    Some([
        (not_before <= now && now <= not_after).to_string(),
        format!("{:x}", cert.serial),
        rfc3339(not_after),
        rfc3339(not_before),
    ])
}

/// `2033-05-02T03:41:33Z`, as Go prints a UTC time.
fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_shows_its_serial_and_validity_never_its_key() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["edition.cnn.com".into()]).expect("params");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc, 0xde]));
        params.not_before = rcgen::date_time_ymd(2025, 1, 2);
        params.not_after = rcgen::date_time_ymd(2035, 3, 4);
        let cert = params.self_signed(&key).expect("cert");
        let secret = Secret {
            name: "kubernetes://cnn-credential".to_string(),
            r#type: Some(secret::Type::TlsCertificate(
                proto::pb::envoy::extensions::transport_sockets::tls::v3::TlsCertificate {
                    certificate_chain: Some(DataSource {
                        specifier: Some(data_source::Specifier::InlineBytes(
                            cert.pem().into_bytes(),
                        )),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        };
        let sent = Sent {
            message: secret,
            status: ClientResourceStatus::Acked,
        };
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("2027");
        assert_eq!(
            row(&sent, now),
            [
                "kubernetes://cnn-credential",
                "Cert Chain",
                "ACTIVE",
                "true",
                "abcde",
                "2035-03-04T00:00:00Z",
                "2025-01-02T00:00:00Z"
            ]
        );
        let later = OffsetDateTime::from_unix_timestamp(2_200_000_000).expect("2039");
        assert_eq!(row(&sent, later)[3], "false", "expired");
        let warming = Sent {
            status: ClientResourceStatus::Requested,
            ..sent
        };
        assert_eq!(row(&warming, now)[2], "WARMING");
    }
}
