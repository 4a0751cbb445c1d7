//! What a personal API token looks like: `lgn_` and 256 random bits (base64url). The
//! prefix tells it apart from an access token (a JWT, which starts `eyJ`) without
//! parsing, and lets secret scanners recognise a leaked one.

use super::session::{hash_token, random_secret};

/// Every API token starts with this.
pub const PREFIX: &str = "lgn_";

/// A new token and the hash it is stored under.
#[must_use]
pub fn mint() -> (String, String) {
    let token = format!("{PREFIX}{}", random_secret());
    let hash = hash_token(&token);
    (token, hash)
}

/// Whether a bearer token is meant as an API token (valid or not).
#[must_use]
pub fn is_api_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_carry_the_prefix_and_256_bits_and_are_stored_by_their_hash() {
        let (token, hash) = mint();
        assert!(is_api_token(&token), "{token}");
        // 32 bytes in base64url without padding: 43 characters.
        assert_eq!(token.len(), PREFIX.len() + 43, "{token}");
        assert_eq!(hash, hash_token(&token));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token[PREFIX.len()..]));
        assert_ne!(mint().0, token, "each token is new");
    }

    #[test]
    fn access_tokens_are_not_api_tokens() {
        assert!(!is_api_token("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(!is_api_token("LGN_abc"));
    }
}
