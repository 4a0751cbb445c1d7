//! Image references (`[registry[:port]/]path[:tag][@digest]`), checked with the grammar
//! of the distribution project's `reference` package.

/// An image reference taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `127.0.0.1:5000`, `ghcr.io`; `None` means Docker Hub.
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference: {0}")]
pub struct ImageRefError(&'static str);

fn is_path_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
    let bytes = c.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            if !(separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.bytes().all(|s| s == b'-'))
            {
                return false;
            }
            separator.clear();
        } else if b == b'.' || b == b'_' || b == b'-' {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

fn is_registry(c: &str) -> bool {
    let (host, port) = match c.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (c, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// The references [`ImageRef::parse`] then [`ImageRef::check_not_an_id`] accept, as a
/// regular expression (ECMA-262, for JSON Schemas; with a `maxLength` of 255). Of the
/// image IDs it lets through only the `sha256:<hex>` spelling of one; the parser refuses
/// that too. The alternatives: a registry (a dotted host, a host with a port, or
/// `localhost`) then path components; several path components, the first without a
/// dot (else it would be a registry); one component that cannot be an ID's prefix (not
/// all hex digits); one component with a tag or a digest.
pub const IMAGE_REFERENCE_PATTERN: &str = concat!(
    "^(",
    // registry/path(/path)*
    "([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?((\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)+(:[0-9]{1,5})?|:[0-9]{1,5})|localhost)",
    "/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*",
    "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9+._-]+:[a-f0-9]{32,})?",
    // path/path(/path)*, the first without a dot
    "|[a-z0-9]+((_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)+",
    "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9+._-]+:[a-f0-9]{32,})?",
    // one component that is not all hex digits
    "|(([a-z0-9]+(\\.|_|__|-+))*[a-z0-9]*[g-z][a-z0-9]*((\\.|_|__|-+)[a-z0-9]+)*|[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)+)",
    "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9+._-]+:[a-f0-9]{32,})?",
    // one component with a tag or a digest
    "|[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*",
    "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@[a-z0-9+._-]+:[a-f0-9]{32,})?|@[a-z0-9+._-]+:[a-f0-9]{32,})",
    ")$"
);

impl ImageRef {
    /// Parses and checks a reference.
    ///
    /// # Errors
    /// What part of the reference is malformed.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        if reference.is_empty() {
            return Err(ImageRefError("must not be empty"));
        }
        if reference.len() > 255 {
            return Err(ImageRefError("must be at most 255 characters"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let (algorithm, hex) = digest
                    .split_once(':')
                    .ok_or(ImageRefError("digest must be algorithm:hex"))?;
                let algorithm_ok = !algorithm.is_empty()
                    && algorithm.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    });
                let hex_ok = hex.len() >= 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
                if !algorithm_ok || !hex_ok {
                    return Err(ImageRefError(
                        "digest must be algorithm:hex, e.g. sha256:<64 hex digits>",
                    ));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        // A tag is after the last ':' that follows the last '/' (a registry port comes before).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(ImageRefError(
                    "tag must be 1–128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
                ));
            }
        }
        let mut components: Vec<&str> = name.split('/').collect();
        let registry = if components.len() > 1
            && (components[0].contains('.')
                || components[0].contains(':')
                || components[0] == "localhost")
        {
            let registry = components.remove(0);
            if !is_registry(registry) {
                return Err(ImageRefError("registry must be host[:port]"));
            }
            Some(registry.to_owned())
        } else {
            None
        };
        if components.iter().any(|c| !is_path_component(c)) {
            return Err(ImageRefError(
                "repository path must be lowercase letters, digits and separators (. _ __ -) between them",
            ));
        }
        Ok(Self {
            registry,
            repository: components.join("/"),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl ImageRef {
    /// Refuses a reference the engine would resolve as an image ID (or an ID's
    /// prefix) rather than a name: an ID names whatever image happens to be on the
    /// engine — another user's, or one the operator built — and skips every pull.
    ///
    /// # Errors
    /// The reference is a bare hex name, or `sha256:<hex>`.
    pub fn check_not_an_id(self) -> Result<Self, ImageRefError> {
        let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        let bare = self.registry.is_none() && !self.repository.contains('/');
        if bare && self.tag.is_none() && self.digest.is_none() && is_hex(&self.repository) {
            return Err(ImageRefError(
                "looks like an image ID; name the image by repository and tag or digest",
            ));
        }
        if bare && self.repository == "sha256" && self.tag.as_deref().is_some_and(is_hex) {
            return Err(ImageRefError(
                "is an image ID; name the image by repository and tag or digest",
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_repository_tag_and_digest() {
        let r = ImageRef::parse("127.0.0.1:5000/demo/hello:1.0").expect("valid");
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository, "demo/hello");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = ImageRef::parse("busybox").expect("valid");
        assert_eq!((r.registry, r.tag), (None, None));
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost/app@{digest}")).expect("valid");
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        assert!(ImageRef::parse("ghcr.io/org/my_app-2:v1.2.3-rc.1").is_ok());
        assert!(ImageRef::parse("registry:5000/x").is_ok());
    }

    #[test]
    fn image_ids_and_their_prefixes_are_refused() {
        let id = "4f1e2d3c5b6a".to_owned();
        for bad in [
            id.clone(),
            format!("sha256:{id}"),
            format!("sha256:{}", "a".repeat(64)),
            "abc123".to_owned(),
        ] {
            let checked = ImageRef::parse(&bad).and_then(ImageRef::check_not_an_id);
            assert!(checked.is_err(), "{bad:?}");
        }
        for good in [
            "busybox",
            "abc123:1.0",
            "127.0.0.1:5000/abc123",
            "library/abc123",
            "sha256-tools:1",
        ] {
            let checked = ImageRef::parse(good).and_then(ImageRef::check_not_an_id);
            assert!(checked.is_ok(), "{good:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn references_the_pattern_allows_are_accepted(
            // Repetitions bounded, so most references stay within maxLength.
            reference in crate::matching(
                &IMAGE_REFERENCE_PATTERN
                    .replace("{32,}", "{32,64}")
                    .replace("{0,127}", "{0,16}")
                    .replace(")*", "){0,2}")
                    .replace(")+", "){1,2}")
                    .replace("]+", "]{1,6}")
                    .replace("]*", "]{0,6}")
                    .replace("-+", "-{1,2}")
            )
        ) {
            // The pattern's maxLength and the one ID spelling it admits (see its doc).
            proptest::prop_assume!(reference.len() <= 255 && !reference.starts_with("sha256:"));
            let checked = ImageRef::parse(&reference).and_then(ImageRef::check_not_an_id);
            proptest::prop_assert!(checked.is_ok(), "{reference:?}: {checked:?}");
        }
    }

    #[test]
    fn the_pattern_refuses_what_the_parser_refuses() {
        let pattern = regex::Regex::new(IMAGE_REFERENCE_PATTERN).expect("regex");
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "app:",
            "-app",
            "app@sha256:xyz",
            "a_b.c/x",
            "abc123",
            "4f1e2d3c5b6a",
        ] {
            assert!(!pattern.is_match(bad), "{bad:?}");
        }
        for good in [
            "busybox",
            "abc123:1.0",
            "127.0.0.1:5000/abc123",
            "library/abc123",
            "localhost/app",
            "registry:5000/x",
            "ghcr.io/org/my_app-2:v1.2.3-rc.1",
        ] {
            assert!(pattern.is_match(good), "{good:?}");
        }
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "app:",
            "app:bad tag",
            "-app",
            "app-",
            "app@sha256:xyz",
            "app:.hidden",
            "host:port:x/app",
            "a b",
            "app@",
            &"a".repeat(256),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
