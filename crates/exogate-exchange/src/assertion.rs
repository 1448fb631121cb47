//! The certificate `client_assertion` (`docs/MICROSOFT.md#certificate-assertion`): a JWT signed
//! PS256 with the app's certificate key, header `x5t#S256` = base64url SHA-256 of the certificate
//! DER, audience = the token URL being called, `iss` = `sub` = client id, fresh `jti`, valid for 10
//! minutes.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::CertificateCredential;

/// How long an assertion is valid.
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

pub(crate) fn client_assertion(
    cert: &CertificateCredential,
    client_id: &str,
    token_url: &str,
    now: OffsetDateTime,
) -> Result<String, String> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.typ = Some("JWT".into());
    header.x5t_s256 = Some(cert.thumbprint_s256.clone());
    let t = now.unix_timestamp();
    let claims = AssertionClaims {
        aud: token_url,
        iss: client_id,
        sub: client_id,
        jti: Uuid::new_v4().to_string(),
        nbf: t,
        iat: t,
        exp: t + ASSERTION_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&header, &claims, &cert.key).map_err(|e| e.to_string())
}
