//! Resource names: DNS-1123 labels, as Kubernetes requires for most object names, so a
//! name can become a container name, a hostname or a label value unchanged.

/// Why a name is not a DNS-1123 label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 63 characters, got {0}")]
    TooLong(usize),
    #[error(
        "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
    )]
    InvalidCharacters,
}

/// [`validate_dns1123_label`] as a regular expression (ECMA-262, for JSON Schemas).
pub const DNS1123_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Checks that `name` is a DNS-1123 label: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
///
/// # Errors
/// The first rule the name breaks.
pub fn validate_dns1123_label(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 63 {
        return Err(NameError::TooLong(name.len()));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ends_ok = name.starts_with(alnum) && name.ends_with(alnum);
    if !ends_ok || !name.chars().all(|c| alnum(c) || c == '-') {
        return Err(NameError::InvalidCharacters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_style_names() {
        for name in ["a", "hello", "web-1", "0abc", &"x".repeat(63)] {
            assert_eq!(validate_dns1123_label(name), Ok(()), "{name}");
        }
    }

    proptest::proptest! {
        #[test]
        fn names_the_pattern_allows_are_valid(name in crate::matching(DNS1123_LABEL_PATTERN)) {
            proptest::prop_assert_eq!(validate_dns1123_label(&name), Ok(()));
        }
    }

    #[test]
    fn rejects_each_broken_rule() {
        assert_eq!(validate_dns1123_label(""), Err(NameError::Empty));
        assert_eq!(
            validate_dns1123_label(&"x".repeat(64)),
            Err(NameError::TooLong(64))
        );
        for name in ["Hello", "-web", "web-", "we_b", "web.app", "wéb"] {
            assert_eq!(
                validate_dns1123_label(name),
                Err(NameError::InvalidCharacters),
                "{name}"
            );
        }
    }
}
