//! Longin's resource types and their validation. Pure: no I/O.

pub mod application;
pub mod crd;
pub mod document;
pub mod image;
pub mod limits;
mod name;
pub mod quantity;
pub mod schema;
pub mod source;
pub mod validation;

pub use application::Application;
pub use name::{NameError, validate_dns1123_label};

/// The API group and version of every Longin resource.
pub const API_VERSION: &str = "longin.io/v1";

/// Strings an anchored (`^…$`) pattern matches, for property tests of the patterns the
/// JSON Schemas carry (proptest reads no anchors).
#[cfg(test)]
pub(crate) fn matching(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    let inner = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("an anchored pattern");
    proptest::string::string_regex(inner).expect("a pattern proptest reads")
}
