//! Reading GitHub webhook deliveries: checking the signature, parsing the
//! `ping` and `push` payloads, and deciding whether a push asks an
//! application to deploy.
//!
//! The order matters and is the caller's: [`verify_signature`] over the raw
//! body first, then [`parse_delivery`], then [`judge_push`]. Nothing here does
//! I/O, so the caller also bounds the body size before handing it over.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::Sha256;
use thiserror::Error;

// ---------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------

/// Why a delivery's `X-Hub-Signature-256` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The delivery carried no `X-Hub-Signature-256` header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hex digits")]
    Malformed,
    /// The header is well formed but is not the body's HMAC under the secret.
    #[error("the X-Hub-Signature-256 header does not match the body")]
    Mismatch,
}

const SIGNATURE_PREFIX: &str = "sha256=";
/// A SHA-256 digest is 32 bytes, so 64 hex digits.
const SIGNATURE_HEX_LEN: usize = 64;

/// Checks `X-Hub-Signature-256` over the raw body bytes, in constant time
/// (hmac's `verify_slice`), before anything is parsed.
///
/// Hex digits are accepted in either case: GitHub sends lowercase, but a
/// proxy that re-renders the header should not break deliveries.
///
/// # Errors
///
/// [`SignatureError::Missing`] when `header` is `None`,
/// [`SignatureError::Malformed`] when it is not `sha256=<64 hex>`, and
/// [`SignatureError::Mismatch`] when it does not match — including when
/// `secret` is empty, since anybody can sign with an empty key.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let digest_hex = header
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(SignatureError::Malformed)?;
    if digest_hex.len() != SIGNATURE_HEX_LEN {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(digest_hex).map_err(|_| SignatureError::Malformed)?;
    // An empty key is one every sender knows: a signature under it proves
    // nothing, so a misconfigured empty secret must fail closed.
    if secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    // HMAC takes keys of any length, so this cannot fail; if it ever did,
    // refusing the delivery is the safe answer.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

// ---------------------------------------------------------------------------
// Payload
// ---------------------------------------------------------------------------

/// Why a delivery's body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The Content-Type is neither JSON nor form-encoded; it holds the header
    /// as sent, empty when there was none.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// A form-encoded body without the `payload` field GitHub puts JSON in.
    #[error("the form-encoded body has no `payload` field")]
    MissingPayloadField,
    /// The JSON is malformed or lacks a field; the message names the
    /// top-level field at fault, or the line and column of a syntax error.
    #[error("invalid JSON payload: {0}")]
    Json(String),
    /// The body is not UTF-8, which both JSON and GitHub's forms require.
    #[error("the body is not UTF-8")]
    NotUtf8,
    /// A field parsed but holds a value that cannot be acted on.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The payload field at fault, e.g. `after`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// One webhook delivery, as far as Longin cares about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one Delivery is built per request and matched at once; boxing would only add an allocation and clumsier patterns"
)]
pub enum Delivery {
    /// Sent once when a hook is created, to check that it is reachable.
    Ping {
        /// A random GitHub aphorism.
        zen: Option<String>,
        /// The id of the hook that was created.
        hook_id: Option<i64>,
    },
    /// Commits (or a deletion) were pushed to a ref.
    Push(Push),
    /// Any other event; its body is not read.
    Other {
        /// The `X-GitHub-Event` header as sent.
        event: String,
    },
}

/// The parts of a `push` payload that decide and describe a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The repository pushed to.
    pub repository: Repository,
    /// The full ref pushed, e.g. `refs/heads/main` (GitHub's `ref`).
    pub git_ref: String,
    /// The ref's commit before the push, all zeros when it was created.
    pub before: String,
    /// The ref's commit after the push, all zeros when it was deleted.
    /// Checked by [`parse_delivery`] to be 40 or 64 lowercase hex digits.
    pub after: String,
    /// Whether the push deleted the ref (false when the sender omits it).
    pub deleted: bool,
    /// Whether the push created the ref (false when the sender omits it).
    pub created: bool,
    /// Whether the push was forced (false when the sender omits it).
    pub forced: bool,
    /// The commit now at the ref; absent on a deletion.
    pub head_commit: Option<Commit>,
    /// Who pushed.
    pub pusher: Option<Person>,
}

/// A repository as described in a push payload.
///
/// Every URL is optional: GitHub sends them all, but GitHub-compatible
/// senders (Gitea, Forgejo) leave some out, and one is enough to match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Repository {
    /// `owner/name`.
    pub full_name: String,
    /// The HTTPS clone URL, e.g. `https://github.com/acme/web.git`.
    pub clone_url: Option<String>,
    /// The SSH clone URL, e.g. `git@github.com:acme/web.git`.
    pub ssh_url: Option<String>,
    /// The web page, e.g. `https://github.com/acme/web`.
    pub html_url: Option<String>,
    /// The git-protocol URL, e.g. `git://github.com/acme/web.git`.
    pub git_url: Option<String>,
}

/// A commit as described in a push payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Commit {
    /// The commit id.
    pub id: String,
    /// The full commit message.
    pub message: String,
    /// The commit time, ISO 8601 as GitHub sends it.
    pub timestamp: String,
    /// The commit's author.
    pub author: Person,
}

/// A git identity: a commit author or the pusher.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Person {
    /// The name as recorded in git.
    pub name: String,
    /// The e-mail as recorded in git; GitHub may send `null`.
    pub email: Option<String>,
    /// The GitHub login, present only when GitHub knows the person.
    pub username: Option<String>,
}

type Object = Map<String, Value>;

/// Parses a delivery's body. `event` is the `X-GitHub-Event` header;
/// `content_type` the Content-Type header.
///
/// JSON (`application/json`, with or without `; charset=utf-8`) or
/// `application/x-www-form-urlencoded` with the JSON in the `payload=` field.
/// Unknown fields are ignored, since GitHub keeps adding them. Call this only
/// after [`verify_signature`] has accepted the same bytes.
///
/// # Errors
///
/// A [`PayloadError`] when a `ping` or `push` body cannot be read, or when a
/// push's `after` is not 40 or 64 lowercase hex digits. Other events never
/// fail: their body is not looked at.
pub fn parse_delivery(
    event: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Delivery, PayloadError> {
    // Other events carry nothing Longin acts on, and GitHub adds new ones;
    // not parsing them lets a hook subscribed to everything still succeed.
    if event != "ping" && event != "push" {
        return Ok(Delivery::Other {
            event: event.to_owned(),
        });
    }
    let text = payload_text(content_type, body)?;
    let root: Value =
        serde_json::from_str(&text).map_err(|error| PayloadError::Json(error.to_string()))?;
    let object = root
        .as_object()
        .ok_or_else(|| PayloadError::Json("the payload is not a JSON object".to_owned()))?;
    if event == "ping" {
        Ok(Delivery::Ping {
            zen: optional(object, "zen")?,
            hook_id: optional(object, "hook_id")?,
        })
    } else {
        parse_push(object).map(Delivery::Push)
    }
}

/// The JSON text of a body, unwrapped from a form when it is one.
fn payload_text<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Cow<'a, str>, PayloadError> {
    let header = content_type.unwrap_or("");
    // Parameters such as `charset=utf-8` change nothing: JSON is UTF-8.
    let media_type = header
        .split_once(';')
        .map_or(header, |(media, _)| media)
        .trim();
    let is_json = media_type.eq_ignore_ascii_case("application/json");
    let is_form = media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded");
    if !is_json && !is_form {
        return Err(PayloadError::UnsupportedContentType(header.to_owned()));
    }
    let text = std::str::from_utf8(body).map_err(|_| PayloadError::NotUtf8)?;
    if is_json {
        return Ok(Cow::Borrowed(text));
    }
    // The decoder replaces percent-escapes that are not UTF-8 rather than
    // failing; the signature has already vouched for the bytes, and the
    // fields acted on (refs, ids, URLs) are ASCII, so that cannot change a
    // verdict.
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value)
        .ok_or(PayloadError::MissingPayloadField)
}

/// Builds a [`Push`] field by field, so an error can name the field at fault
/// (`serde_json` alone only gives a line and column).
fn parse_push(object: &Object) -> Result<Push, PayloadError> {
    let after: String = required(object, "after")?;
    check_commit_id("after", &after)?;
    Ok(Push {
        repository: required(object, "repository")?,
        git_ref: required(object, "ref")?,
        before: required(object, "before")?,
        after,
        deleted: flag(object, "deleted")?,
        created: flag(object, "created")?,
        forced: flag(object, "forced")?,
        head_commit: optional(object, "head_commit")?,
        pusher: optional(object, "pusher")?,
    })
}

/// A field that must be present and not `null`.
fn required<T: DeserializeOwned>(object: &Object, name: &str) -> Result<T, PayloadError> {
    match object.get(name) {
        None | Some(Value::Null) => Err(PayloadError::Json(format!("missing field `{name}`"))),
        Some(value) => T::deserialize(value).map_err(|error| field_error(name, &error)),
    }
}

/// A field that may be absent or `null`.
fn optional<T: DeserializeOwned>(object: &Object, name: &str) -> Result<Option<T>, PayloadError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|error| field_error(name, &error)),
    }
}

/// A boolean that GitHub-compatible senders may leave out; absent is false.
/// Treating a missing `deleted` as false is safe: a deletion also shows as
/// an all-zero `after`, which [`judge_push`] checks too.
fn flag(object: &Object, name: &str) -> Result<bool, PayloadError> {
    optional(object, name).map(Option::unwrap_or_default)
}

fn field_error(name: &str, error: &serde_json::Error) -> PayloadError {
    PayloadError::Json(format!("`{name}`: {error}"))
}

/// Checks that `id` is a full git object id: 40 hex digits for SHA-1
/// repositories, 64 for SHA-256 ones, lowercase as git and GitHub write them
/// (so ids compare equal as plain strings downstream).
fn check_commit_id(field: &'static str, id: &str) -> Result<(), PayloadError> {
    if id.len() != 40 && id.len() != 64 {
        return Err(PayloadError::Invalid {
            field,
            reason: format!("expected 40 or 64 hex digits, got {} bytes", id.len()),
        });
    }
    if !id
        .bytes()
        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(PayloadError::Invalid {
            field,
            reason: "expected only lowercase hex digits".to_owned(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------

/// What a push asks of an application following `branch` of the repository
/// `source_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushVerdict {
    /// Deploy this commit.
    Deploy {
        /// The pushed commit id: 40 lowercase hex digits (64 in a SHA-256
        /// repository).
        commit: String,
    },
    /// Nothing to do, and why.
    Ignored(IgnoreReason),
}

/// Why a push does not concern an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The push went to a different repository.
    OtherRepository,
    /// The ref is not a branch (`refs/tags/...`, `refs/pull/...`, ...).
    NotABranch,
    /// The push went to another branch of the same repository.
    OtherBranch {
        /// The branch that was pushed, without `refs/heads/`.
        branch: String,
    },
    /// The followed branch was deleted: there is nothing to deploy.
    BranchDeleted,
}

impl IgnoreReason {
    /// A stable snake-case name, for logs and API responses.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OtherRepository => "other_repository",
            Self::NotABranch => "not_a_branch",
            Self::OtherBranch { .. } => "other_branch",
            Self::BranchDeleted => "branch_deleted",
        }
    }
}

/// Decides what `push` asks of an application following `branch` (a bare
/// name such as `main`) of the repository at `source_url`.
///
/// The repository matches when any URL the payload gives for it names the
/// same repository as `source_url` (see [`same_repository`]), so an
/// application may be set up with whichever form its owner copied.
#[must_use]
pub fn judge_push(push: &Push, source_url: &str, branch: &str) -> PushVerdict {
    let repository = &push.repository;
    let urls = [
        &repository.clone_url,
        &repository.ssh_url,
        &repository.git_url,
        &repository.html_url,
    ];
    let ours = urls
        .into_iter()
        .filter_map(Option::as_deref)
        .any(|url| same_repository(source_url, url));
    if !ours {
        return PushVerdict::Ignored(IgnoreReason::OtherRepository);
    }
    let pushed = match push.git_ref.strip_prefix("refs/heads/") {
        Some(name) if !name.is_empty() => name,
        _ => return PushVerdict::Ignored(IgnoreReason::NotABranch),
    };
    if pushed != branch {
        return PushVerdict::Ignored(IgnoreReason::OtherBranch {
            branch: pushed.to_owned(),
        });
    }
    // Git reports a deletion as a push of the all-zero id; checking it as
    // well as `deleted` covers senders that omit the flag.
    if push.deleted || push.after.bytes().all(|byte| byte == b'0') {
        return PushVerdict::Ignored(IgnoreReason::BranchDeleted);
    }
    PushVerdict::Deploy {
        commit: push.after.clone(),
    }
}

// ---------------------------------------------------------------------------
// Repository URLs
// ---------------------------------------------------------------------------

/// Host names that all mean GitHub itself; `ssh.github.com` is GitHub's
/// documented SSH-over-port-443 endpoint.
const GITHUB_HOSTS: [&str; 3] = ["github.com", "www.github.com", "ssh.github.com"];

/// True when two git URLs name the same repository.
///
/// Both are normalised to a host and a path first: the scheme and any
/// `user[:password]@` are dropped, the scp-like `host:path` form is read as
/// git reads it, and leading and trailing `/` and a trailing `.git` are
/// stripped from the path. So `https://github.com/acme/web(.git)(/)`,
/// `git@github.com:acme/web.git`, `ssh://git@github.com/acme/web.git` and
/// `git://github.com/acme/web.git` all name host `github.com`, path
/// `acme/web`. On GitHub both host and path compare case-insensitively, as
/// GitHub treats them; elsewhere only the host does, and a port is part of
/// the host. Beyond that, matching is exact: `acme/web` never matches
/// `acme/web2` or `acme/we`, and a URL with no path matches nothing.
#[must_use]
pub fn same_repository(a: &str, b: &str) -> bool {
    match (RepositoryLocation::parse(a), RepositoryLocation::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A repository URL reduced to what identifies the repository.
#[derive(Debug, PartialEq, Eq)]
struct RepositoryLocation {
    /// Lowercase, with the port when one was given (except on GitHub).
    host: String,
    /// Without leading or trailing `/` or a trailing `.git`.
    path: String,
}

impl RepositoryLocation {
    /// `None` when the URL has no path, so it cannot match anything.
    fn parse(url: &str) -> Option<Self> {
        let (authority, path) = split_url(url.trim());
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host)
            .to_ascii_lowercase();
        let github = github_host(&host);
        let path = path.trim_start_matches('/');
        // GitHub names are case-insensitive, so fold before stripping `.git`
        // to catch `.GIT` as well.
        let path = if github.is_some() {
            Cow::Owned(path.to_ascii_lowercase())
        } else {
            Cow::Borrowed(path)
        };
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        if path.is_empty() {
            return None;
        }
        Some(Self {
            host: github.map_or(host, str::to_owned),
            path: path.to_owned(),
        })
    }
}

/// Splits a URL into its authority (`user@host:port`) and path.
fn split_url(url: &str) -> (&str, &str) {
    if let Some((_scheme, rest)) = url.split_once("://") {
        return rest
            .find('/')
            .map_or((rest, ""), |slash| rest.split_at(slash));
    }
    // Git's rule for the scp-like form: a colon before any slash makes
    // `host:path`; anything else is a local path, with no host.
    match url.find(':') {
        Some(colon) if !url[..colon].contains('/') => (&url[..colon], &url[colon + 1..]),
        _ => ("", url),
    }
}

/// The canonical GitHub host when `host` (lowercase, maybe with a port) is
/// one of GitHub's; the port is dropped since every GitHub port serves the
/// same repositories.
fn github_host(host: &str) -> Option<&'static str> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    GITHUB_HOSTS.contains(&name).then_some(GITHUB_HOSTS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = include_str!("../fixtures/github/push.json");
    const PING: &str = include_str!("../fixtures/github/ping.json");
    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const SOURCE: &str = "https://github.com/acme/web.git";
    const AFTER: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
    const ZERO: &str = "0000000000000000000000000000000000000000";

    // GitHub's documented test vector for X-Hub-Signature-256.
    const DOC_SECRET: &[u8] = b"It's a Secret to Everybody";
    const DOC_BODY: &[u8] = b"Hello, World!";
    const DOC_HEADER: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The push fixture with `edit` applied, re-serialised.
    fn push_with(edit: impl FnOnce(&mut Object)) -> String {
        let mut value: Value = serde_json::from_str(PUSH).unwrap();
        edit(value.as_object_mut().unwrap());
        value.to_string()
    }

    fn parse_push_json(body: &str) -> Push {
        match parse_delivery("push", JSON, body.as_bytes()).unwrap() {
            Delivery::Push(push) => push,
            other => panic!("expected a push, got {other:?}"),
        }
    }

    fn push_error(body: &str) -> PayloadError {
        parse_delivery("push", JSON, body.as_bytes()).unwrap_err()
    }

    fn verdict(body: &str, source: &str, branch: &str) -> PushVerdict {
        judge_push(&parse_push_json(body), source, branch)
    }

    // --- signature --------------------------------------------------------

    #[test]
    fn documented_vector_verifies() {
        assert_eq!(
            verify_signature(DOC_SECRET, DOC_BODY, Some(DOC_HEADER)),
            Ok(())
        );
    }

    #[test]
    fn one_changed_body_byte_is_a_mismatch() {
        let mut body = DOC_BODY.to_vec();
        body[0] ^= 0x01;
        assert_eq!(
            verify_signature(DOC_SECRET, &body, Some(DOC_HEADER)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn one_changed_signature_digit_is_a_mismatch() {
        let header = DOC_HEADER.replace("757107", "757108");
        assert_eq!(
            verify_signature(DOC_SECRET, DOC_BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        assert_eq!(
            verify_signature(b"another secret", DOC_BODY, Some(DOC_HEADER)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_secret_never_verifies() {
        let header = sign(b"", DOC_BODY);
        assert_eq!(
            verify_signature(b"", DOC_BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header_is_missing() {
        assert_eq!(
            verify_signature(DOC_SECRET, DOC_BODY, None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let header = format!(
            "sha256={}",
            DOC_HEADER["sha256=".len()..].to_ascii_uppercase()
        );
        assert_eq!(
            verify_signature(DOC_SECRET, DOC_BODY, Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn surrounding_whitespace_is_accepted() {
        let header = format!(" {DOC_HEADER}\t");
        assert_eq!(
            verify_signature(DOC_SECRET, DOC_BODY, Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers_are_malformed() {
        let digest = &DOC_HEADER["sha256=".len()..];
        let cases = [
            String::new(),
            "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59".to_owned(),
            format!("sha1={digest}"),
            digest.to_owned(),
            format!("SHA256={digest}"),
            format!("sha256={}", &digest[..63]),
            format!("sha256={digest}0"),
            format!("sha256={}g", &digest[..63]),
            format!("sha256= {digest}"),
            format!("sha256={}é", &digest[..62]),
        ];
        for header in cases {
            assert_eq!(
                verify_signature(DOC_SECRET, DOC_BODY, Some(&header)),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn fixture_signed_as_github_would_verifies() {
        let header = sign(b"hook secret", PUSH.as_bytes());
        assert_eq!(
            verify_signature(b"hook secret", PUSH.as_bytes(), Some(&header)),
            Ok(())
        );
    }

    // --- parsing ----------------------------------------------------------

    #[test]
    fn push_fixture_parses_every_field() {
        let push = parse_push_json(PUSH);
        let expected = Push {
            repository: Repository {
                full_name: "acme/web".to_owned(),
                clone_url: Some("https://github.com/acme/web.git".to_owned()),
                ssh_url: Some("git@github.com:acme/web.git".to_owned()),
                html_url: Some("https://github.com/acme/web".to_owned()),
                git_url: Some("git://github.com/acme/web.git".to_owned()),
            },
            git_ref: "refs/heads/main".to_owned(),
            before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".to_owned(),
            after: AFTER.to_owned(),
            deleted: false,
            created: false,
            forced: false,
            head_commit: Some(Commit {
                id: AFTER.to_owned(),
                message: "Update README.md\n\nMention the deploy hook.".to_owned(),
                timestamp: "2019-05-15T15:20:30-07:00".to_owned(),
                author: Person {
                    name: "Mona Octocat".to_owned(),
                    email: Some("octocat@github.com".to_owned()),
                    username: Some("octocat".to_owned()),
                },
            }),
            pusher: Some(Person {
                name: "octocat".to_owned(),
                email: Some("octocat@github.com".to_owned()),
                username: None,
            }),
        };
        assert_eq!(push, expected);
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        for content_type in [
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "Application/JSON",
            " application/json ",
        ] {
            let delivery = parse_delivery("push", Some(content_type), PUSH.as_bytes());
            assert!(matches!(delivery, Ok(Delivery::Push(_))), "{content_type}");
        }
    }

    #[test]
    fn form_encoded_push_parses_like_json() {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", PUSH)
            .finish();
        let delivery = parse_delivery("push", FORM, body.as_bytes()).unwrap();
        assert_eq!(delivery, Delivery::Push(parse_push_json(PUSH)));
    }

    #[test]
    fn form_encoded_ping_decodes_plus_and_percent_escapes() {
        let body = "other=1&payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%2C\
                    %22hook_id%22%3A42%7D";
        let delivery = parse_delivery("ping", FORM, body.as_bytes()).unwrap();
        let expected = Delivery::Ping {
            zen: Some("Keep it logically awesome.".to_owned()),
            hook_id: Some(42),
        };
        assert_eq!(delivery, expected);
    }

    #[test]
    fn form_without_payload_field_is_refused() {
        let error = parse_delivery("push", FORM, b"payloads=%7B%7D&x=1").unwrap_err();
        assert_eq!(error, PayloadError::MissingPayloadField);
    }

    #[test]
    fn unsupported_content_types_are_refused() {
        for (content_type, shown) in [
            (Some("text/plain"), "text/plain"),
            (Some("application/jsonp"), "application/jsonp"),
            (
                Some("multipart/form-data; boundary=x"),
                "multipart/form-data; boundary=x",
            ),
            (None, ""),
        ] {
            let error = parse_delivery("push", content_type, PUSH.as_bytes()).unwrap_err();
            assert_eq!(
                error,
                PayloadError::UnsupportedContentType(shown.to_owned())
            );
        }
    }

    #[test]
    fn non_utf8_bodies_are_refused() {
        let body = b"{\"zen\": \"\xff\xfe\"}";
        assert_eq!(
            parse_delivery("ping", JSON, body),
            Err(PayloadError::NotUtf8)
        );
        assert_eq!(
            parse_delivery("ping", FORM, b"payload=\xff"),
            Err(PayloadError::NotUtf8)
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let PayloadError::Json(message) = push_error("{\"ref\": \n  tru}") else {
            panic!("expected a JSON error");
        };
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn non_object_payload_is_refused() {
        assert!(matches!(push_error("[1, 2]"), PayloadError::Json(_)));
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let cases = [
            (
                push_with(|o| drop(o.remove("repository"))),
                "missing field `repository`",
            ),
            (push_with(|o| drop(o.remove("ref"))), "missing field `ref`"),
            (
                push_with(|o| drop(o.insert("ref".into(), Value::Null))),
                "missing field `ref`",
            ),
            (
                push_with(|o| drop(o.insert("forced".into(), "yes".into()))),
                "`forced`: invalid type",
            ),
            (
                push_with(|o| drop(o["repository"].as_object_mut().unwrap().remove("full_name"))),
                "`repository`: missing field `full_name`",
            ),
            (
                push_with(|o| drop(o["head_commit"].as_object_mut().unwrap().remove("author"))),
                "`head_commit`: missing field `author`",
            ),
        ];
        for (body, expected) in cases {
            let PayloadError::Json(message) = push_error(&body) else {
                panic!("expected a JSON error for {expected}");
            };
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn invalid_after_is_refused() {
        for after in [
            "",
            "0d1a26e",
            "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C",
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1z",
            "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c0",
            "refs/heads/main",
        ] {
            let body = push_with(|o| drop(o.insert("after".into(), after.into())));
            let error = push_error(&body);
            assert!(
                matches!(error, PayloadError::Invalid { field: "after", .. }),
                "{after:?}: {error:?}"
            );
        }
    }

    #[test]
    fn sha256_after_is_accepted() {
        let after = "a".repeat(64);
        let body = push_with(|o| drop(o.insert("after".into(), after.clone().into())));
        assert_eq!(
            verdict(&body, SOURCE, "main"),
            PushVerdict::Deploy { commit: after }
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = push_with(|o| {
            o.insert(
                "brand_new".into(),
                serde_json::json!({ "nested": [1, 2, 3] }),
            );
            let repository = o["repository"].as_object_mut().unwrap();
            repository.insert("custom_properties".into(), serde_json::json!({ "tier": 1 }));
        });
        assert_eq!(parse_push_json(&body), parse_push_json(PUSH));
    }

    #[test]
    fn minimal_compatible_payload_parses_with_defaults() {
        // What a Gitea-style sender may send: no flags, no git_url, no pusher.
        let body = format!(
            r#"{{"ref":"refs/heads/main","before":"{ZERO}","after":"{AFTER}",
                "repository":{{"full_name":"acme/web",
                               "clone_url":"http://127.0.0.1:3000/acme/web.git"}}}}"#
        );
        let push = parse_push_json(&body);
        assert!(!push.deleted && !push.created && !push.forced);
        assert_eq!((push.head_commit, push.pusher), (None, None));
        assert_eq!(push.repository.git_url, None);
    }

    #[test]
    fn ping_fixture_parses() {
        let delivery = parse_delivery("ping", JSON, PING.as_bytes()).unwrap();
        let expected = Delivery::Ping {
            zen: Some("Responsive is better than fast.".to_owned()),
            hook_id: Some(109_948_940),
        };
        assert_eq!(delivery, expected);
    }

    #[test]
    fn other_events_are_not_parsed() {
        let delivery = parse_delivery("issues", Some("text/plain"), b"\xff not json").unwrap();
        let expected = Delivery::Other {
            event: "issues".to_owned(),
        };
        assert_eq!(delivery, expected);
    }

    // --- verdict ----------------------------------------------------------

    #[test]
    fn push_to_followed_branch_deploys() {
        let expected = PushVerdict::Deploy {
            commit: AFTER.to_owned(),
        };
        for source in [
            SOURCE,
            "git@github.com:acme/web.git",
            "https://github.com/Acme/Web",
            "ssh://git@github.com/acme/web",
        ] {
            assert_eq!(verdict(PUSH, source, "main"), expected, "{source}");
        }
    }

    #[test]
    fn any_payload_url_may_match() {
        let body = push_with(|o| {
            let repository = o["repository"].as_object_mut().unwrap();
            for key in ["clone_url", "ssh_url", "git_url"] {
                repository.remove(key);
            }
        });
        assert!(matches!(
            verdict(&body, SOURCE, "main"),
            PushVerdict::Deploy { .. }
        ));
    }

    #[test]
    fn new_branch_deploys() {
        let body = push_with(|o| {
            o.insert("created".into(), true.into());
            o.insert("before".into(), ZERO.into());
        });
        assert!(matches!(
            verdict(&body, SOURCE, "main"),
            PushVerdict::Deploy { .. }
        ));
    }

    #[test]
    fn tag_push_is_not_a_branch() {
        let body = push_with(|o| drop(o.insert("ref".into(), "refs/tags/v1.0.0".into())));
        let expected = PushVerdict::Ignored(IgnoreReason::NotABranch);
        assert_eq!(verdict(&body, SOURCE, "main"), expected);
        // A tag named like the branch is still not the branch.
        let body = push_with(|o| drop(o.insert("ref".into(), "refs/tags/main".into())));
        assert_eq!(verdict(&body, SOURCE, "main"), expected);
    }

    #[test]
    fn other_refs_are_not_branches() {
        for git_ref in [
            "refs/pull/7/head",
            "main",
            "refs/heads/",
            "refs/remotes/origin/main",
        ] {
            let body = push_with(|o| drop(o.insert("ref".into(), git_ref.into())));
            let expected = PushVerdict::Ignored(IgnoreReason::NotABranch);
            assert_eq!(verdict(&body, SOURCE, "main"), expected, "{git_ref}");
        }
    }

    #[test]
    fn other_branch_is_named() {
        for pushed in ["feature/x", "main2", "mai", "Main"] {
            let body =
                push_with(|o| drop(o.insert("ref".into(), format!("refs/heads/{pushed}").into())));
            let expected = PushVerdict::Ignored(IgnoreReason::OtherBranch {
                branch: pushed.to_owned(),
            });
            assert_eq!(verdict(&body, SOURCE, "main"), expected, "{pushed}");
        }
    }

    #[test]
    fn branch_deletion_is_reported() {
        let body = push_with(|o| {
            o.insert("deleted".into(), true.into());
            o.insert("after".into(), ZERO.into());
            o.insert("head_commit".into(), Value::Null);
            o.insert("commits".into(), serde_json::json!([]));
        });
        let push = parse_push_json(&body);
        assert_eq!(push.head_commit, None);
        let expected = PushVerdict::Ignored(IgnoreReason::BranchDeleted);
        assert_eq!(judge_push(&push, SOURCE, "main"), expected);
    }

    #[test]
    fn zero_after_is_a_deletion_even_without_the_flag() {
        let body = push_with(|o| drop(o.insert("after".into(), ZERO.into())));
        let expected = PushVerdict::Ignored(IgnoreReason::BranchDeleted);
        assert_eq!(verdict(&body, SOURCE, "main"), expected);
    }

    #[test]
    fn deletion_of_another_branch_is_another_branch() {
        let body = push_with(|o| {
            o.insert("ref".into(), "refs/heads/old".into());
            o.insert("deleted".into(), true.into());
            o.insert("after".into(), ZERO.into());
        });
        let expected = PushVerdict::Ignored(IgnoreReason::OtherBranch {
            branch: "old".to_owned(),
        });
        assert_eq!(verdict(&body, SOURCE, "main"), expected);
    }

    #[test]
    fn other_repository_is_ignored_before_anything_else() {
        let expected = PushVerdict::Ignored(IgnoreReason::OtherRepository);
        for source in [
            "https://github.com/acme/web2.git",
            "https://github.com/acme/we.git",
            "https://github.com/other/web.git",
            "https://gitlab.com/acme/web.git",
            "",
        ] {
            assert_eq!(verdict(PUSH, source, "main"), expected, "{source}");
        }
        let tag = push_with(|o| drop(o.insert("ref".into(), "refs/tags/v1".into())));
        assert_eq!(
            verdict(&tag, "https://github.com/acme/web2", "main"),
            expected
        );
    }

    #[test]
    fn repository_without_urls_is_another_repository() {
        let mut push = parse_push_json(PUSH);
        push.repository = Repository {
            full_name: "acme/web".to_owned(),
            clone_url: None,
            ssh_url: None,
            html_url: None,
            git_url: None,
        };
        let expected = PushVerdict::Ignored(IgnoreReason::OtherRepository);
        assert_eq!(judge_push(&push, SOURCE, "main"), expected);
    }

    #[test]
    fn ignore_reasons_have_stable_names() {
        let names = [
            (IgnoreReason::OtherRepository, "other_repository"),
            (IgnoreReason::NotABranch, "not_a_branch"),
            (
                IgnoreReason::OtherBranch {
                    branch: "x".to_owned(),
                },
                "other_branch",
            ),
            (IgnoreReason::BranchDeleted, "branch_deleted"),
        ];
        for (reason, name) in names {
            assert_eq!(reason.as_str(), name);
        }
    }

    // --- repository URLs --------------------------------------------------

    #[test]
    fn github_url_forms_name_the_same_repository() {
        let forms = [
            "https://github.com/acme/web",
            "https://github.com/acme/web.git",
            "https://github.com/acme/web/",
            "https://github.com/acme/web.git/",
            "git@github.com:acme/web.git",
            "git@github.com:acme/web",
            "ssh://git@github.com/acme/web.git",
            "git://github.com/acme/web.git",
            "https://x-access-token:ghs_abc@github.com/acme/web.git",
            "ssh://git@ssh.github.com:443/acme/web.git",
            "https://www.github.com/acme/web",
            "HTTPS://GitHub.COM/ACME/WEB.GIT",
            "git@GITHUB.com:Acme/Web.git",
            "  https://github.com/acme/web  ",
        ];
        for a in forms {
            for b in forms {
                assert!(same_repository(a, b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn near_misses_do_not_match() {
        let pairs = [
            (
                "https://github.com/acme/web",
                "https://github.com/acme/web2",
            ),
            ("https://github.com/acme/web", "https://github.com/acme/we"),
            (
                "https://github.com/acme/web",
                "git@github.com:acme/web2.git",
            ),
            (
                "https://github.com/acme/web",
                "https://github.com/acme2/web",
            ),
            (
                "https://github.com/acme/web",
                "https://github.com/acme/web/extra",
            ),
            ("https://github.com/acme/web", "https://github.com/web"),
            ("https://github.com/acme/web", "https://gitlab.com/acme/web"),
            (
                "https://github.com/acme/web",
                "https://github.com.evil.io/acme/web",
            ),
            (
                "https://github.com/acme/web",
                "https://evil.io/github.com/acme/web",
            ),
            (
                "https://github.com/acme/web",
                "https://github.com/acme/web.gi",
            ),
        ];
        for (a, b) in pairs {
            assert!(!same_repository(a, b), "{a} vs {b}");
            assert!(!same_repository(b, a), "{b} vs {a}");
        }
    }

    #[test]
    fn other_hosts_compare_host_and_path() {
        let same = [
            ("file:///srv/x.git", "file:///srv/x"),
            ("file:///srv/x.git", "file:///srv/x/"),
            ("file:///srv/x.git", "/srv/x.git"),
            ("http://127.0.0.1:8080/x.git", "http://127.0.0.1:8080/x"),
            (
                "http://127.0.0.1:8080/x.git",
                "https://127.0.0.1:8080/x.git/",
            ),
            (
                "http://GIT.Example.com/Acme/Web.git",
                "https://git.example.com/Acme/Web",
            ),
            (
                "git@git.example.com:acme/web.git",
                "ssh://git@git.example.com/acme/web",
            ),
        ];
        for (a, b) in same {
            assert!(same_repository(a, b), "{a} vs {b}");
        }
        let different = [
            ("file:///srv/x.git", "file:///srv/y.git"),
            ("file:///srv/x.git", "file:///srv/x2.git"),
            ("http://127.0.0.1:8080/x.git", "http://127.0.0.1:9090/x.git"),
            ("http://127.0.0.1:8080/x.git", "http://127.0.0.1/x.git"),
            ("http://127.0.0.1:8080/x.git", "http://127.0.0.2:8080/x.git"),
            (
                "http://git.example.com/Acme/Web",
                "http://git.example.com/acme/web",
            ),
            ("file:///srv/x.git", "http://127.0.0.1/srv/x.git"),
        ];
        for (a, b) in different {
            assert!(!same_repository(a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn urls_without_a_path_match_nothing() {
        for url in [
            "",
            "   ",
            "https://github.com",
            "https://github.com/",
            "git@github.com:",
            "/",
        ] {
            assert!(!same_repository(url, url), "{url:?}");
        }
    }
}
