//! The dashboard's files, embedded at build time (`build.rs` lists `api/dashboard/`).
//! They are served under `/assets/<version>/<file>`, where the version is a hash of
//! every file: a new build gets new URLs, so browsers may keep a file for a year, and
//! relative `import`s between the ES modules stay inside one version.
//!
//! For work on the dashboard itself, `LONGIN_DASHBOARD_DEV_DIR` names a directory to
//! read the files from on every request instead (version `dev`, never cached).

use std::path::PathBuf;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));

/// Where files are read from while the dashboard is worked on, if anywhere.
fn dev_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("LONGIN_DASHBOARD_DEV_DIR").map(PathBuf::from))
        .as_ref()
}

/// The version in every asset URL: 16 hex digits of a hash over every file's name and
/// content (`dev` when read from a directory).
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        if dev_dir().is_some() {
            return "dev".to_owned();
        }
        let mut hash = Sha256::new();
        for (name, bytes) in FILES {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
            hash.update(bytes);
        }
        hex::encode(&hash.finalize()[..8])
    })
}

/// Whether `name` could be one of the files: a plain file name, no path.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A file's content, by name: the embedded bytes themselves (no copy per request),
/// or the file as read now from the dev directory.
pub fn file(name: &str) -> Option<bytes::Bytes> {
    if !is_plain_name(name) {
        return None;
    }
    if let Some(dir) = dev_dir() {
        return std::fs::read(dir.join(name)).ok().map(Into::into);
    }
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| bytes::Bytes::from_static(bytes))
}

/// The content type a file is served with, by its extension.
#[must_use]
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_files() {
        for bad in [
            "",
            "../Cargo.toml",
            "a/b.js",
            ".hidden",
            "x%2f.js",
            "a\\b.js",
        ] {
            assert!(file(bad).is_none(), "{bad}");
        }
        assert!(file("style.css").is_some());
    }

    #[test]
    fn the_version_is_a_hash_of_the_files() {
        let v = version();
        assert_eq!(v.len(), 16);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    }

    #[test]
    fn types_follow_extensions() {
        assert_eq!(content_type("main.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("icon.svg"), "image/svg+xml");
    }
}
