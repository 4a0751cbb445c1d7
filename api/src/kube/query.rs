//! The query parameters Kubernetes clients send, read by hand so that a bad one is a
//! `Status` naming it (and unknown ones, which clients add freely, are ignored).

use std::time::Duration;

use super::selectors::{FieldSelector, LabelSelector};
use super::status::KubeError;
use super::table::Include;

/// `?a=b&…` as pairs.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn flag(value: &str) -> bool {
    matches!(value, "true" | "1" | "True")
}

/// What a list or watch asks for.
#[derive(Debug, Default)]
pub struct ListOptions {
    pub watch: bool,
    /// `resourceVersion`, if a number other than 0 (0 and none mean "any").
    pub resource_version: Option<i64>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_after: Option<(String, String)>,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    pub include: Include,
}

impl ListOptions {
    /// # Errors
    /// 400 naming the parameter.
    pub fn parse(raw: Option<&str>) -> Result<Self, KubeError> {
        let mut options = Self::default();
        for (key, value) in pairs(raw) {
            match key.as_str() {
                "watch" => options.watch = flag(&value),
                "resourceVersion" => {
                    let version: i64 = value.parse().map_err(|_| {
                        KubeError::bad_request(format!(
                            "resourceVersion: {value:?} is not a resource version"
                        ))
                    })?;
                    options.resource_version = (version > 0).then_some(version);
                }
                "labelSelector" => {
                    options.labels = LabelSelector::parse(&value)
                        .map_err(|e| KubeError::bad_request(format!("labelSelector: {e}")))?;
                }
                "fieldSelector" => {
                    options.fields = FieldSelector::parse(&value)
                        .map_err(|e| KubeError::bad_request(format!("fieldSelector: {e}")))?;
                }
                "limit" => {
                    let limit: usize = value.parse().map_err(|_| {
                        KubeError::bad_request(format!("limit: {value:?} is not a count"))
                    })?;
                    options.limit = (limit > 0).then_some(limit);
                }
                "continue" if !value.is_empty() => {
                    options.continue_after = Some(decode_continue(&value)?);
                }
                "timeoutSeconds" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        KubeError::bad_request(format!(
                            "timeoutSeconds: {value:?} is not a number of seconds"
                        ))
                    })?;
                    options.timeout = Some(Duration::from_secs(secs));
                }
                "allowWatchBookmarks" => options.bookmarks = flag(&value),
                "includeObject" => {
                    options.include =
                        Include::parse(Some(&value)).map_err(KubeError::bad_request)?;
                }
                _ => {}
            }
        }
        Ok(options)
    }
}

/// A write's options: dry runs are refused rather than carried out for real.
///
/// # Errors
/// 400 for `dryRun`.
pub fn check_write(raw: Option<&str>) -> Result<WriteOptions, KubeError> {
    let mut options = WriteOptions::default();
    for (key, value) in pairs(raw) {
        match key.as_str() {
            "dryRun" if !value.is_empty() => {
                return Err(KubeError::bad_request(
                    "dryRun is not supported by Longin: nothing was changed",
                ));
            }
            "fieldManager" => options.field_manager = Some(value),
            "force" => options.force = flag(&value),
            _ => {}
        }
    }
    Ok(options)
}

/// What a write says about itself.
#[derive(Debug, Default)]
pub struct WriteOptions {
    pub field_manager: Option<String>,
    pub force: bool,
}

/// `continue` tokens name the last item of the page: `namespace/name`, base64url.
#[must_use]
pub fn encode_continue(namespace: &str, name: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{namespace}/{name}"))
}

fn decode_continue(token: &str) -> Result<(String, String), KubeError> {
    use base64::Engine as _;
    let bad = || KubeError::bad_request("continue: not a token this server handed out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ns, name) = text.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_s_list_and_watch_parameters_are_read() {
        let o = ListOptions::parse(Some(
            "watch=true&resourceVersion=42&labelSelector=tier%3Dweb&fieldSelector=metadata.name%3Dweb&limit=500&timeoutSeconds=300&allowWatchBookmarks=true&includeObject=Object",
        ))
        .expect("parse");
        assert!(o.watch && o.bookmarks);
        assert_eq!(o.resource_version, Some(42));
        assert_eq!(o.limit, Some(500));
        assert_eq!(o.timeout, Some(Duration::from_secs(300)));
        assert_eq!(o.fields.only_name(), Some("web"));
        assert_eq!(o.include, Include::Object);
        assert_eq!(
            ListOptions::parse(Some("resourceVersion=0"))
                .expect("0")
                .resource_version,
            None
        );
        for bad in [
            "resourceVersion=x",
            "limit=-1",
            "labelSelector=a%3D(",
            "continue=%%%",
            "includeObject=All",
        ] {
            assert!(ListOptions::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn continue_tokens_round_trip_and_dry_runs_are_refused() {
        let token = encode_continue("alice", "web");
        let o = ListOptions::parse(Some(&format!("continue={token}"))).expect("parse");
        assert_eq!(
            o.continue_after,
            Some(("alice".to_owned(), "web".to_owned()))
        );
        assert!(check_write(Some("dryRun=All")).is_err());
        let w = check_write(Some("fieldManager=kubectl&force=true")).expect("write");
        assert_eq!(w.field_manager.as_deref(), Some("kubectl"));
        assert!(w.force);
    }
}
