//! Git repositories for the build tests: a bare repository (what Longin fetches from,
//! over `file://` or a loopback HTTP server running `git http-backend`) and a work
//! tree that commits and pushes to it; and GitHub's deliveries, signed.

use std::path::{Path, PathBuf};
use std::process::Command;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// A bare repository and a clone that pushes to it.
pub struct Repo {
    _dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

impl Repo {
    /// An empty bare repository (`web.git`) and its work tree on branch `main`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("web.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&bare, &["init", "--bare", "--quiet", "-b", "main"]);
        // `git http-backend` serves only repositories marked for export (or all, with
        // GIT_HTTP_EXPORT_ALL, which the test server sets).
        git(&work, &["init", "--quiet", "-b", "main"]);
        git(&work, &["config", "user.name", "Ada Lovelace"]);
        git(&work, &["config", "user.email", "ada@example.com"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Self {
            _dir: dir,
            bare,
            work,
        }
    }

    /// `file://` URL of the bare repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Writes `files`, commits them with `message` on `branch` and pushes; the sha.
    pub fn commit(&self, branch: &str, files: &[(&str, &str)], message: &str) -> String {
        let current = git(&self.work, &["symbolic-ref", "--short", "HEAD"]);
        if current != branch {
            let exists = Command::new("git")
                .arg("-C")
                .arg(&self.work)
                .args(["rev-parse", "--verify", "--quiet", branch])
                .status()
                .unwrap()
                .success();
            if exists {
                git(&self.work, &["checkout", "--quiet", branch]);
            } else {
                git(&self.work, &["checkout", "--quiet", "-b", branch]);
            }
        }
        for (path, text) in files {
            let file = self.work.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "--quiet", "--allow-empty", "-m", message],
        );
        git(
            &self.work,
            &[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Commits a Dockerfile `FROM` the test httpd image followed by `steps`.
    pub fn commit_dockerfile(&self, registry: &str, steps: &str, message: &str) -> String {
        let text = format!("FROM {registry}/longin/httpd:1.0\n{steps}");
        self.commit("main", &[("Dockerfile", &text)], message)
    }

    /// Pushes a tag at HEAD.
    pub fn tag(&self, name: &str) -> String {
        git(&self.work, &["tag", "-f", name]);
        git(
            &self.work,
            &[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("refs/tags/{name}"),
            ],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// A test app's files: the httpd test image serving `page` at `/`, plus a file the
/// `.dockerignore` keeps out (the build fails if it reaches the context).
pub fn web_files(registry: &str, page: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "Dockerfile",
            format!(
                "FROM {registry}/longin/httpd:1.0\nCOPY . /src/\nRUN test ! -e /src/ignored.txt && test -e /src/index.html\nCOPY index.html /www/index.html\n"
            ),
        ),
        (".dockerignore", "ignored.txt\n*.log\n".to_owned()),
        (
            "ignored.txt",
            "must not reach the build context\n".to_owned(),
        ),
        ("index.html", page.to_owned()),
    ]
}

/// `files` with borrowed contents, for [`Repo::commit`].
pub fn borrowed<'a>(files: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    files.iter().map(|(p, t)| (*p, t.as_str())).collect()
}

/// GitHub's `X-Hub-Signature-256` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A push delivery with GitHub's field names.
pub fn push_payload(
    clone_url: &str,
    git_ref: &str,
    before: &str,
    after: &str,
    message: &str,
) -> Value {
    let deleted = after.bytes().all(|b| b == b'0');
    json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": false,
        "deleted": deleted,
        "forced": false,
        "base_ref": null,
        "compare": "https://github.com/acme/web/compare/x...y",
        "commits": [],
        "head_commit": if deleted { Value::Null } else { json!({
            "id": after,
            "tree_id": "0000000000000000000000000000000000000001",
            "distinct": true,
            "message": message,
            "timestamp": "2026-12-01T12:00:00+00:00",
            "url": "https://github.com/acme/web/commit/x",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "committer": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
            "added": [], "removed": [], "modified": ["index.html"]
        })},
        "repository": {
            "id": 1, "node_id": "R_1", "name": "web", "full_name": "acme/web", "private": false,
            "owner": {"login": "acme", "id": 2},
            "html_url": clone_url, "clone_url": clone_url,
            "git_url": clone_url, "ssh_url": clone_url,
            "default_branch": "main"
        },
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "sender": {"login": "ada", "id": 3}
    })
}

/// A loopback HTTP git server: `git http-backend` behind a small CGI bridge, serving
/// the repositories under a directory; with a token, it answers 401 to any request
/// without `Authorization: Basic x-access-token:<token>`, as a private forge does.
pub struct GitHttpServer {
    pub base: String,
    /// Requests answered 401 so far.
    pub refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GitHttpServer {
    pub async fn start(root: &Path, token: Option<&str>) -> Self {
        use base64::Engine as _;
        let expected = token.map(|t| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{t}"))
            )
        });
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let state = (root.to_owned(), expected, refused.clone());
        let app = axum::Router::new()
            .fallback(cgi)
            .with_state(std::sync::Arc::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            refused,
            task,
        }
    }
}

type CgiState = std::sync::Arc<(
    PathBuf,
    Option<String>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
)>;

async fn cgi(
    axum::extract::State(state): axum::extract::State<CgiState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (root, expected, refused) = (&state.0, &state.1, &state.2);
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(expected) = expected
        && header("authorization").as_deref() != Some(expected.as_str())
    {
        refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
            "authentication required",
        )
            .into_response();
    }
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "x-access-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    if let Some(encoding) = header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", encoding);
    }
    if let Some(protocol) = header("git-protocol") {
        cmd.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cmd.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&body).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
    let mut response = axum::response::Response::new(axum::body::Body::from(
        out.stdout[split.0 + split.1..].to_vec(),
    ));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value.split_whitespace().next().unwrap().parse().unwrap();
            *response.status_mut() = axum::http::StatusCode::from_u16(code).unwrap();
        } else {
            response.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                axum::http::HeaderValue::from_str(value).unwrap(),
            );
        }
    }
    response
}

impl Repo {
    /// The directory holding the bare repository (`web.git`), for a git server.
    pub fn root(&self) -> PathBuf {
        self.bare.parent().unwrap().to_owned()
    }
}

/// A private sshd on a free loopback port that lets in one key (as root, which runs
/// `git-upload-pack` for the fetch): a forge reached over ssh with a deploy key.
pub struct Sshd {
    pub port: u16,
    _dir: tempfile::TempDir,
    _process: super::KillOnDrop,
}

impl Sshd {
    /// A free loopback port for [`Sshd::start`].
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    pub async fn start(port: u16, authorized_key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path("host_key"))
            .status()
            .unwrap();
        assert!(keygen.success());
        std::fs::write(path("authorized_keys"), format!("{authorized_key}\n")).unwrap();
        std::fs::write(
            path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {}\n",
                path("host_key").display(),
                path("authorized_keys").display(),
                path("sshd.pid").display(),
            ),
        )
        .unwrap();
        // Privilege separation needs its empty directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let process = super::KillOnDrop(
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(path("sshd_config"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("run /usr/sbin/sshd (Debian's openssh-server)"),
        );
        super::eventually(20, "sshd listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
        Self {
            port,
            _dir: dir,
            _process: process,
        }
    }
}
