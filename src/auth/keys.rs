//! The access-token signing key: Ed25519, kept as a PKCS#8 PEM file. On first start with
//! no file, a key is generated and written (mode 0600) so restarts do not log everyone out.
//! Several instances serving one database must be given the same file.
//!
//! Rotation (`steward rotate-signing-key`, [`rotate`]) retires the current key: its public half
//! is kept in a directory of retired keys, published in the JWK set and accepted for
//! verification until every token it signed has expired, while a new key signs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write a new signing key to {path}: {reason}")]
    Write { path: String, reason: String },
}

/// One public key in JWK form (RFC 8037, OKP / Ed25519).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: &'static str,
    /// Always `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The key id; access tokens name it in their header.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// The JWK set published at `/.well-known/jwks.json`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

pub struct SigningKeys {
    /// The key id of the current key, the one that signs.
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The current key's JWK first, then the retired keys still accepted.
    pub jwks: JwkSet,
    /// Retired keys whose tokens may still be alive: they verify, they never sign.
    retired: Vec<(String, DecodingKey)>,
}

/// A public key's JWK, its id being the RFC 7638 thumbprint.
fn jwk_for(public: &[u8; 32]) -> Jwk {
    let x = URL_SAFE_NO_PAD.encode(public);
    // RFC 7638 thumbprint: the hash of the required members in lexicographic order.
    let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
    Jwk {
        kty: "OKP",
        crv: "Ed25519",
        x,
        kid,
        alg: "EdDSA",
        use_: "sig",
    }
}

/// The suffix of a retired public key's file: `<retired at, unix seconds>-<kid>.pub.pem`.
const RETIRED_SUFFIX: &str = ".pub.pem";

impl SigningKeys {
    fn from_signing_key(key: &SigningKey) -> Result<Self, String> {
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        let public = key.verifying_key().to_bytes();
        let jwk = jwk_for(&public);
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            kid: jwk.kid.clone(),
            jwks: JwkSet { keys: vec![jwk] },
            retired: Vec::new(),
        })
    }

    /// A fresh key held only in memory (tests, and `steward openapi`).
    pub fn ephemeral() -> Result<Self, String> {
        Self::from_signing_key(&SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key that verifies a token whose header names `kid`: the current one or a retired one.
    pub fn decoding_for(&self, kid: &str) -> Option<&DecodingKey> {
        if kid == self.kid {
            return Some(&self.decoding);
        }
        self.retired.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// Accepts (and publishes) a retired public key as well.
    pub fn add_retired(&mut self, public: &VerifyingKey) {
        let jwk = jwk_for(&public.to_bytes());
        if self.decoding_for(&jwk.kid).is_some() {
            return;
        }
        self.retired
            .push((jwk.kid.clone(), DecodingKey::from_ed_der(&public.to_bytes())));
        self.jwks.keys.push(jwk);
    }

    /// Adds the retired keys kept in `dir` (see [`rotate`]) that were retired less than `keep`
    /// ago: a token they signed may still be alive. Older ones are skipped. A missing
    /// directory holds none.
    pub fn with_retired(mut self, dir: &Path, keep: Duration, now: DateTime<Utc>) -> Result<Self, KeyError> {
        for entry in retired_entries(dir)? {
            if now.signed_duration_since(entry.retired_at) < keep {
                self.add_retired(&entry.key);
            }
        }
        Ok(self)
    }

    /// Loads the key at `path`, or creates it there. The flag says whether it was created.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = read_private(&pem, &shown)?;
                let keys = Self::from_signing_key(&key).map_err(|reason| KeyError::Read { path: shown, reason })?;
                Ok((keys, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let pem = standard_pem(&key).map_err(|e| KeyError::Write {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                write_private(path, pem.as_ref().as_bytes()).map_err(|e| KeyError::Write {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                let keys = Self::from_signing_key(&key).map_err(|reason| KeyError::Write { path: shown, reason })?;
                Ok((keys, true))
            }
            Err(e) => Err(KeyError::Read {
                path: shown,
                reason: e.to_string(),
            }),
        }
    }
}

fn read_private(pem: &str, shown: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Read {
        path: shown.to_string(),
        reason: format!("not an Ed25519 PKCS#8 PEM key ({e})"),
    })
}

struct RetiredKey {
    retired_at: DateTime<Utc>,
    key: VerifyingKey,
    path: PathBuf,
}

/// The retired public keys in `dir`; files of other names are left alone.
fn retired_entries(dir: &Path) -> Result<Vec<RetiredKey>, KeyError> {
    let read_error = |path: &Path, reason: String| KeyError::Read {
        path: path.display().to_string(),
        reason,
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(dir, e.to_string())),
    };
    let mut keys = Vec::new();
    for entry in listing {
        let path = entry.map_err(|e| read_error(dir, e.to_string()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(RETIRED_SUFFIX) else {
            continue;
        };
        let retired_at = stem
            .split_once('-')
            .and_then(|(secs, _)| secs.parse::<i64>().ok())
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| read_error(&path, "expected a name <unix seconds>-<kid>.pub.pem".into()))?;
        let pem = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e.to_string()))?;
        let key = VerifyingKey::from_public_key_pem(&pem)
            .map_err(|e| read_error(&path, format!("not an Ed25519 public key PEM ({e})")))?;
        keys.push(RetiredKey { retired_at, key, path });
    }
    keys.sort_by_key(|k| std::cmp::Reverse(k.retired_at));
    Ok(keys)
}

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    pub retired_kid: String,
    pub new_kid: String,
    /// Retired keys deleted because every token they signed has expired.
    pub pruned: usize,
}

/// Retires the key at `key_file` and puts a new one in its place: the old public key goes to
/// `retired_dir` (as `<now>-<kid>.pub.pem`), where servers load it at start so that tokens
/// it signed keep verifying until they expire; the new private key replaces the file
/// atomically. Retired keys older than `keep` are deleted.
pub fn rotate(key_file: &Path, retired_dir: &Path, keep: Duration, now: DateTime<Utc>) -> Result<Rotation, KeyError> {
    let shown = key_file.display().to_string();
    let pem = std::fs::read_to_string(key_file).map_err(|e| KeyError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let old = read_private(&pem, &shown)?;
    let retired_kid = jwk_for(&old.verifying_key().to_bytes()).kid;
    let write_error = |path: &Path, e: &dyn std::fmt::Display| KeyError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    };

    std::fs::create_dir_all(retired_dir).map_err(|e| write_error(retired_dir, &e))?;
    let public_pem = old
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| write_error(retired_dir, &e))?;
    let retired_path = retired_dir.join(format!("{}-{retired_kid}{RETIRED_SUFFIX}", now.timestamp()));
    std::fs::write(&retired_path, public_pem.as_bytes()).map_err(|e| write_error(&retired_path, &e))?;

    let new = SigningKey::generate(&mut rand::rngs::OsRng);
    let new_pem = standard_pem(&new).map_err(|e| write_error(key_file, &e))?;
    let mut staging = key_file.as_os_str().to_owned();
    staging.push(".new");
    let staging = PathBuf::from(staging);
    // A staging file left by an interrupted rotation is replaced.
    let _ = std::fs::remove_file(&staging);
    write_private(&staging, new_pem.as_ref().as_bytes()).map_err(|e| write_error(&staging, &e))?;
    std::fs::rename(&staging, key_file).map_err(|e| write_error(key_file, &e))?;

    let mut pruned = 0;
    for entry in retired_entries(retired_dir)? {
        if now.signed_duration_since(entry.retired_at) >= keep {
            std::fs::remove_file(&entry.path).map_err(|e| write_error(&entry.path, &e))?;
            pruned += 1;
        }
    }
    Ok(Rotation {
        retired_kid,
        new_kid: jwk_for(&new.verifying_key().to_bytes()).kid,
        pruned,
    })
}

/// The key as RFC 8410 writes it (PKCS#8 v1, the private key only): the form `openssl genpkey
/// -algorithm ed25519` produces and that OpenSSL 3 and Python's `cryptography` read. The
/// crate's default (v2, with the public key attached) is refused by both ("extra data").
fn standard_pem(key: &SigningKey) -> ed25519_dalek::pkcs8::Result<impl AsRef<str>> {
    KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_loads_back_with_the_same_kid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let (first, created) = SigningKeys::load_or_generate(&path).unwrap();
        assert!(created);
        let (second, created) = SigningKeys::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(first.kid, second.kid);
        assert_eq!(first.jwks.keys[0].x, second.jwks.keys[0].x);
    }

    #[test]
    fn the_generated_file_is_the_rfc_8410_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        SigningKeys::load_or_generate(&path).unwrap();
        let pem = std::fs::read_to_string(&path).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }
        let prefix = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        assert_eq!(der.len(), 48);
        assert_eq!(der[..16], prefix);
    }

    /// Operators inspect keys with OpenSSL: it must read the file and derive the public key
    /// the JWKS publishes. Skipped where no `openssl` is installed.
    #[test]
    fn openssl_reads_the_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let (keys, _) = SigningKeys::load_or_generate(&path).unwrap();
        let Ok(out) = std::process::Command::new("openssl")
            .args(["pkey", "-in"])
            .arg(&path)
            .args(["-pubout", "-outform", "DER"])
            .output()
        else {
            eprintln!("openssl not installed; skipped");
            return;
        };
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The last 32 bytes of the SubjectPublicKeyInfo are the raw public key.
        let raw = &out.stdout[out.stdout.len() - 32..];
        assert_eq!(URL_SAFE_NO_PAD.encode(raw), keys.jwks.keys[0].x);
    }

    #[test]
    fn a_key_written_by_openssl_or_in_the_older_v2_form_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let v2 = dir.path().join("v2.pem");
        std::fs::write(&v2, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        let (loaded, created) = SigningKeys::load_or_generate(&v2).unwrap();
        assert!(!created);
        assert_eq!(
            loaded.jwks.keys[0].x,
            URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
        );
    }

    #[test]
    fn rotation_keeps_the_old_public_key_for_a_while_then_prunes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let retired = dir.path().join("retired");
        let (first, _) = SigningKeys::load_or_generate(&path).unwrap();
        let keep = Duration::hours(5);
        let t0 = Utc::now() - Duration::hours(6);
        let one = rotate(&path, &retired, keep, t0).unwrap();
        assert_eq!(one.retired_kid, first.kid);
        let (second, _) = SigningKeys::load_or_generate(&path).unwrap();
        assert_eq!(second.kid, one.new_kid);

        // An hour after the first rotation both earlier keys still verify.
        let second_kid = second.kid.clone();
        let keys = second.with_retired(&retired, keep, t0 + Duration::hours(1)).unwrap();
        assert!(keys.decoding_for(&first.kid).is_some());
        assert_eq!(keys.jwks.keys.len(), 2);

        // Six hours later, a second rotation prunes the first key, keeps the second.
        let two = rotate(&path, &retired, keep, Utc::now()).unwrap();
        assert_eq!(two.retired_kid, second_kid);
        assert_eq!(two.pruned, 1);
        let (third, _) = SigningKeys::load_or_generate(&path).unwrap();
        let keys = third.with_retired(&retired, keep, Utc::now()).unwrap();
        assert!(keys.decoding_for(&first.kid).is_none());
        assert!(keys.decoding_for(&second_kid).is_some());
        assert!(!dir.path().join("key.pem.new").exists());
    }

    #[test]
    fn a_stray_file_among_the_retired_keys_is_left_alone_and_a_bad_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), "notes").unwrap();
        let (keys, _) = SigningKeys::load_or_generate(&dir.path().join("key.pem")).unwrap();
        let keys = keys.with_retired(dir.path(), Duration::hours(1), Utc::now()).unwrap();
        assert_eq!(keys.jwks.keys.len(), 1);
        std::fs::write(dir.path().join("12-abc.pub.pem"), "not a key").unwrap();
        assert!(matches!(
            keys.with_retired(dir.path(), Duration::hours(1), Utc::now()),
            Err(KeyError::Read { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            SigningKeys::load_or_generate(&path),
            Err(KeyError::Read { .. })
        ));
    }
}
