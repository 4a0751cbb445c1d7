//! Storage for Longin over SQLite (embedded default) and PostgreSQL, with one set of
//! queries for both.
//!
//! Queries go through sqlx's `Any` driver with `$N` placeholders, which both SQLite and
//! PostgreSQL accept, and portable SQL (times are integer milliseconds, ids are text
//! UUIDs). Only the migrations differ per dialect. Refresh tokens can also live in
//! Redis (see [`refresh_tokens`]).

pub mod account_cache;
pub mod api_logs;
pub mod api_tokens;
pub mod application_index;
pub mod applications;
pub mod backup;
pub mod blocked_ports;
pub mod bus;
pub mod caching;
pub mod changes;
pub mod containers;
pub mod credentials;
mod db;
pub mod deployments;
mod error;
pub mod leases;
mod listen;
pub mod networks;
pub mod port_pool;
pub mod quotas;
pub mod refresh_tokens;
pub mod resource_versions;
pub mod secrets;
pub mod settings;
pub mod status;
pub mod system;
pub mod time;
pub mod usage;
pub mod users;
pub mod webhooks;

pub use db::{Backend, Store, StoreOptions};
pub use error::StoreError;
pub use time::now_ms;
