//! Signing-key rotation: a retired key stays published and accepted until the tokens it
//! signed have expired; new tokens carry the new key's id; `steward rotate-signing-key`
//! does the rotation; and the access-token leeway is a setting.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

use steward::auth::keys::{self, SigningKeys};

use crate::helpers::*;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn sign(keys: &SigningKeys, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(keys.kid.clone());
    jsonwebtoken::encode(&header, claims, &keys.encoding).unwrap()
}

/// A key as it was before a rotation, and the retired-keys directory the rotation filled.
/// `retired_ago`: how long ago the rotation happened.
fn retired_key(dir: &Path, retired_ago: chrono::Duration) -> SigningKeys {
    let key_file = dir.join("old-signing-key.pem");
    let (old, _) = SigningKeys::load_or_generate(&key_file).unwrap();
    keys::rotate(
        &key_file,
        &dir.join("retired"),
        chrono::Duration::days(365),
        chrono::Utc::now() - retired_ago,
    )
    .unwrap();
    old
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_token_signed_by_a_retired_key_verifies_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let old = retired_key(dir.path(), chrono::Duration::minutes(5));
    let retired_dir = dir.path().join("retired").display().to_string();
    on_each_backend_with(&[("STEWARD_RETIRED_SIGNING_KEYS_DIR", &retired_dir)], |app| {
        let old = &old;
        async move {
            let body = app.sign_up("ada@example.com").await;
            let current = token(&body);
            let header = jsonwebtoken::decode_header(&current).unwrap();
            assert_eq!(header.kid.as_deref(), Some(app.keys.kid.as_str()), "the new key signs");
            assert_ne!(app.keys.kid, old.kid);

            let (status, jwks) = app.get("/.well-known/jwks.json", None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(kids(&jwks), vec![app.keys.kid.clone(), old.kid.clone()]);

            // A token the old key signed before the rotation, for the same live session.
            let from_before = sign(old, &claims_of(&current));
            let (status, me) = app.get("/v1/me", Some(&from_before)).await;
            assert_eq!(status, StatusCode::OK, "{me}");

            // An integrator verifies it with the published key its header names.
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][1].clone()).unwrap();
            let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
            validation.set_audience(&["steward"]);
            validation.set_issuer(&["https://app.example.test"]);
            assert!(jsonwebtoken::decode::<Value>(&from_before, &key, &validation).is_ok());

            // Past its expiry (and the leeway), it is refused like any other.
            app.clock.advance(chrono::Duration::minutes(16));
            let (status, _) = app.get("/v1/me", Some(&from_before)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    })
    .await;
}

#[tokio::test]
async fn a_key_retired_longer_ago_than_any_token_lives_is_neither_published_nor_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // Access tokens live 15 minutes, impersonations at most 240: a day is past both.
    let old = retired_key(dir.path(), chrono::Duration::days(1));
    let retired_dir = dir.path().join("retired").display().to_string();
    on_each_backend_with(&[("STEWARD_RETIRED_SIGNING_KEYS_DIR", &retired_dir)], |app| {
        let old = &old;
        async move {
            let body = app.sign_up("ada@example.com").await;
            let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
            assert_eq!(kids(&jwks), vec![app.keys.kid.clone()]);
            let stale = sign(old, &claims_of(&token(&body)));
            let (status, body) = app.get("/v1/me", Some(&stale)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_leeway_past_expiry_is_a_setting() {
    on_each_backend_with(&[("STEWARD_ACCESS_TOKEN_LEEWAY", "0s")], |app| async move {
        let access = token(&app.sign_up("ada@example.com").await);
        // 15 minutes and one second later: with no leeway, refused at once.
        app.clock.advance(chrono::Duration::seconds(15 * 60 + 1));
        let (status, _) = app.get("/v1/me", Some(&access)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
    on_each_backend_with(&[("STEWARD_ACCESS_TOKEN_LEEWAY", "2m")], |app| async move {
        let access = token(&app.sign_up("ada@example.com").await);
        app.clock.advance(chrono::Duration::seconds(15 * 60 + 90));
        let (status, body) = app.get("/v1/me", Some(&access)).await;
        assert_eq!(status, StatusCode::OK, "within two minutes of leeway: {body}");
        app.clock.advance(chrono::Duration::seconds(60));
        let (status, _) = app.get("/v1/me", Some(&access)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

fn steward(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .env("STEWARD_SIGNING_KEY_FILE", dir.join("signing-key.pem"));
    cmd
}

#[test]
fn the_rotate_command_retires_the_key_and_makes_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing-key.pem");

    let out = steward(dir.path()).arg("rotate-signing-key").output().unwrap();
    assert!(!out.status.success(), "nothing to rotate without a key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("signing-key.pem"));

    let (before, _) = SigningKeys::load_or_generate(&key_file).unwrap();
    let out = steward(dir.path()).arg("rotate-signing-key").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (after, created) = SigningKeys::load_or_generate(&key_file).unwrap();
    assert!(!created);
    assert_ne!(after.kid, before.kid, "a new key signs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&before.kid) && stdout.contains(&after.kid), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the new private key is the owner's alone");
    }

    // The old public key is in the default retired directory, beside the key file, and a
    // server started now publishes and accepts both.
    let retired = dir.path().join("signing-key.pem.retired");
    let names: Vec<String> = std::fs::read_dir(&retired)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].ends_with(&format!("-{}.pub.pem", before.kid)), "{names:?}");
    let loaded = after
        .with_retired(&retired, chrono::Duration::hours(5), chrono::Utc::now())
        .unwrap();
    let published: Vec<&str> = loaded.jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(published, vec![loaded.kid.as_str(), before.kid.as_str()]);
    assert!(loaded.decoding_for(&before.kid).is_some());

    // The old key no longer signs anything: only its public half was kept.
    let pem = std::fs::read_to_string(retired.join(&names[0])).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
}
