//! The `longin` binary's parts: command-line configuration, the server assembly that
//! `serve` and `api` run, and the admin commands. `main.rs` only dispatches.

pub mod admin;
pub mod backup;
pub mod cli;
pub mod client;
pub mod data_dir;
pub mod http;
pub mod server;
