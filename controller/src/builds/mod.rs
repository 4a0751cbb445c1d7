//! The builder: turns queued revisions into rolled-out images. It runs on the leading
//! controller beside the reconciler, takes revisions from the store (whichever API
//! process queued them: a webhook, a redeploy, a rollback, an apply of a new source),
//! builds at most `concurrency` at once and one per application, and hands each image
//! to the application as a new generation that the reconciler rolls out.

pub mod cleanup;
pub mod context;
pub mod git;
pub mod images;
pub mod log;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

pub use worker::{run, trigger_label};

/// How builds run.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Where the per-application git mirrors live (`<data-dir>/git`).
    pub root: PathBuf,
    /// Builds at once, across applications.
    pub concurrency: usize,
    /// A build (fetch, context, image) running longer fails.
    pub timeout: Duration,
    /// Built images kept per application: those of its newest succeeded revisions.
    pub keep_images: usize,
    /// Memory of a build step's container, bytes.
    pub memory: i64,
    /// The largest build context sent to the engine, bytes.
    pub max_context_bytes: u64,
    /// The build log kept per revision, bytes.
    pub max_log_bytes: usize,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("./data/git"),
            concurrency: 1,
            timeout: Duration::from_secs(15 * 60),
            keep_images: 5,
            memory: 1 << 30,
            max_context_bytes: 512 << 20,
            max_log_bytes: 1 << 20,
        }
    }
}
