//! The migrations are embedded by `sqlx::migrate!`; without this, cargo would not
//! rebuild the store when a migration is added and an incremental build would miss it.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
