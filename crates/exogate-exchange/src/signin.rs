//! Sign in with Microsoft (OpenID Connect, authorization code with PKCE), the wire half: the
//! authorize URL, redeeming the code at the token endpoint (client secret + `code_verifier`),
//! and the id token's RS256 signature checked against the JWKS, fetched once, cached, and
//! fetched again when a token names a key id not in the cache (keys rotate). What the claims
//! must say is exogate-core's business (`exogate_core::signin`); this module returns them
//! unchecked but signed.

use std::collections::{BTreeSet, HashMap};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use crate::M365Client;

/// Why the wire half of a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// The token endpoint refused the code (`error` and AADSTS code only; never the body).
    #[error("the token endpoint refused the code: {0}")]
    CodeRejected(String),
    #[error("Microsoft could not be reached: {0}")]
    Unreachable(String),
    #[error("the id token's signature does not verify")]
    BadSignature,
    #[error("the id token is malformed")]
    Malformed,
}

/// Most key ids a cache fetches again for; beyond it an unknown key id is simply refused.
const MAX_REFETCHED_KIDS: usize = 64;

#[derive(Default)]
struct Jwks {
    keys: HashMap<String, DecodingKey>,
    refetched_for: BTreeSet<String>,
}

/// The sign-in app's client: shares the Microsoft client's HTTP pool and login authority.
pub struct SigninClient {
    http: reqwest::Client,
    login: Url,
    client_id: Uuid,
    secret: SecretString,
    jwks: tokio::sync::Mutex<Jwks>,
}

impl std::fmt::Debug for SigninClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigninClient")
            .field("login", &self.login.as_str())
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl M365Client {
    /// A client for the sign-in app `client_id` (a web app with a client secret).
    pub fn signin_client(&self, client_id: Uuid, secret: SecretString) -> SigninClient {
        SigninClient {
            http: self.inner.http.clone(),
            login: self.inner.endpoints.login.clone(),
            client_id,
            secret,
            jwks: tokio::sync::Mutex::new(Jwks::default()),
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

#[derive(serde::Deserialize)]
struct JwksDoc {
    keys: Vec<Jwk>,
}

#[derive(serde::Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    kid: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

impl SigninClient {
    /// The login base, e.g. `https://login.microsoftonline.com` (no trailing slash): the v2.0
    /// issuer of tenant `t` is this plus `/{t}/v2.0`.
    pub fn authority(&self) -> String {
        self.login.as_str().trim_end_matches('/').to_owned()
    }

    fn endpoint(&self, tenant: &str, path: &str) -> Result<Url, SigninError> {
        self.login
            .join(&format!("{tenant}/{path}"))
            .map_err(|e| SigninError::Unreachable(e.to_string()))
    }

    /// Where to send the browser: `{login}/{tenant}/oauth2/v2.0/authorize` with the code flow's
    /// parameters (`tenant` is one GUID, or `organizations` when several are allowed).
    pub fn authorize_url(
        &self,
        tenant: &str,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<Url, SigninError> {
        let mut url = self.endpoint(tenant, "oauth2/v2.0/authorize")?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id.to_string())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", "openid profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "select_account");
        Ok(url)
    }

    /// Redeems `code` and returns the id token (unverified).
    pub async fn redeem(
        &self,
        tenant: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, SigninError> {
        let url = self.endpoint(tenant, "oauth2/v2.0/token")?;
        let client_id = self.client_id.to_string();
        let form = [
            ("client_id", client_id.as_str()),
            ("client_secret", self.secret.expose_secret()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("scope", "openid profile"),
        ];
        let answer: TokenAnswer = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| SigninError::Unreachable(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|_| SigninError::CodeRejected("unreadable answer".to_owned()))?;
        match (answer.id_token, answer.error) {
            (Some(t), None) => Ok(t),
            (_, e) => Err(SigninError::CodeRejected(format!(
                "{} {:?}",
                e.unwrap_or_else(|| "no id_token".to_owned()),
                answer.error_codes
            ))),
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, SigninError> {
        let url = self.endpoint("common", "discovery/v2.0/keys")?;
        let doc: JwksDoc = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| SigninError::Unreachable(e.without_url().to_string()))?
            .json()
            .await
            .map_err(|e| SigninError::Unreachable(e.without_url().to_string()))?;
        Ok(doc
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && !k.kid.is_empty())
            .filter_map(|k| {
                DecodingKey::from_rsa_components(&k.n, &k.e)
                    .ok()
                    .map(|d| (k.kid, d))
            })
            .collect())
    }

    /// Checks the id token's RS256 signature with the tenant keys and returns its claims
    /// (to be checked by the caller). An unknown key id fetches the JWKS again, once per key id.
    pub async fn verify<T: DeserializeOwned>(&self, id_token: &str) -> Result<T, SigninError> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| SigninError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(SigninError::BadSignature);
        }
        let kid = header.kid.ok_or(SigninError::BadSignature)?;
        let mut jwks = self.jwks.lock().await;
        if !jwks.keys.contains_key(&kid)
            && (jwks.keys.is_empty()
                || (jwks.refetched_for.len() < MAX_REFETCHED_KIDS
                    && jwks.refetched_for.insert(kid.clone())))
        {
            jwks.keys = self.fetch_keys().await?;
        }
        let key = jwks.keys.get(&kid).ok_or(SigninError::BadSignature)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(id_token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => SigninError::BadSignature,
                _ => SigninError::Malformed,
            })
    }
}
