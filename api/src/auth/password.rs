//! Password hashing: argon2id with OWASP's parameters, off the async runtime, with a
//! bounded number of hashes in flight so a login flood cannot exhaust memory or starve
//! the runtime (each hash takes 19 MiB and tens of milliseconds of one core).

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// Why hashing failed; never because of what the user typed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("argon2 failed: {0}")]
    Argon2(String),
    #[error("hasher is shut down")]
    Closed,
}

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of nothing in particular, verified against when the user is unknown so
    /// that an unknown name and a wrong password take the same time.
    decoy: Arc<OnceCell<String>>,
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// A hasher running at most `max_in_flight` hashes at once.
    #[must_use]
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    /// Hashes a password into a PHC string.
    ///
    /// # Errors
    /// Only internal failures.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Argon2(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `hash`. A malformed stored hash verifies as false.
    ///
    /// # Errors
    /// Only internal failures.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        let password = password.to_owned();
        let hash = hash.to_owned();
        Ok(tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await?)
    }

    /// Spends as long as a real verification and answers false: for unknown users.
    ///
    /// # Errors
    /// Only internal failures.
    pub async fn verify_decoy(&self, password: &str) -> Result<bool, PasswordError> {
        let decoy = self
            .decoy
            .get_or_try_init(|| self.hash("longin-decoy-password"))
            .await?
            .clone();
        self.verify(password, &decoy).await?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse battery").await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery", &hash)
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse battery", &hash)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn malformed_stored_hash_never_verifies() {
        let hasher = PasswordHasher::new(1);
        assert!(
            !hasher
                .verify("anything", "not-a-phc-string")
                .await
                .expect("verify")
        );
        assert!(!hasher.verify_decoy("anything").await.expect("decoy"));
    }
}
