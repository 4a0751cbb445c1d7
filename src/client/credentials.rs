//! Where the CLI keeps its session: `~/.config/longin/credentials.json`, mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// A signed-in session of the CLI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub server: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// The directory of the CLI's files: `$LONGIN_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/longin`, else `~/.config/longin`.
///
/// # Errors
/// No home directory to put it in.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LONGIN_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("longin"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("longin")),
        None => bail!("cannot find a config directory: set HOME or LONGIN_CONFIG_DIR"),
    }
}

fn path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

/// The saved session, if any.
///
/// # Errors
/// The file exists but cannot be read or parsed.
pub fn load() -> anyhow::Result<Option<Credentials>> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("reading {}; run longin login again", path.display())
        })?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Saves the session, readable by its owner only. Written to a temporary file and
/// renamed, so a crash never leaves half a file.
///
/// # Errors
/// The directory or file cannot be written.
pub fn save(credentials: &Credentials) -> anyhow::Result<()> {
    let path = path()?;
    let dir = path.parent().context("credentials path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).ok();
    let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(serde_json::to_string_pretty(credentials)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Forgets the session.
///
/// # Errors
/// The file exists but cannot be removed.
pub fn remove() -> anyhow::Result<()> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}
