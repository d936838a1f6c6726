//! Password hashing: argon2id at OWASP's parameters (19 MiB, t=2, p=1), run on the
//! blocking pool, at most `hash_concurrency` at once so that a burst of logins cannot take
//! every core from the rest of the service.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

use crate::auth::secrets;
use crate::error::ApiError;

/// How long a request waits for a free hashing slot before it is told to come back.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

fn argon2() -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(19 * 1024, 2, 1, None)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    let hasher = argon2().map_err(|e| ApiError::internal(e.to_string()))?;
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn verify_now(password: &str, stored: &str) -> Result<bool, ApiError> {
    let parsed = PasswordHash::new(stored).map_err(|e| ApiError::internal(format!("stored hash unreadable: {e}")))?;
    let hasher = argon2().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(hasher.verify_password(password.as_bytes(), &parsed).is_ok())
}

#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    /// Verified against when the user does not exist or has no password, so that an unknown
    /// identifier costs the same time as a wrong password and reveals nothing.
    dummy_hash: Arc<String>,
}

impl Passwords {
    pub fn new(concurrency: usize) -> Result<Self, ApiError> {
        let dummy_hash = hash_now(&secrets::new_token())?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::unavailable("Too many logins at once; try again in a moment."))?
            .map_err(ApiError::internal)?;
        let result = actix_web::web::block(move || {
            let _permit = permit;
            job()
        })
        .await?;
        result
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password)).await
    }

    /// Whether `password` matches `stored`; with no stored hash, burns the same time and
    /// answers `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let dummy = self.dummy_hash.clone();
        self.run(move || match stored {
            Some(hash) => verify_now(&password, &hash),
            None => verify_now(&password, &dummy).map(|_| false),
        })
        .await
    }
}

/// Hashes outside a request (the `create-owner` command).
pub fn hash_blocking(password: &str) -> Result<String, ApiError> {
    hash_now(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash_now("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_now("correct horse battery staple", &hash).unwrap());
        assert!(!verify_now("wrong horse battery staple", &hash).unwrap());
    }
}
