//! Longin's resource types and their validation. Pure: no I/O.
//!
//! The `Application` resource lands here with its issue; what is here now is what the
//! rest of Longin already needs from it.

mod name;

pub use name::{NameError, validate_dns1123_label};

/// The API group and version of every Longin resource.
pub const API_VERSION: &str = "longin.io/v1";
