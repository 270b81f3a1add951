//! Verifying a presented bearer token: pick the issuer's keys by the
//! token's `iss`, check the signature, the audience (`istio-ca`) and the
//! times, and read the service account it proves.
//!
//! Times are checked as istiod's OIDC verifier (go-oidc) checks them: `exp`
//! without leeway, `nbf` with five minutes for clock skew.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};

use super::account::ServiceAccount;
use super::claims::{AUDIENCE, ISSUER, PresentedClaims};
use super::error::AuthError;
use super::jwks::KubernetesTokens;
use super::signing::TokenSigningKey;

/// How far in the future a token's `nbf` may be (go-oidc's leeway).
const NOT_BEFORE_LEEWAY: Duration = Duration::from_secs(300);

/// The issuers this control plane trusts and their keys.
pub struct Authenticator {
    own: DecodingKey,
    kubernetes: Option<KubernetesTokens>,
}

impl Authenticator {
    /// Trusts the tokens `own` signs and, if given, a cluster's.
    pub fn new(own: &TokenSigningKey, kubernetes: Option<KubernetesTokens>) -> Self {
        Self {
            own: own.verifying_key().clone(),
            kubernetes,
        }
    }

    /// The service account `token` proves, or why it proves nothing.
    pub fn verify(&self, token: &str) -> Result<ServiceAccount, AuthError> {
        let malformed = |e: jsonwebtoken::errors::Error| AuthError::MalformedToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(malformed)?;
        let presented: PresentedClaims =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(malformed)?;
        let issuer = presented
            .iss
            .as_deref()
            .ok_or_else(|| AuthError::MalformedToken("it has no iss claim".to_string()))?;
        let candidates = self.keys_of(issuer, &header)?;
        let mut claims = None;
        for (key, algorithm) in candidates {
            match jsonwebtoken::decode::<PresentedClaims>(
                token,
                &key,
                &validation(issuer, algorithm),
            ) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(refusal(&e, &presented)),
            }
        }
        let claims = claims.ok_or_else(|| {
            AuthError::BadSignature(format!("no key of issuer {issuer:?} verifies it"))
        })?;
        if let Some(nbf) = claims.nbf {
            let not_before = UNIX_EPOCH + Duration::from_secs(nbf);
            if not_before > SystemTime::now() + NOT_BEFORE_LEEWAY {
                return Err(AuthError::NotYetValid { at: rfc3339(nbf) });
            }
        }
        claims.service_account()
    }

    /// The keys that may have signed a token of `issuer` with `header`.
    fn keys_of(
        &self,
        issuer: &str,
        header: &Header,
    ) -> Result<Vec<(DecodingKey, Algorithm)>, AuthError> {
        if issuer == ISSUER {
            if header.alg != Algorithm::ES256 {
                return Err(AuthError::BadSignature(format!(
                    "it is signed with {:?}, but this control plane signs its tokens with ES256",
                    header.alg
                )));
            }
            return Ok(vec![(self.own.clone(), Algorithm::ES256)]);
        }
        match &self.kubernetes {
            Some(kubernetes) if kubernetes.issuer() == issuer => kubernetes.candidates(header),
            _ => Err(AuthError::UnknownIssuer {
                issuer: issuer.to_string(),
                accepted: self.accepted(),
            }),
        }
    }

    /// The trusted issuers, as a refusal lists them.
    fn accepted(&self) -> String {
        let own = format!("{ISSUER:?} (`control-plane token create`)");
        match &self.kubernetes {
            Some(k) => format!("{own} and {:?} (--jwt-issuer)", k.issuer()),
            None => format!("{own} only (pass --jwks and --jwt-issuer for Kubernetes tokens)"),
        }
    }
}

/// What a token of `issuer` signed with `algorithm` must satisfy.
fn validation(issuer: &str, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    validation.leeway = 0;
    validation.validate_nbf = false;
    validation
}

/// The refusal a failed validation of `presented` gets.
fn refusal(error: &jsonwebtoken::errors::Error, presented: &PresentedClaims) -> AuthError {
    match error.kind() {
        ErrorKind::ExpiredSignature => AuthError::ExpiredToken {
            at: presented
                .exp
                .map_or_else(|| "an unknown time".to_string(), rfc3339),
        },
        ErrorKind::InvalidAudience => AuthError::WrongAudience {
            found: presented.audience(),
        },
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience {
            found: presented.audience(),
        },
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::MalformedToken(format!("it has no {claim} claim"))
        }
        ErrorKind::InvalidAlgorithm => {
            AuthError::BadSignature("its algorithm is not its key's".to_string())
        }
        _ => AuthError::MalformedToken(error.to_string()),
    }
}

fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

/// The token of an `authorization` header value: `Bearer <token>` (the
/// scheme is case-insensitive, as RFC 6750 has it).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingToken)?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            AuthError::MalformedToken(
                "the authorization header is not `Bearer <token>`".to_string(),
            )
        })?;
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}
