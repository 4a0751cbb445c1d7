//! The git side of a build: one bare mirror per application in the data dir, fetched
//! from the repository's URL and read at an exact commit. Git runs as a child process
//! with a deadline, no hooks, no prompts and no user or system configuration, so a
//! hostile repository or URL can neither run code on the server nor hang a build
//! waiting for a password.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Why a git step failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git {step} failed: {stderr}")]
    Failed { step: &'static str, stderr: String },
    #[error("git {step} took longer than {} s", .limit.as_secs())]
    TimedOut { step: &'static str, limit: Duration },
    #[error("cancelled")]
    Cancelled,
    #[error("commit {commit} is not in branch {branch} of the repository nor fetchable by id")]
    MissingCommit { commit: String, branch: String },
    #[error("cannot run git: {0}")]
    Spawn(#[from] std::io::Error),
}

/// A commit as a revision shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub sha: String,
    /// Its first line.
    pub message: String,
    /// `Name <email>`.
    pub author: String,
}

/// The mirror of one application's repository.
#[derive(Debug, Clone)]
pub struct Mirror {
    dir: PathBuf,
    /// An empty directory as `HOME`: no user configuration, credentials or known hosts
    /// of whoever runs the server.
    home: PathBuf,
    /// The hosts this application's ssh fetches have met (trusted on first use).
    known_hosts: PathBuf,
    timeout: Duration,
    /// `Authorization` header of HTTPS fetches (from the application's token).
    auth_header: Option<String>,
    /// The deploy key's file, for ssh fetches.
    key_file: Option<PathBuf>,
}

/// A deploy key written for the length of one build (mode 0600), removed on drop.
#[derive(Debug)]
pub struct KeyFile(PathBuf);

impl KeyFile {
    /// Writes `private_key` under `root/keys`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(root: &Path, uid: &str, private_key: &str) -> std::io::Result<Self> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = root.join("keys");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{uid}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(private_key.as_bytes())?;
        if !private_key.ends_with('\n') {
            file.write_all(b"\n")?;
        }
        Ok(Self(path))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Mirror {
    /// The mirror of application `uid` under `root` (created on first use).
    #[must_use]
    pub fn new(root: &Path, uid: &str, timeout: Duration) -> Self {
        Self {
            dir: root.join(format!("{uid}.git")),
            home: root.join("home"),
            known_hosts: root.join(format!("{uid}.known_hosts")),
            timeout,
            auth_header: None,
            key_file: None,
        }
    }

    /// Fetches with this HTTPS token (as `x-access-token`, what GitHub and most forges
    /// take). It goes to git through the environment, never a config file or a log.
    #[must_use]
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        use base64::Engine as _;
        self.auth_header = token.map(|t| {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{t}"));
            format!("Authorization: Basic {basic}")
        });
        self
    }

    /// Fetches over ssh with this deploy key.
    #[must_use]
    pub fn with_key(mut self, key: Option<&KeyFile>) -> Self {
        self.key_file = key.map(|k| k.path().to_owned());
        self
    }

    /// Where the mirror lives.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A git command on the mirror, locked down (see the module comment).
    fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("git");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("SSH_ASKPASS", "/bin/false")
            // Only the transports spec.source.git allows; never `ext::` (runs a command).
            .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:file")
            .env("GIT_SSH_COMMAND", self.ssh_command())
            .arg("-c")
            .arg("core.hooksPath=/dev/null")
            .arg("-c")
            .arg("credential.helper=")
            // A redirect could carry the token's header to another host.
            .arg("-c")
            .arg("http.followRedirects=false")
            .arg("-C")
            .arg(&self.dir)
            .stdin(Stdio::null());
        if let Some(header) = &self.auth_header {
            // Configuration from the environment (git 2.31+): in no file, in no argv.
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header);
        }
        cmd
    }

    fn ssh_command(&self) -> String {
        let mut ssh = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=20 -o UserKnownHostsFile={}",
            self.known_hosts.display()
        );
        if let Some(key) = &self.key_file {
            ssh.push_str(&format!(" -o IdentitiesOnly=yes -i {}", key.display()));
        }
        ssh
    }

    fn command(&self) -> Command {
        let mut cmd = Command::from(self.std_command());
        cmd.kill_on_drop(true);
        cmd
    }

    async fn run(
        &self,
        step: &'static str,
        args: &[&str],
        cancel: &CancellationToken,
    ) -> Result<String, GitError> {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn()?;
        let output = tokio::select! {
            () = cancel.cancelled() => return Err(GitError::Cancelled),
            out = tokio::time::timeout(self.timeout, child.wait_with_output()) => match out {
                Ok(out) => out?,
                Err(_) => return Err(GitError::TimedOut { step, limit: self.timeout }),
            },
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(GitError::Failed {
                step,
                stderr: stderr.trim().chars().take(2000).collect(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates the bare mirror unless it exists.
    ///
    /// # Errors
    /// Git or the file system failed.
    pub async fn ensure(&self, cancel: &CancellationToken) -> Result<(), GitError> {
        tokio::fs::create_dir_all(&self.home).await?;
        if tokio::fs::try_exists(self.dir.join("HEAD"))
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        tokio::fs::create_dir_all(&self.dir).await?;
        self.run("init", &["init", "--bare", "--quiet"], cancel)
            .await
            .map(drop)
    }

    /// Fetches `branch` of `url` into the mirror (full history: a later rollback may
    /// need any commit of it) and returns its head.
    ///
    /// # Errors
    /// Git failed (unreachable, no such branch, refused credentials).
    pub async fn fetch_branch(
        &self,
        url: &str,
        branch: &str,
        cancel: &CancellationToken,
    ) -> Result<String, GitError> {
        let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        self.run(
            "fetch",
            &["fetch", "--no-tags", "--quiet", "--", url, &refspec],
            cancel,
        )
        .await?;
        let head = format!("refs/heads/{branch}^{{commit}}");
        let sha = self
            .run("rev-parse", &["rev-parse", "--verify", &head], cancel)
            .await?;
        Ok(sha.trim().to_owned())
    }

    /// Makes sure `commit` is in the mirror: after the branch's fetch it usually is;
    /// else (a force-pushed branch, an old commit of a rollback) it is fetched by id.
    ///
    /// # Errors
    /// [`GitError::MissingCommit`] when the repository does not give it.
    pub async fn ensure_commit(
        &self,
        url: &str,
        branch: &str,
        commit: &str,
        cancel: &CancellationToken,
    ) -> Result<(), GitError> {
        let object = format!("{commit}^{{commit}}");
        if self
            .run("cat-file", &["cat-file", "-e", &object], cancel)
            .await
            .is_ok()
        {
            return Ok(());
        }
        let fetched = self
            .run(
                "fetch",
                &["fetch", "--no-tags", "--quiet", "--", url, commit],
                cancel,
            )
            .await;
        match fetched {
            Err(GitError::Cancelled) => Err(GitError::Cancelled),
            _ if self
                .run("cat-file", &["cat-file", "-e", &object], cancel)
                .await
                .is_ok() =>
            {
                Ok(())
            }
            _ => Err(GitError::MissingCommit {
                commit: commit.to_owned(),
                branch: branch.to_owned(),
            }),
        }
    }

    /// The commit's first message line and author.
    ///
    /// # Errors
    /// Git failed.
    pub async fn commit_info(
        &self,
        commit: &str,
        cancel: &CancellationToken,
    ) -> Result<CommitInfo, GitError> {
        let out = self
            .run(
                "log",
                &["log", "-1", "--format=%H%x00%an <%ae>%x00%s", commit, "--"],
                cancel,
            )
            .await?;
        let mut parts = out.trim_end().splitn(3, '\0');
        let sha = parts.next().unwrap_or_default().to_owned();
        let author = parts.next().unwrap_or_default().to_owned();
        let message = parts.next().unwrap_or_default().to_owned();
        Ok(CommitInfo {
            sha,
            message,
            author,
        })
    }

    /// `git archive` of `commit` as a blocking child whose stdout is the tar (read on
    /// a blocking thread by the context writer).
    ///
    /// # Errors
    /// Git cannot be started.
    pub fn archive(&self, commit: &str) -> Result<std::process::Child, GitError> {
        let mut cmd = self.std_command();
        cmd.args(["archive", "--format=tar", commit])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        Ok(cmd.spawn()?)
    }
}
