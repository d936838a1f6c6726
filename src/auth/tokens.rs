//! Access tokens: short-lived JWTs (RFC 9068 profile) signed with EdDSA.
//!
//! `sub` is the effective user; `act` (RFC 8693) names the real actor when a session acts as
//! someone else; `acc` is the root account the token is scoped to (absent on a token that
//! can only pick an account); `sid` is the session, checked on every request so that a
//! revoked session stops working at once.

use chrono::NaiveDateTime;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::keys::SigningKeys;
use crate::db::models::{ApiKeyRow, SessionRow};
use crate::error::ApiError;
use crate::ids::TokenId;

/// The `typ` header of an access token (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Tolerated clock difference between Steward instances, unless configured
/// (`STEWARD_ACCESS_TOKEN_LEEWAY`).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// The real actor behind a delegated token (RFC 8693 §4.1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActorClaim {
    pub sub: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc: Option<String>,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<ActorClaim>,
    /// On a token exchanged for an API key (client-credentials grant, RFC 9068 §2.2): the
    /// key's id, which is then also `sub` and `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// How many verified access tokens [`Tokens::verify`] remembers.
pub const VERIFIED_CACHE_CAPACITY: usize = 10_000;

pub struct Tokens {
    keys: SigningKeys,
    issuer: String,
    audience: String,
    ttl: Duration,
    leeway: Duration,
    /// Tokens whose signature, header, issuer and audience have been checked, with their
    /// claims: a token presented again skips the Ed25519 verification. Safe to share between
    /// requests because a token's bytes fix its claims and this process's keys never change;
    /// expiry is checked on every use and an expired entry is dropped. The session behind a
    /// token is still read on every request, so revocation is unaffected.
    verified: quick_cache::sync::Cache<String, Arc<AccessClaims>>,
}

/// A freshly signed access token.
pub struct SignedToken {
    pub token: String,
    pub expires_in: u64,
}

impl Tokens {
    pub fn new(keys: SigningKeys, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            keys,
            issuer,
            audience,
            ttl,
            leeway: DEFAULT_LEEWAY,
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_CAPACITY),
        }
    }

    /// The same, accepting a token up to `leeway` past its `exp`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// Signs an access token for a session, valid for the configured access-token lifetime.
    pub fn issue(&self, session: &SessionRow, now: NaiveDateTime) -> Result<SignedToken, ApiError> {
        self.sign(session, now, self.ttl.as_secs())
    }

    /// Signs an access token that lives exactly as long as its session: for a session that
    /// has no refresh token (an impersonation, R9), whose one token must last its lifetime.
    pub fn issue_for_session_lifetime(
        &self,
        session: &SessionRow,
        now: NaiveDateTime,
    ) -> Result<SignedToken, ApiError> {
        // Whole seconds, as in the token: `exp` never lies past the session's own end.
        let left = session.expires_at.and_utc().timestamp() - now.and_utc().timestamp();
        self.sign(session, now, left.max(0) as u64)
    }

    /// Signs an access token for an API key (OAuth 2.0 client-credentials grant): `sub`,
    /// `sid` and `client_id` are the key's id, `acc` its organization. It carries no `act`:
    /// a key acts as itself.
    pub fn issue_for_api_key(&self, key: &ApiKeyRow, now: NaiveDateTime) -> Result<SignedToken, ApiError> {
        let iat = now.and_utc().timestamp();
        let mut ttl = self.ttl.as_secs() as i64;
        if let Some(expires) = key.expires_at {
            ttl = ttl.min(expires.and_utc().timestamp() - iat).max(0);
        }
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: key.id.to_string(),
            acc: Some(key.root_account_id.to_string()),
            sid: key.id.to_string(),
            jti: TokenId::generate().into_string(),
            iat,
            exp: iat + ttl,
            act: None,
            client_id: Some(key.id.to_string()),
        };
        self.sign_claims(&claims, ttl as u64)
    }

    fn sign(&self, session: &SessionRow, now: NaiveDateTime, ttl: u64) -> Result<SignedToken, ApiError> {
        let iat = now.and_utc().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: session.user_id.to_string(),
            acc: session.account_id.clone(),
            sid: session.id.to_string(),
            jti: TokenId::generate().into_string(),
            iat,
            exp: iat + ttl as i64,
            act: session.actor_user_id.clone().map(|sub| ActorClaim { sub }),
            client_id: None,
        };
        self.sign_claims(&claims, ttl)
    }

    fn sign_claims(&self, claims: &AccessClaims, ttl: u64) -> Result<SignedToken, ApiError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_string());
        header.kid = Some(self.keys.kid.clone());
        let token = jsonwebtoken::encode(&header, claims, &self.keys.encoding).map_err(ApiError::internal)?;
        Ok(SignedToken { token, expires_in: ttl })
    }

    /// Checks a presented token: the algorithm is pinned to EdDSA (so `none` and HS256
    /// with the public key as secret are refused), the header must say `at+jwt` and name
    /// one of our keys (the current one or a retired one still kept), and issuer, audience and expiry (against `now`) must hold. The session is
    /// checked by the caller.
    pub fn verify(&self, token: &str, now: NaiveDateTime) -> Result<AccessClaims, ApiError> {
        let now = now.and_utc().timestamp();
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signed(token)?);
                if self.live(&claims, now) {
                    self.verified.insert(token.to_string(), claims.clone());
                }
                claims
            }
        };
        if !self.live(&claims, now) {
            self.verified.remove(token);
            return Err(refuse("expired"));
        }
        Ok(AccessClaims::clone(&claims))
    }

    /// Whether a token with these claims is still accepted at `now` (seconds).
    fn live(&self, claims: &AccessClaims, now: i64) -> bool {
        claims.exp.saturating_add(self.leeway.as_secs() as i64) > now
    }

    /// Everything [`Tokens::verify`] checks but expiry.
    fn verify_signed(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(refuse("wrong algorithm"));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(refuse("not an access token"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.decoding_for(kid))
            .ok_or_else(|| refuse("unknown signing key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked by `verify` against the service's clock, which tests can move.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map_err(|e| refuse(&describe(&e)))?;
        Ok(data.claims)
    }
}

fn refuse(why: &str) -> ApiError {
    ApiError::unauthenticated(format!("The access token is not valid: {why}."))
}

fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
        ErrorKind::InvalidAlgorithm => "wrong algorithm".into(),
        _ => "malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn at(seconds: i64) -> NaiveDateTime {
        DateTime::from_timestamp(seconds, 0).expect("a time").naive_utc()
    }

    /// A cached token is checked against the clock on every use, and a token the cache has
    /// not seen (a forged one included) is verified in full.
    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let tokens = Tokens::new(
            SigningKeys::ephemeral().expect("a key"),
            "iss".into(),
            "aud".into(),
            Duration::from_secs(60),
        )
        .with_leeway(Duration::ZERO);
        let claims = AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: "usr_1".into(),
            acc: None,
            sid: "ses_1".into(),
            jti: "tok_1".into(),
            iat: 1_000,
            exp: 1_060,
            act: None,
            client_id: None,
        };
        let token = tokens.sign_claims(&claims, 60).expect("signed").token;
        assert_eq!(tokens.verify(&token, at(1_001)).expect("valid").sub, "usr_1");
        assert_eq!(tokens.verified.len(), 1);
        assert_eq!(tokens.verify(&token, at(1_059)).expect("still valid").jti, "tok_1");
        assert!(tokens.verify(&token, at(1_060)).is_err(), "expired, though cached");
        assert_eq!(tokens.verified.len(), 0, "an expired entry is dropped");

        let at_signature = token.rfind('.').expect("a JWT") + 10;
        let mut forged = token.clone().into_bytes();
        forged[at_signature] = if forged[at_signature] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ASCII");
        assert!(tokens.verify(&forged, at(1_001)).is_err());
    }
}
