//! OAuth 2.1 for remote MCP clients: exogate is both the resource server (`/mcp`) and its own
//! authorization server. This module holds the stored shapes and the rules, sans I/O:
//! PKCE S256, exact redirect-URI matching (any port on a loopback redirect), the resource
//! (audience) check, and what a grant may do. `ops::oauth` runs the flows over the `Store`.
//!
//! Codes and tokens are random secrets made at the edge; only their SHA-256
//! ([`crate::model::hash_token_secret`]) is stored. A grant is one consent of one person to one
//! client: it is the refresh-token family, and every access token is looked up together with
//! its grant, so revoking the grant stops its tokens at once.

use base64::Engine;
use sha2::Digest;

use crate::model::{ApiTokenId, Timestamp, UserId};

/// What every grant lets the client do, shown on the consent page and the Connected agents page.
/// The grant acts as the person who consented, on the `mcp` channel: it reads and asks, never
/// decides (the same rule as API tokens).
pub const GRANT_ABILITIES: [&str; 2] = [
    "read mailbox delegation in the companies you may see",
    "ask for delegation changes, which a person must approve before anything changes",
];

/// The scope exogate advertises and grants (one scope: the whole of [`GRANT_ABILITIES`]).
pub const SCOPE: &str = "mcp";

/// A client registered through Dynamic Client Registration (RFC 7591). Clients named by a
/// Client ID Metadata Document are not stored: their document is fetched at authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub created_at: Timestamp,
}

/// An authorization code, issued after consent; single use, short-lived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub client_name: String,
    pub user: UserId,
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    pub resource: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// One person's consent to one client: the refresh-token family. Its id lives in the API token
/// id space, so it names the caller in the `mcp(token=…)` channel and in the token budgets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthGrant {
    pub id: ApiTokenId,
    pub user: UserId,
    pub client_id: String,
    pub client_name: String,
    pub resource: String,
    /// The hash of the code the grant was made from: that code presented again revokes it.
    pub code_hash: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// An access or refresh token of a grant. A refresh token is `used` once rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthToken {
    pub token_hash: String,
    pub grant: ApiTokenId,
    pub kind: TokenKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// Why an OAuth request is refused; `code()` is the RFC 6749 / RFC 8707 error code.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A parameter is missing or malformed; fix the request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client is unknown or its metadata is not acceptable; register (again).
    #[error("invalid client: {0}")]
    InvalidClient(String),
    /// The redirect URI is not one the client registered; nothing is sent there.
    #[error("the redirect URI is not registered for this client")]
    RedirectUriNotRegistered,
    /// The code, refresh token or PKCE verifier is not valid (used, expired, revoked, wrong);
    /// start a new authorization.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// The resource is not this server's MCP endpoint.
    #[error("the resource is not this server's MCP endpoint")]
    InvalidTarget,
    /// Only `authorization_code` and `refresh_token` are supported.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// Storage failed; retry later.
    #[error(transparent)]
    Core(#[from] crate::CoreError),
    // (hardening)
    /// As many registered clients as allowed are waiting for a first authorization.
    #[error(
        "too many registered clients have not signed in yet; try again later (unused registrations expire)"
    )]
    TooManyClients,
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::RedirectUriNotRegistered => {
                "invalid_request"
            }
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::InvalidTarget => "invalid_target",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::Core(_) => "server_error",
            // (hardening)
            OAuthError::TooManyClients => "too_many_registrations",
        }
    }
}

impl From<crate::ports::StoreError> for OAuthError {
    fn from(e: crate::ports::StoreError) -> Self {
        OAuthError::Core(e.into())
    }
}

/// The S256 challenge of a PKCE verifier: base64url (no padding) of its SHA-256.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Whether `verifier` is a well-formed PKCE verifier (RFC 7636: 43 to 128 unreserved
/// characters) whose S256 challenge is `challenge`.
pub fn pkce_s256_ok(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && constant_eq(pkce_challenge(verifier).as_bytes(), challenge.as_bytes())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a PKCE challenge is well formed (43 base64url characters: a SHA-256).
pub fn challenge_well_formed(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// A redirect URI split into the parts the match compares.
struct Redirect<'a> {
    scheme: &'a str,
    host: &'a str,
    rest: &'a str,
}

fn split_redirect(uri: &str) -> Option<Redirect<'_>> {
    let (scheme, after) = uri.split_once("://")?;
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) = v6.split_once(']')?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':')?),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(Redirect { scheme, host, rest })
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

/// Whether `uri` may be registered as a redirect URI: `https`, or `http` on a loopback host
/// (`127.0.0.1`, `[::1]`, `localhost`), with no fragment, user info or whitespace, at most
/// 2,048 bytes.
pub fn redirect_uri_acceptable(uri: &str) -> bool {
    if uri.len() > 2048 || uri.contains('#') || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    match split_redirect(uri) {
        Some(r) if r.scheme == "https" => !r.host.is_empty(),
        Some(r) if r.scheme == "http" => is_loopback_host(r.host),
        _ => false,
    }
}

/// Whether `requested` is one of `registered`: compared exactly, except that a loopback `http`
/// redirect matches a registered one on any port (RFC 8252 §7.3; native clients take a free
/// port at run time). Scheme, host, path and query still match exactly.
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if !redirect_uri_acceptable(requested) {
        return false;
    }
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        match (split_redirect(r), split_redirect(requested)) {
            (Some(a), Some(b)) => {
                a.scheme == "http"
                    && b.scheme == "http"
                    && is_loopback_host(a.host)
                    && a.host == b.host
                    && a.rest == b.rest
            }
            _ => false,
        }
    })
}

/// Whether the `resource` a client asked for names this server's MCP endpoint (RFC 8707). A
/// trailing `/` is ignored; nothing else is normalised.
pub fn resource_matches(expected: &str, given: &str) -> bool {
    expected.trim_end_matches('/') == given.trim_end_matches('/')
}

/// Lifetimes of what the authorization server issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    pub code_secs: i64,
    pub access_secs: i64,
    pub refresh_secs: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            code_secs: 60,
            access_secs: 3600,
            refresh_secs: 30 * 24 * 3600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_7636_example_and_refuses_other_verifiers() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(pkce_challenge(v), c);
        assert!(pkce_s256_ok(v, c));
        assert!(!pkce_s256_ok(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            c
        ));
        assert!(!pkce_s256_ok("short", &pkce_challenge("short")));
        assert!(!pkce_s256_ok(&format!("{v} "), c));
        assert!(challenge_well_formed(c));
        assert!(!challenge_well_formed("plain-challenge"));
    }

    #[test]
    fn redirect_uris_match_exactly_except_the_loopback_port() {
        let reg = vec![
            "http://127.0.0.1:4000/callback".to_owned(),
            "https://app.example/cb".to_owned(),
        ];
        assert!(redirect_uri_matches(&reg, "https://app.example/cb"));
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1:4000/callback"));
        assert!(redirect_uri_matches(
            &reg,
            "http://127.0.0.1:51234/callback"
        ));
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1/callback"));
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example:8443/cb",
            "https://APP.example/cb",
            "http://app.example/cb",
            "http://127.0.0.1:51234/other",
            "http://localhost:4000/callback",
            "http://127.0.0.1.evil.example:4000/callback",
            "https://app.example/cb#frag",
            "https://user@app.example/cb",
        ] {
            assert!(!redirect_uri_matches(&reg, bad), "{bad}");
        }
        // A port is not ignored on anything but loopback.
        let https = vec!["https://app.example:8443/cb".to_owned()];
        assert!(!redirect_uri_matches(&https, "https://app.example:9443/cb"));
    }

    #[test]
    fn only_https_or_loopback_http_redirects_are_acceptable() {
        assert!(redirect_uri_acceptable("https://app.example/cb"));
        assert!(redirect_uri_acceptable("http://localhost:3000/cb"));
        assert!(redirect_uri_acceptable("http://[::1]:3000/cb"));
        assert!(!redirect_uri_acceptable("http://app.example/cb"));
        assert!(!redirect_uri_acceptable("javascript:alert(1)"));
        assert!(!redirect_uri_acceptable("https://app.example/cb#x"));
        assert!(!redirect_uri_acceptable("https://app.example/c b"));
        assert!(!redirect_uri_acceptable("http://127.0.0.1:x/cb"));
    }

    #[test]
    fn the_resource_must_be_this_servers() {
        assert!(resource_matches(
            "https://gate.example/mcp",
            "https://gate.example/mcp/"
        ));
        assert!(!resource_matches(
            "https://gate.example/mcp",
            "https://other.example/mcp"
        ));
        assert!(!resource_matches(
            "https://gate.example/mcp",
            "https://gate.example/"
        ));
    }
}
