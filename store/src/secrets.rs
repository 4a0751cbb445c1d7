//! Secret env values at rest: sealed with ChaCha20-Poly1305 under the installation's
//! secrets key before they are written, opened when read, so a copy of the database
//! (a backup, a stolen disk) holds no secret in clear. The same key, through HMAC,
//! makes fingerprints of specs (the hash in container names and labels) that nobody
//! without the key can match against guessed secret values.
//!
//! Values written before sealing existed stay readable as they are and are sealed the
//! next time their application is written.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use longin_crds::application::ApplicationSpec;

use crate::StoreError;

/// Marks a sealed value: `sealed:v1:<base64 of nonce and ciphertext>`.
const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;

/// Seals and opens secret values, and fingerprints, with one installation's key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    fingerprint_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl Sealer {
    /// A sealer from the installation's key material (any length; 32 random bytes or
    /// more): the cipher's and the fingerprints' keys are derived from it, each for its
    /// own purpose.
    #[must_use]
    pub fn new(key_material: &[u8]) -> Self {
        let cipher_key = hmac(key_material, b"longin secrets: seal v1");
        Self {
            cipher: ChaCha20Poly1305::new(&Key::from(cipher_key)),
            fingerprint_key: hmac(key_material, b"longin secrets: fingerprint v1"),
        }
    }

    /// `clear`, sealed (a fresh random nonce each time).
    #[must_use]
    pub fn seal(&self, clear: &str) -> String {
        let mut nonce = [0_u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption of a byte string in memory cannot fail for this cipher.
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), clear.as_bytes())
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// The clear text of `value`; a value that was never sealed is returned as it is.
    ///
    /// # Errors
    /// A sealed value that this key did not seal, or that was altered.
    pub fn open(&self, value: &str) -> Result<String, StoreError> {
        let Some(encoded) = value.strip_prefix(PREFIX) else {
            return Ok(value.to_owned());
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| StoreError::Corrupt("a sealed secret is not base64".to_owned()))?;
        if bytes.len() < NONCE_BYTES {
            return Err(StoreError::Corrupt(
                "a sealed secret is too short".to_owned(),
            ));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| StoreError::Corrupt("a sealed secret is too short".to_owned()))?;
        let clear = self
            .cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| {
                StoreError::Corrupt(
                    "a sealed secret does not open with this installation's secrets key".to_owned(),
                )
            })?;
        String::from_utf8(clear)
            .map_err(|_| StoreError::Corrupt("a sealed secret is not UTF-8".to_owned()))
    }

    /// A keyed fingerprint of `data`, hex.
    #[must_use]
    pub fn fingerprint(&self, data: &[u8]) -> String {
        hmac(&self.fingerprint_key, data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// `spec` with its secret values sealed, as it is written (clear without a sealer).
#[must_use]
pub fn seal_spec(sealer: Option<&Sealer>, spec: &ApplicationSpec) -> ApplicationSpec {
    let mut spec = spec.clone();
    if let Some(sealer) = sealer {
        for var in spec.env.iter_mut().filter(|v| v.secret) {
            if let Some(value) = var.value.as_mut()
                && !value.starts_with(PREFIX)
            {
                *value = sealer.seal(value);
            }
        }
    }
    spec
}

/// `spec` as read, with its secret values opened.
///
/// # Errors
/// A sealed value that cannot be opened (no key, another key, altered).
pub fn open_spec(
    sealer: Option<&Sealer>,
    mut spec: ApplicationSpec,
) -> Result<ApplicationSpec, StoreError> {
    for var in spec.env.iter_mut().filter(|v| v.secret) {
        if let Some(value) = var.value.as_mut()
            && value.starts_with(PREFIX)
        {
            let sealer = sealer.ok_or_else(|| {
                StoreError::Corrupt(
                    "a secret is sealed but this process has no secrets key".to_owned(),
                )
            })?;
            *value = sealer.open(value)?;
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_never_reads_in_clear() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal("hunter2");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("hunter2"));
        assert_ne!(sealed, sealer.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).expect("opens"), "hunter2");
        assert!(Sealer::new(&[8; 32]).open(&sealed).is_err(), "another key");
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(sealer.open(&altered).is_err(), "altered");
        assert_eq!(sealer.open("legacy clear").expect("clear"), "legacy clear");
    }

    #[test]
    fn fingerprints_depend_on_the_key() {
        let (a, b) = (Sealer::new(&[1; 32]), Sealer::new(&[2; 32]));
        assert_eq!(a.fingerprint(b"spec"), a.fingerprint(b"spec"));
        assert_ne!(a.fingerprint(b"spec"), b.fingerprint(b"spec"));
        assert_ne!(a.fingerprint(b"spec"), a.fingerprint(b"spec2"));
    }
}
