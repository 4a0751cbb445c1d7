//! Longin's resource types and their validation. Pure: no I/O.

pub mod application;
pub mod crd;
pub mod document;
pub mod image;
pub mod limits;
mod name;
pub mod quantity;
pub mod validation;

pub use application::Application;
pub use name::{NameError, validate_dns1123_label};

/// The API group and version of every Longin resource.
pub const API_VERSION: &str = "longin.io/v1";
