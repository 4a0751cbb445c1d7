//! Where an application's image is built from (`spec.source.git`), and the name of
//! the images Longin builds. Pure: the checks here are syntax; who may use which kind
//! of URL is the API's decision ([`GitUrl::is_privileged`]).

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::Image;

/// The repository of built images: never on a registry, so never pulled.
pub const BUILT_IMAGE_REPOSITORY: &str = "longin";

/// The git URLs `spec.source.git.url` takes: `https://host[:port]/path`,
/// `http://…` and `file:///path` (those two for admins), `ssh://[user@]host[:port]/path`
/// and scp-like `user@host:path`. A host name, an IPv4 or a bracketed IPv6 address; no
/// credentials in the URL, no spaces, nothing that starts like an option. The JSON
/// Schema carries this text and the validator matches it (Rust's `regex` and ECMA
/// read it alike).
pub const GIT_URL_PATTERN: &str = concat!(
    "^(?:",
    "(?:https|http)://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]{2,45}\\])(?::[0-9]{1,5})?/[A-Za-z0-9._~%+=,@/-]{1,1900}",
    "|ssh://(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,63}@)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]{2,45}\\])(?::[0-9]{1,5})?/[A-Za-z0-9._~%+=,@/-]{1,1900}",
    "|[A-Za-z0-9_][A-Za-z0-9._-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[A-Za-z0-9._~%+=,@-][A-Za-z0-9._~%+=,@/-]{0,1899}",
    "|file:///[A-Za-z0-9._~%+=,@/-]{0,1900}",
    ")$"
);

/// Branch names: what git takes for a branch, simplified (git refuses the rest of its
/// rules, such as `..`, at the fetch, and the build says so).
pub const BRANCH_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$";

/// Paths in the repository (`dockerfile`, `context`): relative, `/`-separated. One
/// that leaves the repository (`..`) or a Dockerfile outside the context fails its
/// build with that reason (the context writer refuses them).
pub const REPOSITORY_PATH_PATTERN: &str = "^[A-Za-z0-9_.][A-Za-z0-9._ /+=,@-]{0,1023}$";

static GIT_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(GIT_URL_PATTERN).expect("GIT_URL_PATTERN is a valid regex"));
static BRANCH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(BRANCH_PATTERN).expect("BRANCH_PATTERN is a valid regex"));
static REPOSITORY_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(REPOSITORY_PATH_PATTERN).expect("REPOSITORY_PATH_PATTERN is a valid regex")
});

/// An application built from a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    pub git: GitSource,
}

/// A branch of a git repository, built with a Dockerfile in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitSource {
    /// `https://…` or ssh (`ssh://git@host/path`, `git@host:path`); `file://` and
    /// loopback hosts only for admins.
    #[schemars(length(min = 1, max = 2048), pattern(GIT_URL_PATTERN))]
    pub url: String,
    /// The branch a push to which redeploys the application.
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1, max = 255), pattern(BRANCH_PATTERN))]
    pub branch: String,
    /// The Dockerfile's path from the repository's root; inside `context`.
    #[serde(default = "default_dockerfile")]
    #[schemars(length(min = 1, max = 1024), pattern(REPOSITORY_PATH_PATTERN))]
    pub dockerfile: String,
    /// The build context's directory from the repository's root (`.`: all of it).
    #[serde(default = "default_context")]
    #[schemars(length(min = 1, max = 1024), pattern(REPOSITORY_PATH_PATTERN))]
    pub context: String,
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_dockerfile() -> String {
    "Dockerfile".to_owned()
}

fn default_context() -> String {
    ".".to_owned()
}

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
    Ssh,
    File,
}

/// A git URL as far as Longin cares: its transport and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    pub transport: Transport,
    /// Lower-cased, without brackets or port; `None` for `file://`.
    pub host: Option<String>,
}

impl GitUrl {
    /// Parses the URL forms git accepts that Longin allows.
    ///
    /// # Errors
    /// Why the URL is refused.
    pub fn parse(url: &str) -> Result<Self, &'static str> {
        if url.len() > 2048 || !GIT_URL.is_match(url) {
            return Err(
                "must be an https://host/path, ssh://[user@]host/path or user@host:path git URL (file:// and http:// for admins); no credentials, no spaces",
            );
        }
        if url.starts_with("file://") {
            return Ok(Self {
                transport: Transport::File,
                host: None,
            });
        }
        let (transport, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Transport::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Transport::Http, rest)
        } else if let Some(rest) = url.strip_prefix("ssh://") {
            (Transport::Ssh, rest)
        } else {
            // scp-like `git@github.com:acme/web.git`: the host ends at the first ':'.
            let host = url.split_once(':').map_or(url, |(h, _)| h);
            return Ok(Self {
                transport: Transport::Ssh,
                host: Some(host_of(host)?),
            });
        };
        let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
        Ok(Self {
            transport,
            host: Some(host_of(authority)?),
        })
    }

    /// Whether only an admin may build from it: local files and loopback, link-local
    /// or unspecified hosts are the server's own, and plain HTTP would carry a token
    /// in clear.
    #[must_use]
    pub fn is_privileged(&self) -> bool {
        if matches!(self.transport, Transport::File | Transport::Http) {
            return true;
        }
        let Some(host) = &self.host else {
            return true;
        };
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        host.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        })
    }
}

/// The host of `[user@]host[:port]`, lower-cased.
fn host_of(authority: &str) -> Result<String, &'static str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split_once(']')
            .map(|(h, _)| h)
            .ok_or("has an unclosed '['")?
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err("must name a host");
    }
    Ok(host.to_ascii_lowercase())
}

/// A path inside the repository (`dockerfile`, `context`).
///
/// # Errors
/// Why the path is refused.
pub fn check_repository_path(path: &str) -> Result<(), &'static str> {
    if REPOSITORY_PATH.is_match(path) {
        Ok(())
    } else {
        Err(
            "must be a relative path in the repository of 1 to 1024 characters: letters, digits, '._ /+=,@-'",
        )
    }
}

/// A branch name.
///
/// # Errors
/// Why the name is refused.
pub fn check_branch(branch: &str) -> Result<(), &'static str> {
    if BRANCH.is_match(branch) {
        Ok(())
    } else {
        Err(
            "must be a branch name of 1 to 255 characters: letters, digits, '._/-', not starting with '.', '/' or '-'",
        )
    }
}

/// `dockerfile` relative to `context`, or `None` when it lies outside.
#[must_use]
pub fn dockerfile_in_context(context: &str, dockerfile: &str) -> Option<String> {
    let context = context.trim_start_matches("./").trim_end_matches('/');
    let dockerfile = dockerfile.trim_start_matches("./");
    if context.is_empty() || context == "." {
        return Some(dockerfile.to_owned());
    }
    dockerfile
        .strip_prefix(context)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
        .map(str::to_owned)
}

/// The image Longin builds for application `uid` at `commit`: `longin/<uid>:<sha12>`.
///
/// # Panics
/// Never for a uid and a hex commit (both are valid reference parts).
#[must_use]
pub fn built_image(uid: &str, commit: &str) -> Image {
    let short = &commit[..commit.len().min(12)];
    Image::parse(&format!("{BUILT_IMAGE_REPOSITORY}/{uid}:{short}"))
        .expect("a uid and a commit make a valid reference")
}

/// Whether `image` is one Longin built for application `uid` (so it is never pulled).
#[must_use]
pub fn is_built_image(image: &Image, uid: &str) -> bool {
    built_for(image) == Some(uid)
}

/// The application uid a built image's name carries, if it has the built form:
/// `longin/<uid>` on Docker Hub however the reference spells Docker Hub
/// (`docker.io/…`, `index.docker.io/…`), since the engine reads them all as one name.
#[must_use]
pub fn built_for(image: &Image) -> Option<&str> {
    let reference = image.reference();
    let on_hub = reference.registry.as_deref().is_none_or(|r| {
        matches!(
            r.to_ascii_lowercase().as_str(),
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    });
    if !on_hub {
        return None;
    }
    reference
        .repository
        .strip_prefix(BUILT_IMAGE_REPOSITORY)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|uid| !uid.is_empty() && !uid.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_by_transport_and_privilege() {
        let cases = [
            ("https://github.com/acme/web.git", Transport::Https, false),
            ("ssh://git@github.com/acme/web.git", Transport::Ssh, false),
            ("git@github.com:acme/web.git", Transport::Ssh, false),
            ("https://127.0.0.1:8080/web.git", Transport::Https, true),
            ("https://[::1]/web.git", Transport::Https, true),
            ("https://LOCALHOST/web.git", Transport::Https, true),
            ("https://169.254.169.254/latest", Transport::Https, true),
            ("http://git.example.com/web.git", Transport::Http, true),
            ("file:///srv/git/web.git", Transport::File, true),
        ];
        for (url, transport, privileged) in cases {
            let parsed = GitUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.transport, transport, "{url}");
            assert_eq!(parsed.is_privileged(), privileged, "{url}");
        }
    }

    #[test]
    fn refused_urls() {
        for url in [
            "",
            "--upload-pack=touch /tmp/x",
            "ftp://example.com/x.git",
            "https://github.com",
            "https://user:token@github.com/acme/web.git",
            "file://relative/path",
            "https://github.com/acme/web .git",
            "/srv/git/web.git",
            "ext::sh -c touch% /tmp/pwned",
        ] {
            assert!(GitUrl::parse(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn repository_paths_and_branches() {
        assert!(check_repository_path("docker/web.Dockerfile").is_ok());
        assert!(check_repository_path(".").is_ok());
        // `..` passes here: the build refuses a path that leaves the repository.
        for bad in ["", "/etc/passwd", "a\\b", "-x", "a\0b"] {
            assert!(check_repository_path(bad).is_err(), "{bad}");
        }
        for good in ["main", "release/1.2", "feature-x"] {
            assert!(check_branch(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", ".hidden", "a@{b", "a:b", "/x"] {
            assert!(check_branch(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn what_the_patterns_allow_is_accepted(
            url in crate::matching(GIT_URL_PATTERN),
            branch in crate::matching(BRANCH_PATTERN),
            path in crate::matching(REPOSITORY_PATH_PATTERN),
        ) {
            // The schema's maxLength bounds it too.
            proptest::prop_assume!(url.len() <= 2048);
            proptest::prop_assert!(GitUrl::parse(&url).is_ok(), "{}", url);
            proptest::prop_assert!(check_branch(&branch).is_ok());
            proptest::prop_assert!(check_repository_path(&path).is_ok());
        }
    }

    #[test]
    fn dockerfile_relative_to_its_context() {
        assert_eq!(
            dockerfile_in_context(".", "Dockerfile").as_deref(),
            Some("Dockerfile")
        );
        assert_eq!(
            dockerfile_in_context("web", "web/Dockerfile").as_deref(),
            Some("Dockerfile")
        );
        assert_eq!(
            dockerfile_in_context("./web/", "./web/docker/Dockerfile").as_deref(),
            Some("docker/Dockerfile")
        );
        assert_eq!(dockerfile_in_context("web", "Dockerfile"), None);
        assert_eq!(dockerfile_in_context("web", "webapp/Dockerfile"), None);
    }

    #[test]
    fn built_images_are_named_by_app_and_commit() {
        let uid = "0b9e6f7e-5a2b-4c1d-9e8f-1a2b3c4d5e6f";
        let image = built_image(uid, "757107ea0eb2509fc211221cce984b8a37570b6d");
        assert_eq!(image.as_str(), format!("longin/{uid}:757107ea0eb2"));
        assert!(is_built_image(&image, uid));
        assert!(!is_built_image(&image, "0b9e6f7e"));
        let pulled = Image::parse("127.0.0.1:5000/longin/busybox:1.0").expect("image");
        assert!(!is_built_image(&pulled, uid));
        // Docker Hub spelled out is the same name to the engine.
        for spelled in [
            format!("docker.io/longin/{uid}:abc"),
            format!("index.docker.io/longin/{uid}:abc"),
            format!("longin/{uid}@sha256:{}", "a".repeat(64)),
        ] {
            let image = Image::parse(&spelled).expect("image");
            assert_eq!(built_for(&image), Some(uid), "{spelled}");
        }
    }
}
