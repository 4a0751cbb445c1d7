//! The `longin` binary's parts: command-line configuration, the server assembly that
//! `serve` and `api` run, the admin commands and the client. `main.rs` parses the
//! command line and runs the command with them.

pub mod admin;
pub mod agent;
pub mod backup;
pub mod cli;
pub mod client;
pub mod data_dir;
pub mod http;
pub mod server;
pub mod tls;
