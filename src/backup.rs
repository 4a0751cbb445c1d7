//! Backups: `longin backup` writes one tar file with a consistent online copy of the
//! store (SQLite's `VACUUM INTO`, or `pg_dump` for PostgreSQL), the data dir's JWT
//! secret and secrets key, and a manifest; `longin restore` puts it back into an empty data dir (and,
//! for PostgreSQL, an empty database); `serve` takes one on a schedule and keeps them
//! for a number of days.
//!
//! A restored installation keeps its installation id and its applications' uids, so
//! its controller adopts the containers still running instead of recreating them.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use longin_api::auth::secret::{SECRET_FILE, SECRETS_KEY_FILE};
use longin_store::{Backend, Store, StoreOptions};

use crate::cli::StoreArgs;

/// The layout of a backup file; a restore refuses any other.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const SQLITE_COPY: &str = "longin.db";
const POSTGRES_DUMP: &str = "postgres.dump";
/// Where `serve` and a `longin backup` without `--file` put backups.
pub const BACKUP_DIR: &str = "backups";

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// RFC 3339.
    pub created_at: String,
    pub installation_id: String,
    pub longin_version: String,
}

/// A new backup's default path: `<data-dir>/backups/longin-<UTC time>.tar`.
#[must_use]
pub fn default_path(data_dir: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    data_dir
        .join(BACKUP_DIR)
        .join(format!("longin-{stamp}.tar"))
}

/// Writes a backup of `store` (opened from `args`) to `output`, atomically: the file
/// appears complete or not at all, readable by its owner only.
///
/// # Errors
/// The copy, the dump or a file operation fails.
pub async fn create(store: &Store, args: &StoreArgs, output: &Path) -> anyhow::Result<Manifest> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".longin-backup-")
        .tempdir_in(&dir)
        .context("making a staging directory")?;
    let database = match store.backend() {
        Backend::Sqlite => {
            store
                .copy_sqlite_to(&staging.path().join(SQLITE_COPY))
                .await
                .context("copying the SQLite database")?;
            SQLITE_COPY
        }
        Backend::Postgres => {
            pg_dump(
                &args.effective_database_url(),
                &staging.path().join(POSTGRES_DUMP),
            )
            .await?;
            POSTGRES_DUMP
        }
    };
    let manifest = Manifest {
        format: FORMAT,
        backend: store.backend().name().to_owned(),
        created_at: chrono::Utc::now().to_rfc3339(),
        installation_id: store.installation_id().await?,
        longin_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    fs::write(
        staging.path().join(MANIFEST),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let mut members = vec![MANIFEST, database];
    // The data dir's secrets; those given in the environment instead are the
    // operator's to keep.
    for name in [SECRET_FILE, SECRETS_KEY_FILE] {
        let secret = args.data_dir.join(name);
        if secret.exists() {
            fs::copy(&secret, staging.path().join(name))
                .with_context(|| format!("copying {}", secret.display()))?;
            members.push(name);
        }
    }
    let output = output.to_owned();
    let staged = staging.path().to_owned();
    tokio::task::spawn_blocking(move || write_tar(&staged, &members, &output))
        .await
        .context("the archiving task failed")??;
    drop(staging);
    Ok(manifest)
}

fn write_tar(staged: &Path, members: &[&str], output: &Path) -> anyhow::Result<()> {
    let partial = output.with_extension("tar.partial");
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut archive = tar::Builder::new(file);
    for name in members {
        archive
            .append_path_with_name(staged.join(name), name)
            .with_context(|| format!("archiving {name}"))?;
    }
    archive.into_inner()?.sync_all()?;
    fs::rename(&partial, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

/// Restores `file` into the empty data dir (and for PostgreSQL the empty database) of
/// `args`. Start `longin serve` on them afterwards.
///
/// # Errors
/// The target is not empty, the backup is of another kind than the target store, or
/// unpacking or loading fails; a failed restore leaves the data dir's new files behind
/// for inspection.
pub async fn restore(file: &Path, args: &StoreArgs) -> anyhow::Result<Manifest> {
    let data_dir = &args.data_dir;
    if fs::read_dir(data_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "data dir {} is not empty; restore into a new one",
            data_dir.display()
        );
    }
    crate::data_dir::prepare(data_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".longin-restore-")
        .tempdir_in(data_dir)?;
    let (source, staged) = (file.to_owned(), staging.path().to_owned());
    tokio::task::spawn_blocking(move || unpack(&source, &staged))
        .await
        .context("the unpacking task failed")??;
    let manifest: Manifest = serde_json::from_slice(
        &fs::read(staging.path().join(MANIFEST)).context("the backup has no manifest")?,
    )
    .context("reading the backup's manifest")?;
    if manifest.format != FORMAT {
        bail!(
            "backup format {} is not one this version reads ({FORMAT})",
            manifest.format
        );
    }
    match manifest.backend.as_str() {
        "sqlite" => {
            if !args.uses_embedded_database() {
                bail!(
                    "this is a backup of an embedded SQLite store: restore it without --database-url"
                );
            }
            fs::rename(staging.path().join(SQLITE_COPY), data_dir.join(SQLITE_COPY))?;
            crate::data_dir::restrict_database_files(data_dir)?;
        }
        "postgres" => {
            let url = args.effective_database_url();
            let store = Store::connect(&StoreOptions::new(&url)).await?;
            let empty = store.backend() == Backend::Postgres && store.is_empty().await?;
            store.close().await;
            if !empty {
                bail!(
                    "a PostgreSQL backup is restored into an empty PostgreSQL database (--database-url)"
                );
            }
            pg_restore(&url, &staging.path().join(POSTGRES_DUMP)).await?;
        }
        other => bail!("the backup's store {other:?} is unknown"),
    }
    for name in [SECRET_FILE, SECRETS_KEY_FILE] {
        let secret = staging.path().join(name);
        if secret.exists() {
            fs::rename(&secret, data_dir.join(name))?;
        }
    }
    Ok(manifest)
}

/// Unpacks only the members a backup has, each by its bare name: a crafted archive
/// cannot write anywhere else.
fn unpack(file: &Path, into: &Path) -> anyhow::Result<()> {
    let archive = fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = path.to_string_lossy();
        if ![
            MANIFEST,
            SQLITE_COPY,
            POSTGRES_DUMP,
            SECRET_FILE,
            SECRETS_KEY_FILE,
        ]
        .contains(&name.as_ref())
        {
            bail!("the backup holds {name:?}, which no backup has");
        }
        entry.unpack(into.join(name.as_ref()))?;
    }
    Ok(())
}

/// A PostgreSQL URL without its password, and the password (for `PGPASSWORD`, so it
/// does not show in the process list).
fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    match credentials.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}"),
            Some(password.to_owned()),
        ),
        None => (url.to_owned(), None),
    }
}

async fn pg_tool(program: &str, url: &str, args: &[&str]) -> anyhow::Result<()> {
    let (url, password) = split_password(url);
    let mut command = tokio::process::Command::new(program);
    command.args(args).arg(format!("--dbname={url}"));
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command
        .output()
        .await
        .with_context(|| format!("running {program} (install PostgreSQL's client tools)"))?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

async fn pg_dump(url: &str, into: &Path) -> anyhow::Result<()> {
    let into = into.to_string_lossy();
    pg_tool(
        "pg_dump",
        url,
        &["--format=custom", "--no-owner", "--file", &into],
    )
    .await
}

async fn pg_restore(url: &str, from: &Path) -> anyhow::Result<()> {
    let from = from.to_string_lossy();
    pg_tool("pg_restore", url, &["--no-owner", "--exit-on-error", &from]).await
}

/// How often `serve` takes a backup and how long it keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub every: Duration,
    pub keep: Duration,
}

/// Takes a backup into `<data-dir>/backups` every `schedule.every` (the first one when
/// the newest there is that old, or a minute after start when there is none), and
/// deletes backups there older than `schedule.keep`, until `cancel`.
pub async fn run_schedule(
    store: Store,
    args: StoreArgs,
    schedule: Schedule,
    cancel: CancellationToken,
) {
    let dir = args.data_dir.join(BACKUP_DIR);
    let newest_age = newest_backup_age(&dir);
    let mut wait = match newest_age {
        Some(age) => schedule.every.saturating_sub(age),
        None => Duration::from_secs(60),
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = schedule.every;
        let started = std::time::Instant::now();
        match create(&store, &args, &default_path(&args.data_dir)).await {
            Ok(_) => {
                metrics::counter!("longin_backups_total", "result" => "success").increment(1);
                metrics::gauge!("longin_backup_last_success_timestamp_seconds")
                    .set(longin_store::now_ms() as f64 / 1000.0);
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "backup written"
                );
            }
            Err(err) => {
                metrics::counter!("longin_backups_total", "result" => "error").increment(1);
                tracing::error!(error = %format_args!("{err:#}"), "backup failed");
            }
        }
        let pruned = prune(&dir, schedule.keep);
        if pruned > 0 {
            tracing::info!(pruned, "old backups deleted");
        }
    }
}

/// Backups in `dir` and their ages, newest first.
fn backups(dir: &Path) -> Vec<(PathBuf, Duration)> {
    let now = SystemTime::now();
    let mut found: Vec<(PathBuf, Duration)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("longin-") && name.ends_with(".tar")
        })
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((e.path(), now.duration_since(modified).unwrap_or_default()))
        })
        .collect();
    found.sort_by_key(|(_, age)| *age);
    found
}

fn newest_backup_age(dir: &Path) -> Option<Duration> {
    backups(dir).first().map(|(_, age)| *age)
}

/// Deletes backups in `dir` older than `keep`, never the newest; how many.
fn prune(dir: &Path, keep: Duration) -> usize {
    backups(dir)
        .into_iter()
        .skip(1)
        .filter(|(_, age)| *age > keep)
        .filter(|(path, _)| fs::remove_file(path).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_leaves_the_url_for_the_environment() {
        assert_eq!(
            split_password("postgres://longin:s3cret@db:5432/longin"),
            (
                "postgres://longin@db:5432/longin".to_owned(),
                Some("s3cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://longin@127.0.0.1:55432/x"),
            ("postgres://longin@127.0.0.1:55432/x".to_owned(), None)
        );
    }

    #[test]
    fn a_crafted_backup_cannot_write_outside_its_members() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("crafted.tar");
        let mut archive = tar::Builder::new(fs::File::create(&file).expect("create"));
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, "authorized_keys", &b"x"[..])
            .expect("append");
        archive.into_inner().expect("finish");
        let into = dir.path().join("staging");
        fs::create_dir(&into).expect("mkdir");
        let err = unpack(&file, &into).expect_err("an unknown member is refused");
        assert!(err.to_string().contains("no backup has"), "{err}");
        assert!(
            fs::read_dir(&into).expect("read").next().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn pruning_keeps_the_newest_and_what_is_young() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["longin-1.tar", "longin-2.tar", "other.txt"] {
            fs::write(dir.path().join(name), b"x").expect("write");
        }
        assert_eq!(prune(dir.path(), Duration::from_secs(3600)), 0, "young");
        assert_eq!(prune(dir.path(), Duration::ZERO), 1, "all but the newest");
        assert_eq!(backups(dir.path()).len(), 1);
        assert!(dir.path().join("other.txt").exists());
    }
}
