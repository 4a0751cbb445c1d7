//! The builder's loop and one build. The loop claims queued revisions every second
//! (and at once when an application changes), watches the running ones for a cancel
//! by a user, and stops them all on shutdown: a build cut short by a stop stays
//! `building` in the store and is marked interrupted by the next start, while the
//! application keeps serving its previous image, which was never replaced.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use longin_crds::application::ImagePullPolicy;
use longin_crds::limits::Image;
use longin_crds::source::{built_image, dockerfile_in_context, is_built_image};
use longin_store::Store;
use longin_store::applications::ApplicationRecord;
use longin_store::bus::{Bus, Event};
use longin_store::deployments::{Built, DeploymentRecord, DeploymentStatus, RollOutcome};

use super::BuildConfig;
use super::context::{ContextSpec, write_context};
use super::git::{GitError, KeyFile, Mirror};
use super::images::{
    BuildRequest, IMAGE_APP_LABEL, IMAGE_COMMIT_LABEL, IMAGE_REVISION_LABEL, ImageBuilds,
};
use super::log::BuildLog;
use crate::engine::Engine;
use crate::runtime::RuntimeError;

/// Why a build ended without an image.
#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    #[error("the build context: {0}")]
    Context(String),
    #[error("{0}")]
    Refused(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] longin_store::StoreError),
}

/// What a build did.
enum Done {
    Rolled(RollOutcome),
    /// A re-pull found the image unchanged: nothing to roll out.
    Unchanged(String),
}

/// What every build shares.
#[derive(Debug, Clone)]
struct Shared {
    store: Store,
    engine: Engine,
    images: Arc<dyn ImageBuilds>,
    bus: Bus,
    config: BuildConfig,
}

/// How long the builder must have been idle before a clean-up runs.
const CLEANUP_QUIET: Duration = Duration::from_secs(3);

struct Running {
    deployment: String,
    cancel: CancellationToken,
    started: Instant,
}

/// Runs the builder until `cancel`.
pub async fn run(
    store: Store,
    engine: Engine,
    images: Arc<dyn ImageBuilds>,
    bus: Bus,
    config: BuildConfig,
    cancel: CancellationToken,
) {
    mark_interrupted(&store).await;
    let shared = Shared {
        store,
        engine,
        images,
        bus,
        config,
    };
    let mut changes = shared.store.changes().subscribe();
    let mut running: HashMap<String, Running> = HashMap::new();
    // What the task ended with: its app and, when it rolled an image out, the revision
    // (the clean-up runs again once that rollout ends: only then is it "succeeded").
    let mut tasks: JoinSet<(String, Option<String>)> = JoinSet::new();
    let mut rolling: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_cleanup: Option<Instant> = None;
    let mut cleanup_due = true;
    let mut last_activity = Instant::now();
    loop {
        let mut ended = false;
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
            change = changes.recv() => if matches!(change, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                break;
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((app, rolled)) = done {
                    running.remove(&app);
                    rolling.extend(rolled);
                }
                ended = true;
            }
        }
        ended |= rollouts_ended(&shared.store, &mut rolling).await;
        watch_cancellations(&shared.store, &running).await;
        if claim(&shared, &mut running, &mut tasks, &cancel).await || ended {
            last_activity = Instant::now();
        }
        report_running(&running);
        cleanup_due |= ended || last_cleanup.is_none_or(|t| t.elapsed() > Duration::from_secs(600));
        // Only when no build runs, or has for a few seconds: removing an old image also
        // removes its untagged parents, which may be the very layer cache a running
        // build uses (the engine then fails it: "failed to get digest"); and a burst
        // of pushes should not wait for clean-ups between its builds.
        if cleanup_due && running.is_empty() && last_activity.elapsed() >= CLEANUP_QUIET {
            cleanup_due = false;
            super::cleanup::run_once(
                &shared.store,
                shared.images.as_ref(),
                shared.config.keep_images,
                shared.config.registry.as_deref(),
            )
            .await;
            last_cleanup = Some(Instant::now());
        }
    }
    for build in running.values() {
        build.cancel.cancel();
    }
    while tasks.join_next().await.is_some() {}
    metrics::gauge!("longin_builds_running").set(0.0);
    metrics::gauge!("longin_build_oldest_running_seconds").set(0.0);
    tracing::info!("builder stopped");
}

/// Marks the builds the last stop cut short as failed, and counts them.
async fn mark_interrupted(store: &Store) {
    match store.interrupt_builds().await {
        Ok(triggers) => {
            if !triggers.is_empty() {
                tracing::warn!(
                    builds = triggers.len(),
                    "builds cut short by the last stop marked failed (interrupted)"
                );
            }
            for trigger in &triggers {
                metrics::counter!("longin_deployments_total",
                    "trigger" => trigger_label(trigger), "result" => "failed")
                .increment(1);
            }
        }
        Err(err) => tracing::error!(error = %err, "cannot mark interrupted builds"),
    }
}

/// Forgets the rolled-out revisions whose rollout ended; whether any did.
async fn rollouts_ended(store: &Store, rolling: &mut Vec<String>) -> bool {
    let before = rolling.len();
    let mut still = Vec::with_capacity(before);
    for id in rolling.drain(..) {
        match store.deployment_status(&id).await {
            Ok(Some(status)) if !status.is_final() => still.push(id),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "cannot read a rollout's status");
                still.push(id);
            }
        }
    }
    *rolling = still;
    rolling.len() < before
}

/// Cancels the builds whose revision a user cancelled (or that ended otherwise).
async fn watch_cancellations(store: &Store, running: &HashMap<String, Running>) {
    for build in running.values() {
        match store.deployment_status(&build.deployment).await {
            Ok(Some(DeploymentStatus::Building)) => {}
            Ok(_) => build.cancel.cancel(),
            Err(err) => tracing::warn!(error = %err, "cannot read a build's status"),
        }
    }
}

fn report_running(running: &HashMap<String, Running>) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("longin_builds_running").set(running.len() as f64);
    let oldest = running
        .values()
        .map(|r| r.started.elapsed().as_secs_f64())
        .fold(0.0, f64::max);
    metrics::gauge!("longin_build_oldest_running_seconds").set(oldest);
}

/// Starts what is queued, as far as slots allow; whether it started any.
async fn claim(
    shared: &Shared,
    running: &mut HashMap<String, Running>,
    tasks: &mut JoinSet<(String, Option<String>)>,
    cancel: &CancellationToken,
) -> bool {
    let free = shared.config.concurrency.saturating_sub(running.len());
    if free == 0 {
        return false;
    }
    let busy: Vec<String> = running.keys().cloned().collect();
    let claimed = match shared.store.claim_queued_deployments(&busy, free).await {
        Ok(claimed) => claimed,
        Err(err) => {
            tracing::warn!(error = %err, "cannot claim queued builds");
            return false;
        }
    };
    let started = !claimed.is_empty();
    for deployment in claimed {
        let token = cancel.child_token();
        running.insert(
            deployment.application_id.clone(),
            Running {
                deployment: deployment.id.clone(),
                cancel: token.clone(),
                started: Instant::now(),
            },
        );
        let shared = shared.clone();
        tasks.spawn(async move {
            let app = deployment.application_id.clone();
            let rolled = build_one(&shared, deployment, token).await;
            (app, rolled)
        });
    }
    started
}

/// Runs one claimed revision to its end (or to the shutdown); its id when it rolled
/// an image out.
async fn build_one(
    shared: &Shared,
    deployment: DeploymentRecord,
    cancel: CancellationToken,
) -> Option<String> {
    let started = Instant::now();
    let log = Arc::new(Mutex::new(LiveLog::new(shared.config.max_log_bytes)));
    let flusher = tokio::spawn(flush_log(
        shared.clone(),
        deployment.clone(),
        log.clone(),
        cancel.clone(),
    ));
    tracing::info!(app = %deployment.application_id, revision = deployment.revision, trigger = %deployment.triggered_by, "build started");
    let outcome = tokio::time::timeout(
        shared.config.timeout,
        produce(shared, &deployment, &log, &cancel),
    )
    .await;
    let rolled = matches!(outcome, Ok(Ok(Done::Rolled(RollOutcome::RolledOut { .. }))))
        .then(|| deployment.id.clone());
    let (status, message) = match outcome {
        Err(_) => (
            Some(DeploymentStatus::Failed),
            format!(
                "the build took longer than {} s (--build-timeout)",
                shared.config.timeout.as_secs()
            ),
        ),
        Ok(Err(BuildError::Cancelled)) => (None, "cancelled".to_owned()),
        Ok(Err(err)) => (Some(DeploymentStatus::Failed), err.to_string()),
        Ok(Ok(Done::Unchanged(message))) => (Some(DeploymentStatus::Succeeded), message),
        Ok(Ok(Done::Rolled(RollOutcome::RolledOut { generation }))) => {
            (None, format!("rolling out as generation {generation}"))
        }
        Ok(Ok(Done::Rolled(RollOutcome::Superseded))) => (
            Some(DeploymentStatus::Superseded),
            "a newer revision set another image first".to_owned(),
        ),
        Ok(Ok(Done::Rolled(RollOutcome::Ended(_)))) => (None, "ended meanwhile".to_owned()),
    };
    note(&log, &format!("==> {message}"));
    cancel.cancel();
    let _ = flusher.await;
    if let Some(status) = status {
        match shared.store.end_build(&deployment.id, status, &message).await {
            Ok(true) => metrics::counter!("longin_deployments_total", "trigger" => trigger_label(&deployment.triggered_by), "result" => status.as_str()).increment(1),
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "cannot record a build's end"),
        }
    }
    let result = status.map_or("rolled_out", DeploymentStatus::as_str);
    metrics::histogram!("longin_build_duration_seconds", "result" => result)
        .record(started.elapsed().as_secs_f64());
    tracing::info!(app = %deployment.application_id, revision = deployment.revision, %message, elapsed_s = started.elapsed().as_secs_f64(), "build ended");
    rolled
}

/// The trigger as a metric label: only the known ones (a bounded set).
#[must_use]
pub fn trigger_label(trigger: &str) -> &'static str {
    match trigger {
        "create" => "create",
        "apply" => "apply",
        "webhook" => "webhook",
        "redeploy" => "redeploy",
        "rollback" => "rollback",
        "restart" => "restart",
        "stop" => "stop",
        "start" => "start",
        _ => "other",
    }
}

fn note(log: &Mutex<LiveLog>, line: &str) {
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    log.push(line.as_bytes());
    log.push(b"\n");
}

/// Every second, stores the log and publishes its new lines; once more at the end.
async fn flush_log(
    shared: Shared,
    deployment: DeploymentRecord,
    log: Arc<Mutex<LiveLog>>,
    done: CancellationToken,
) {
    let mut stored = String::new();
    loop {
        let finished = tokio::select! {
            () = done.cancelled() => true,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        let (text, (first, lines)) = {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            if finished {
                log.finish();
            }
            (log.log.text(), log.take_fresh())
        };
        if text != stored {
            if let Err(err) = shared.store.set_build_log(&deployment.id, &text).await {
                tracing::warn!(error = %err, "cannot store a build log");
            }
            stored = text;
        }
        if !lines.is_empty() || finished {
            shared
                .bus
                .publish(Event::BuildLog {
                    app_id: deployment.application_id.clone(),
                    revision: deployment.revision,
                    first,
                    lines,
                    done: finished,
                })
                .await;
        }
        if finished {
            return;
        }
    }
}

/// Makes the revision's image (or finds it made) and sets it on the application.
async fn produce(
    shared: &Shared,
    deployment: &DeploymentRecord,
    log: &Mutex<LiveLog>,
    cancel: &CancellationToken,
) -> Result<Done, BuildError> {
    let app = shared
        .store
        .application_by_id(&deployment.application_id)
        .await?
        .ok_or_else(|| BuildError::Refused("the application is gone".to_owned()))?;
    if !deployment.image.is_empty() {
        let image = Image::parse(&deployment.image)
            .map_err(|e| BuildError::Refused(format!("image {}: {e}", deployment.image)))?;
        if deployment.repull {
            return repull(shared, &app, &image, deployment, log, cancel).await;
        }
        let present = shared.images.image_id(image.as_str()).await?;
        if !is_built_image(&image, &app.id) || present.is_some() {
            note(log, &format!("==> rolling out {image}"));
            return roll_out(shared, deployment, image.as_str(), present, None, log).await;
        }
        if deployment.commit_sha.is_none() {
            return Err(BuildError::Refused(format!(
                "image {image} is gone and revision {} has no commit to rebuild it from",
                deployment.revision
            )));
        }
        note(
            log,
            &format!("==> image {image} is gone: rebuilding it from its commit"),
        );
    }
    build(shared, &app, deployment, log, cancel).await
}

async fn roll_out(
    shared: &Shared,
    deployment: &DeploymentRecord,
    image: &str,
    digest: Option<String>,
    commit: Option<&super::git::CommitInfo>,
    log: &Mutex<LiveLog>,
) -> Result<Done, BuildError> {
    publish(shared, deployment, image, log).await?;
    let built = Built {
        image: image.to_owned(),
        digest,
        commit_sha: commit.map(|c| c.sha.clone()),
        commit_message: commit.map(|c| c.message.clone()),
        commit_author: commit.map(|c| c.author.clone()),
        replace_replicas: deployment.repull,
    };
    match shared.store.roll_out_build(&deployment.id, &built).await {
        Ok(outcome) => Ok(Done::Rolled(outcome)),
        Err(err) => Err(BuildError::Refused(err.to_string())),
    }
}

/// Pushes a built image to `--registry`, where the nodes pull it (again when it is
/// there already: a push of what the registry has costs a manifest check). Other
/// images are the nodes' to pull as they are.
async fn publish(
    shared: &Shared,
    deployment: &DeploymentRecord,
    image: &str,
    log: &Mutex<LiveLog>,
) -> Result<(), BuildError> {
    let built = Image::parse(image).is_ok_and(|i| is_built_image(&i, &deployment.application_id));
    if !built {
        return Ok(());
    }
    let Some(registry) = registry(shared)? else {
        return Ok(());
    };
    let target = super::in_registry(registry, image);
    note(log, &format!("==> pushing {target}"));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let push = shared.images.push(image, &target, tx);
    let forward = async {
        let mut last = String::new();
        while let Some(line) = rx.recv().await {
            // Progress repeats itself a line per chunk; the log keeps the changes.
            if line != last {
                note(log, &line);
                last = line;
            }
        }
    };
    let (pushed, ()) = tokio::join!(push, forward);
    pushed?;
    metrics::counter!("longin_image_pushes_total").increment(1);
    Ok(())
}

/// The registry built images go to; refused on several machines without one, where
/// no other node could pull what the manager built.
fn registry(shared: &Shared) -> Result<Option<&str>, BuildError> {
    match shared.config.registry.as_deref() {
        None if shared.config.multi_node => Err(BuildError::Refused(
            "builds on a Swarm need --registry (LONGIN_REGISTRY): the image is built on the manager and every node must pull it"
                .to_owned(),
        )),
        registry => Ok(registry),
    }
}

/// A redeploy of a pulled image: pull it, and roll out only if the engine's copy
/// changed (the tag points at another image now) or a user asked for it.
async fn repull(
    shared: &Shared,
    app: &ApplicationRecord,
    image: &Image,
    deployment: &DeploymentRecord,
    log: &Mutex<LiveLog>,
    cancel: &CancellationToken,
) -> Result<Done, BuildError> {
    let before = shared.images.image_id(image.as_str()).await?;
    note(log, &format!("==> pulling {image}"));
    shared
        .engine
        .ensure_image(image, ImagePullPolicy::Always, cancel)
        .await?;
    let after = shared.images.image_id(image.as_str()).await?;
    if before == after && deployment.triggered_by == "webhook" {
        return Ok(Done::Unchanged(format!(
            "{image} is unchanged ({}); nothing to roll out",
            after.as_deref().unwrap_or("no id")
        )));
    }
    let _ = app;
    roll_out(shared, deployment, image.as_str(), after, None, log).await
}

/// Fetches the commit, streams its context to the engine, and rolls the image out.
async fn build(
    shared: &Shared,
    app: &ApplicationRecord,
    deployment: &DeploymentRecord,
    log: &Mutex<LiveLog>,
    cancel: &CancellationToken,
) -> Result<Done, BuildError> {
    // Before any work: a build no node could pull is refused at once.
    registry(shared)?;
    let source = deployment
        .source
        .clone()
        .or_else(|| app.spec.source.as_ref().map(|s| s.git.clone()))
        .ok_or_else(|| BuildError::Refused("the application has no source to build".to_owned()))?;
    let credentials = shared.store.source_credentials(&app.id).await?;
    let key = credentials
        .ssh_private_key
        .as_deref()
        .map(|k| KeyFile::write(&shared.config.root, &app.id, k))
        .transpose()
        .map_err(GitError::Spawn)?;
    let mirror = Mirror::new(&shared.config.root, &app.id, shared.config.timeout)
        .with_token(credentials.https_token.as_deref())
        .with_key(key.as_ref());
    mirror.ensure(cancel).await?;
    note(
        log,
        &format!("==> fetching {} {}", source.url, source.branch),
    );
    let head = mirror
        .fetch_branch(&source.url, &source.branch, cancel)
        .await?;
    let commit = deployment.commit_sha.clone().unwrap_or(head);
    mirror
        .ensure_commit(&source.url, &source.branch, &commit, cancel)
        .await?;
    let info = mirror.commit_info(&commit, cancel).await?;
    note(log, &format!("==> commit {} {}", info.sha, info.message));
    let tag = built_image(&app.id, &info.sha);
    if let Some(id) = shared.images.image_id(tag.as_str()).await? {
        note(log, &format!("==> {tag} is built already"));
        return roll_out(shared, deployment, tag.as_str(), Some(id), Some(&info), log).await;
    }
    let dockerfile = dockerfile_in_context(&source.context, &source.dockerfile)
        .ok_or_else(|| BuildError::Refused("the Dockerfile is outside the context".to_owned()))?;
    let request = BuildRequest {
        tag: tag.as_str().to_owned(),
        dockerfile,
        memory: shared.config.memory,
    };
    let mut labels = shared.images.installation_labels();
    labels.extend([
        (IMAGE_APP_LABEL.to_owned(), app.id.clone()),
        (IMAGE_COMMIT_LABEL.to_owned(), info.sha.clone()),
        (
            IMAGE_REVISION_LABEL.to_owned(),
            deployment.revision.to_string(),
        ),
    ]);
    let suffix = label_line(&labels);
    note(log, &format!("==> building {tag}"));
    let what = Sources {
        mirror: &mirror,
        commit: &info.sha,
        source: &source,
        suffix: &suffix,
    };
    let id = build_image(shared, &what, request, log, cancel).await?;
    roll_out(shared, deployment, tag.as_str(), Some(id), Some(&info), log).await
}

/// What a build's context is made from.
struct Sources<'a> {
    mirror: &'a Mirror,
    commit: &'a str,
    source: &'a longin_crds::source::GitSource,
    /// Appended to the Dockerfile (the labels).
    suffix: &'a str,
}

/// Streams `git archive` through the context filter into the engine's build.
async fn build_image(
    shared: &Shared,
    what: &Sources<'_>,
    request: BuildRequest,
    log: &Mutex<LiveLog>,
    cancel: &CancellationToken,
) -> Result<String, BuildError> {
    let (source, suffix) = (what.source, what.suffix);
    let mut archive = what.mirror.archive(what.commit)?;
    let stdout = archive
        .stdout
        .take()
        .ok_or_else(|| BuildError::Context("git archive gave no output".to_owned()))?;
    let (chunks, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let (context, dockerfile, max, suffix) = (
        source.context.clone(),
        source.dockerfile.clone(),
        shared.config.max_context_bytes,
        suffix.to_owned(),
    );
    let writer = tokio::task::spawn_blocking(move || {
        let spec = ContextSpec {
            context: &context,
            dockerfile: &dockerfile,
            dockerfile_suffix: &suffix,
        };
        let mut out = std::io::BufWriter::with_capacity(64 << 10, ChannelWriter(chunks.clone()));
        let written = write_context(stdout, &spec, max, &mut out).and_then(|summary| {
            out.flush()?;
            Ok(summary)
        });
        if let Err(err) = &written {
            // Ends the engine's read with an error: the build stops, not hangs.
            let _ = chunks.blocking_send(Err(std::io::Error::other(err.to_string())));
        }
        let _ = archive.kill();
        let _ = archive.wait();
        written.map_err(|e| e.to_string())
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
    .boxed();
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel::<String>();
    let built = {
        let build = shared.images.build(&request, body, lines_tx);
        tokio::pin!(build);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Err(BuildError::Cancelled),
                Some(line) = lines_rx.recv() => log.lock().unwrap_or_else(PoisonError::into_inner).push(line.as_bytes()),
                result = &mut build => break result,
            }
        }
    };
    while let Ok(line) = lines_rx.try_recv() {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.as_bytes());
    }
    let context = writer
        .await
        .map_err(|e| BuildError::Context(e.to_string()))?;
    match (built, context) {
        (_, Err(why)) => Err(BuildError::Context(why)),
        (Err(err), Ok(_)) => Err(err.into()),
        (Ok(id), Ok(summary)) => {
            note(
                log,
                &format!(
                    "==> context: {} files, {} bytes",
                    summary.files, summary.bytes
                ),
            );
            Ok(id)
        }
    }
}

/// The log as stored, and the lines not yet published live.
#[derive(Debug)]
struct LiveLog {
    log: BuildLog,
    fresh: Vec<String>,
    /// Lines completed before `fresh[0]`.
    before_fresh: usize,
}

/// Lines published per second at most: a build printing faster is still stored
/// (capped) but its live view skips lines.
const LIVE_LINES: usize = 2000;

impl LiveLog {
    fn new(max_bytes: usize) -> Self {
        Self {
            log: BuildLog::new(max_bytes),
            fresh: Vec::new(),
            before_fresh: 0,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let lines = self.log.push(chunk);
        self.fresh.extend(lines);
        if self.fresh.len() > LIVE_LINES {
            let skipped = self.fresh.len() - LIVE_LINES;
            self.fresh.drain(..skipped);
            self.before_fresh += skipped;
        }
    }

    fn finish(&mut self) {
        self.fresh.extend(self.log.finish());
    }

    /// The lines not yet published and how many came before them.
    fn take_fresh(&mut self) -> (usize, Vec<String>) {
        let first = self.before_fresh;
        let fresh = std::mem::take(&mut self.fresh);
        self.before_fresh += fresh.len();
        (first, fresh)
    }
}

/// One `LABEL` instruction for every label, appended to the Dockerfile as sent: a
/// single build step (the engine's `labels` option makes one per label). Keys and
/// values are quoted with `"` and `\` escaped, so no value can end the line.
fn label_line(labels: &[(String, String)]) -> String {
    let quote = |s: &str| {
        let escaped: String = s
            .chars()
            .filter(|c| !c.is_control())
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    };
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect();
    format!("LABEL {}\n", pairs.join(" "))
}

/// A blocking writer into the engine's request body.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the build stopped reading")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_goes_in_one_quoted_instruction() {
        let labels = [
            ("io.longin.app-uid".to_owned(), "u-1".to_owned()),
            (
                "io.longin.instance".to_owned(),
                "odd \"name\"\\\nLABEL x=y".to_owned(),
            ),
        ];
        assert_eq!(
            label_line(&labels),
            "LABEL \"io.longin.app-uid\"=\"u-1\" \"io.longin.instance\"=\"odd \\\"name\\\"\\\\LABEL x=y\"\n"
        );
    }
}
