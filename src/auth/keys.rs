//! The access-token signing key: Ed25519, kept as a PKCS#8 PEM file. On first start with
//! no file, a key is generated and written (mode 0600) so restarts do not log everyone out.
//! Several instances serving one database must be given the same file.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
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
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub jwks: JwkSet,
}

impl SigningKeys {
    fn from_signing_key(key: &SigningKey) -> Result<Self, String> {
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        let public = key.verifying_key().to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        // RFC 7638 thumbprint: the hash of the required members in lexicographic order.
        let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            jwks: JwkSet {
                keys: vec![Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x,
                    kid: kid.clone(),
                    alg: "EdDSA",
                    use_: "sig",
                }],
            },
            kid,
        })
    }

    /// A fresh key held only in memory (tests, and `steward openapi`).
    pub fn ephemeral() -> Result<Self, String> {
        Self::from_signing_key(&SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Loads the key at `path`, or creates it there. The flag says whether it was created.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Read {
                    path: shown.clone(),
                    reason: format!("not an Ed25519 PKCS#8 PEM key ({e})"),
                })?;
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
