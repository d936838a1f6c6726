//! Opaque secrets handed to clients (refresh tokens, reset and invitation links): 256
//! random bits, stored only as a SHA-256 hash so a database leak does not leak them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh secret, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What every API key starts with, so that secret scanners recognise a leaked one.
pub const API_KEY_PREFIX: &str = "stk_";

/// How many characters of an API key are kept in clear to tell keys apart (`stk_` and 8).
const API_KEY_SHOWN: usize = 12;

/// A fresh API key secret: the prefix and 256 random bits.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", new_token())
}

/// The part of an API key that may be shown again after its creation.
pub fn api_key_shown_part(secret: &str) -> String {
    secret.chars().take(API_KEY_SHOWN).collect()
}

/// The hash under which a secret is stored and looked up.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_stably() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }

    #[test]
    fn api_keys_carry_a_recognisable_prefix() {
        let key = new_api_key();
        assert!(key.starts_with("stk_"));
        assert_eq!(key.len(), 4 + 43);
        assert_eq!(api_key_shown_part(&key).len(), 12);
        assert!(key.starts_with(&api_key_shown_part(&key)));
    }
}
