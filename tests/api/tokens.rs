//! Access tokens that must be refused, and the public keys that verify the good ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn header(alg: Algorithm, typ: &str, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.typ = Some(typ.to_string());
    h.kid = Some(kid.to_string());
    h
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let (status, body) = app.get("/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    assert_eq!(body["type"], "urn:steward:problem:unauthenticated", "{why}");
}

#[tokio::test]
async fn access_tokens_carry_the_documented_header_and_claims() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        let token = token(&body);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(app.keys.kid.as_str()));
        let claims = claims_of(&token);
        assert_eq!(claims["iss"], "https://app.example.test");
        assert_eq!(claims["aud"], "steward");
        assert_eq!(claims["sub"], body["user"]["id"]);
        assert_eq!(claims["acc"], body["account"]["id"]);
        assert!(claims["sid"].as_str().unwrap().starts_with("ses_"));
        assert!(claims["jti"].is_string());
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        assert!(claims.get("act").is_none(), "no actor when nobody acts as someone else");
    })
    .await;
}

#[tokio::test]
async fn tokens_verify_with_the_published_jwks() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        let (status, jwks) = app.get("/.well-known/jwks.json", None).await;
        assert_eq!(status, StatusCode::OK);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["steward"]);
        validation.set_issuer(&["https://app.example.test"]);
        let decoded = jsonwebtoken::decode::<Value>(&token(&body), &key, &validation);
        assert!(decoded.is_ok(), "an integrator can verify the token: {decoded:?}");
    })
    .await;
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        let good = token(&body);
        let claims = claims_of(&good);
        let kid = app.keys.kid.clone();
        let sign = |h: &Header, c: &Value| jsonwebtoken::encode(h, c, &app.keys.encoding).unwrap();

        // Signed by another key, even one that claims our kid.
        let other = steward::auth::keys::SigningKeys::ephemeral().unwrap();
        let forged = jsonwebtoken::encode(&header(Algorithm::EdDSA, "at+jwt", &kid), &claims, &other.encoding).unwrap();
        assert_refused(&app, &forged, "signature by another key").await;
        let forged = jsonwebtoken::encode(
            &header(Algorithm::EdDSA, "at+jwt", &other.kid),
            &claims,
            &other.encoding,
        )
        .unwrap();
        assert_refused(&app, &forged, "another key's kid").await;

        // alg: none.
        let none_header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "at+jwt", "kid": kid }).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_refused(&app, &format!("{none_header}.{payload}."), "alg none").await;

        // HS256 keyed with the public key (the classic algorithm confusion).
        let public_x = app.keys.jwks.keys[0].x.clone();
        for secret in [public_x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(&public_x).unwrap()] {
            let confused = jsonwebtoken::encode(
                &header(Algorithm::HS256, "at+jwt", &kid),
                &claims,
                &EncodingKey::from_secret(&secret),
            )
            .unwrap();
            assert_refused(&app, &confused, "HS256 with the public key").await;
        }

        // Wrong audience, wrong issuer, wrong typ: properly signed, still refused.
        let mut wrong_aud = claims.clone();
        wrong_aud["aud"] = json!("someone-else");
        assert_refused(
            &app,
            &sign(&header(Algorithm::EdDSA, "at+jwt", &kid), &wrong_aud),
            "wrong aud",
        )
        .await;
        let mut wrong_iss = claims.clone();
        wrong_iss["iss"] = json!("https://evil.example");
        assert_refused(
            &app,
            &sign(&header(Algorithm::EdDSA, "at+jwt", &kid), &wrong_iss),
            "wrong iss",
        )
        .await;
        assert_refused(
            &app,
            &sign(&header(Algorithm::EdDSA, "JWT", &kid), &claims),
            "wrong typ",
        )
        .await;

        // A genuine session id under somebody else's subject.
        let mut other_sub = claims.clone();
        other_sub["sub"] = json!("usr_01jd3k6x0n6qg8z7v2f4t9b1c5");
        assert_refused(
            &app,
            &sign(&header(Algorithm::EdDSA, "at+jwt", &kid), &other_sub),
            "sub not the session's",
        )
        .await;

        // Garbage and wrong schemes.
        assert_refused(&app, "not-a-jwt", "garbage").await;
        let (status, body) = app
            .client
            .get(app.url("/v1/me"))
            .header("Authorization", format!("Basic {good}"))
            .send_checked()
            .await
            .map(|r| (r.status(), ()))
            .unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:?}");

        // The genuine token still works.
        let (status, _) = app.get("/v1/me", Some(&good)).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        let good = token(&body);
        app.clock.advance(chrono::Duration::minutes(14));
        let (status, _) = app.get("/v1/me", Some(&good)).await;
        assert_eq!(status, StatusCode::OK, "still valid before 15 minutes");
        app.clock.advance(chrono::Duration::minutes(2));
        assert_refused(&app, &good, "expired").await;
    })
    .await;
}

#[tokio::test]
async fn a_token_of_a_revoked_session_is_refused() {
    on_each_backend(|app| async move {
        let body = app.sign_up("ada@example.com").await;
        let good = token(&body);
        let (status, _) = app.post("/v1/auth/logout", json!({}), Some(&good)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_refused(&app, &good, "revoked session").await;
    })
    .await;
}

#[tokio::test]
async fn requests_without_a_token_are_told_how_to_authenticate() {
    on_each_backend(|app| async move {
        let res = app.client.get(app.url("/v1/me")).send_checked().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    })
    .await;
}
