//! What a valid registration is. Pure: every rule is checked and every bad field
//! reported at once.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::FieldErrors;

/// The registration form. Every field is optional in the type so that missing ones are
/// reported together with the invalid ones; the document says which are required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct RegisterRequest {
    /// 3–32 of `[a-z0-9_-]`.
    #[schema(required = true, value_type = String, pattern = "^[a-z0-9_-]{3,32}$")]
    pub username: Option<String>,
    /// `local@domain.tld`; stored lower-cased.
    #[schema(required = true, value_type = String, max_length = 254, pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,30})?@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?){1,3}$")]
    pub email: Option<String>,
    /// 10 to 1024 characters.
    #[schema(required = true, value_type = String, min_length = 10, max_length = 1024)]
    pub password: Option<String>,
    /// Accepted and ignored: repeating a password is the sign-up form's business.
    #[schema(deprecated)]
    pub confirm_password: Option<String>,
}

/// A registration that passed every rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Registration {
    pub username: String,
    /// Lower-cased, so one address cannot register twice in two spellings.
    pub email: String,
    pub password: String,
}

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Beyond this a password is a denial-of-service attempt, not a password.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Checks a registration form.
///
/// # Errors
/// Every bad field with what is wrong with it.
pub fn validate(form: RegisterRequest) -> Result<Registration, FieldErrors> {
    let mut errors = FieldErrors::new();
    let username = form.username.unwrap_or_default();
    if let Err(message) = check_username(&username) {
        errors.insert("username".to_owned(), message.to_owned());
    }
    let email = form.email.unwrap_or_default().trim().to_lowercase();
    if !is_valid_email(&email) {
        errors.insert(
            "email".to_owned(),
            "must be a valid email address".to_owned(),
        );
    }
    let password = form.password.unwrap_or_default();
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        errors.insert(
            "password".to_owned(),
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        );
    } else if chars > MAX_PASSWORD_CHARS {
        errors.insert(
            "password".to_owned(),
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        );
    }
    if errors.is_empty() {
        Ok(Registration {
            username,
            email,
            password,
        })
    } else {
        Err(errors)
    }
}

/// The longest username that can exist.
pub const MAX_USERNAME_BYTES: usize = 32;

/// Usernames: 3–32 of `[a-z0-9_-]`.
///
/// # Errors
/// What rule the name breaks.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    if username.is_empty() {
        return Err("is required");
    }
    if !(3..=MAX_USERNAME_BYTES).contains(&username.len()) {
        return Err("must be 3 to 32 characters");
    }
    if !username
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err("may only contain a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

/// A practical email check: `local@domain` with a dotted domain of DNS labels, within
/// RFC 5321's lengths. Deliverability is not something a syntax check can know.
#[must_use]
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok && email.len() <= 254
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(username: &str, email: &str, password: &str, confirm: &str) -> RegisterRequest {
        RegisterRequest {
            username: Some(username.to_owned()),
            email: Some(email.to_owned()),
            password: Some(password.to_owned()),
            confirm_password: Some(confirm.to_owned()),
        }
    }

    #[test]
    fn good_registration_passes_with_email_lowercased() {
        let ok = validate(form(
            "ada_l-1",
            "Ada@Example.COM",
            "long enough pw",
            "long enough pw",
        ));
        assert_eq!(
            ok,
            Ok(Registration {
                username: "ada_l-1".to_owned(),
                email: "ada@example.com".to_owned(),
                password: "long enough pw".to_owned(),
            })
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = validate(form("A!", "nope", "short", "other")).expect_err("invalid");
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(fields, ["email", "password", "username"]);
    }

    #[test]
    fn missing_fields_are_reported_as_required() {
        let errors = validate(RegisterRequest::default()).expect_err("invalid");
        assert_eq!(errors["username"], "is required");
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn username_rules() {
        assert!(check_username("abc").is_ok());
        assert!(check_username(&"a".repeat(32)).is_ok());
        assert!(check_username("ab").is_err());
        assert!(check_username(&"a".repeat(33)).is_err());
        assert!(check_username("Abc").is_err());
        assert!(check_username("a.bc").is_err());
    }

    #[test]
    fn email_rules() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y@ex-ample.io",
        ] {
            assert!(is_valid_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a@@b.co",
            "a b@c.de",
            "a@-b.co",
            "a@b..co",
            ".a@b.co",
            "a..b@c.de",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
