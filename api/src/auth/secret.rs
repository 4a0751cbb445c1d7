//! The JWT signing secret: from the environment, or generated once and kept in the
//! data dir. There is deliberately no built-in default.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// File name of the generated secret inside the data dir.
pub const SECRET_FILE: &str = "jwt-secret";
/// File name of the generated key that seals secret env values at rest.
pub const SECRETS_KEY_FILE: &str = "secrets-key";
/// 256 bits, as RFC 7518 asks of an HS256 key.
const MIN_SECRET_BYTES: usize = 32;

/// Why no secret could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret given in the environment must be at least {MIN_SECRET_BYTES} bytes long")]
    TooShort,
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds too short a secret; delete it to generate a new one")]
    CorruptFile { path: PathBuf },
}

/// The signing secret: `from_env` if given, else the data dir's file, created with a
/// fresh random secret (mode 0600) on first start.
///
/// # Errors
/// A too-short secret, or the file cannot be read or written.
pub fn load_or_create(from_env: Option<&str>, data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    load_or_create_file(from_env, data_dir, SECRET_FILE)
}

/// A secret of the data dir: `from_env` if given, else file `name` in the data dir,
/// created with a fresh random secret (mode 0600) on first start.
///
/// # Errors
/// A too-short secret, or the file cannot be read or written.
pub fn load_or_create_file(
    from_env: Option<&str>,
    data_dir: &Path,
    name: &str,
) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = from_env {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort);
        }
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(name);
    let io = |source| SecretError::Io {
        path: path.clone(),
        source,
    };
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let encoded = STANDARD.encode(bytes);
    // create_new: if two processes start at once, one writes and both read its secret.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            file.write_all(encoded.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "generated a new secret");
        }
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "secret file is readable by others; restricting it to 0600");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
        }
        Err(err) => return Err(io(err)),
    }
    let stored = std::fs::read_to_string(&path).map_err(io)?;
    let secret = stored.trim().as_bytes().to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SecretError::CorruptFile { path });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_is_private_long_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create(None, dir.path()).expect("create");
        let second = load_or_create(None, dir.path()).expect("reload");
        assert_eq!(first, second);
        assert!(first.len() >= MIN_SECRET_BYTES);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn secret_from_environment_wins_and_must_be_long() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = "x".repeat(40);
        assert_eq!(
            load_or_create(Some(&secret), dir.path()).expect("env"),
            secret.as_bytes()
        );
        assert!(!dir.path().join(SECRET_FILE).exists());
        assert!(matches!(
            load_or_create(Some("short"), dir.path()),
            Err(SecretError::TooShort)
        ));
    }
}
