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
    /// Where built images are pushed for the nodes to pull (`--registry`:
    /// `host[:port][/path]`); none on one engine, which runs what it built.
    pub registry: Option<String>,
    /// The engine runs replicas on other machines, which cannot pull an image that
    /// was only built: builds need `registry`.
    pub multi_node: bool,
}

/// Where the nodes pull built image `image` (`longin/<uid>:<sha12>`) from:
/// `<registry>/longin/<uid>:<sha12>`. The spec and revisions keep the built name, so
/// which images count as built (never pulled, only this app's) does not change.
#[must_use]
pub fn in_registry(registry: &str, image: &str) -> String {
    format!("{}/{image}", registry.trim_end_matches('/'))
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
            registry: None,
            multi_node: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_registry;

    #[test]
    fn built_images_are_pushed_under_the_registry() {
        assert_eq!(
            in_registry("10.0.0.1:5000", "longin/abc:0123456789ab"),
            "10.0.0.1:5000/longin/abc:0123456789ab"
        );
        assert_eq!(
            in_registry("registry.example/team/", "longin/abc:1"),
            "registry.example/team/longin/abc:1"
        );
    }
}
