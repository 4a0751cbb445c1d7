//! The reconciler on the in-memory engine and a real (SQLite, temporary) store: every
//! rule the controller keeps, without Docker. The reconciler's clock is moved instead
//! of waited for.

use std::sync::Arc;
use std::time::Duration;

use longin_crds::application::Phase;
use longin_store::applications::{ApplyMode, PortRange, Verb};
use longin_store::bus::Bus;
use longin_store::quotas::Quota;
use longin_store::users::{NewUser, Role};
use longin_store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

use super::{Context, ControllerConfig, ReconcileError, reconcile};
use crate::fake_engine::FakeEngine;
use crate::plan::RestartLimit;
use crate::prober::Prober;

const RANGE: PortRange = PortRange {
    first: 47_100,
    last: 47_140,
};
const IMAGE: &str = "127.0.0.1:5000/longin/httpd:1.0";

struct Harness {
    ctx: Context,
    engine: Arc<FakeEngine>,
    store: Store,
    owner: String,
    _dir: tempfile::TempDir,
}

async fn harness(limit: RestartLimit) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&StoreOptions::sqlite_file(&dir.path().join("longin.db")))
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let owner = store
        .create_user(&NewUser {
            username: "alice",
            email: "alice@example.com",
            password_hash: "x",
            role: Role::User,
        })
        .await
        .expect("user")
        .id;
    let engine = Arc::new(FakeEngine::default());
    let (probe_tx, _probe_rx) = tokio::sync::mpsc::unbounded_channel();
    let config = ControllerConfig {
        installation: "test-installation".to_owned(),
        bind_address: "127.0.0.1".to_owned(),
        port_range: RANGE,
        restart_limit: limit,
        ..ControllerConfig::default()
    };
    let ctx = Context::new(
        store.clone(),
        engine.clone(),
        Prober::new(probe_tx),
        Bus::in_process(),
        config,
        CancellationToken::new(),
    );
    Harness {
        ctx,
        engine,
        store,
        owner,
        _dir: dir,
    }
}

impl Harness {
    /// Applies app `name` with `replicas` of `image`; returns its uid.
    async fn apply(&self, name: &str, image: &str, replicas: u32) -> String {
        let doc = longin_crds::validation::parse_application(&serde_json::json!({
            "apiVersion": "longin.io/v1", "kind": "Application",
            "metadata": {"name": name},
            "spec": {"image": image, "containerPort": 8080, "replicas": replicas,
                     "restartPolicy": "Always"},
        }))
        .expect("valid document");
        let applied = self
            .store
            .apply_applications(
                &self.owner,
                &[doc],
                ApplyMode::Apply,
                RANGE,
                &Quota::default(),
            )
            .await
            .expect("applied");
        applied[0].record.id.clone()
    }

    /// One reconcile, then the background stops and pulls it began run.
    async fn pass(&self, app: &str) -> Result<Option<Duration>, ReconcileError> {
        let result = reconcile(app.to_owned(), self.ctx.clone()).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        result
    }

    /// Reconciles until a pass has nothing left to come back for (at most `passes`).
    async fn settle(&self, app: &str, passes: usize) -> Result<Option<Duration>, ReconcileError> {
        let mut last = Ok(None);
        for _ in 0..passes {
            last = self.pass(app).await;
            if matches!(last, Ok(None)) {
                break;
            }
        }
        last
    }

    async fn status(&self, app: &str) -> longin_crds::application::ApplicationStatus {
        self.store
            .application_by_id(app)
            .await
            .expect("read")
            .expect("app exists")
            .status
    }

    async fn ports(&self, app: &str, replicas: u32) -> Vec<u16> {
        self.store.host_ports(app, replicas).await.expect("ports")
    }
}

fn quick_limit() -> RestartLimit {
    RestartLimit {
        backoff_start_secs: 1,
        max_restarts: 2,
        window_secs: 600,
    }
}

fn condition<'a>(
    status: &'a longin_crds::application::ApplicationStatus,
    type_: &str,
) -> Option<&'a longin_crds::application::Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[tokio::test]
async fn a_new_app_runs_each_replica_on_its_port_and_reports_running() {
    let h = harness(quick_limit()).await;
    let app = h.apply("web", IMAGE, 2).await;
    assert!(matches!(h.settle(&app, 10).await, Ok(None)));

    let ports = h.ports(&app, 2).await;
    let running = h.engine.running();
    assert_eq!(
        running.iter().map(|(r, p, _)| (*r, *p)).collect::<Vec<_>>(),
        vec![(0, ports[0]), (1, ports[1])]
    );
    assert_eq!(h.engine.pulls(), vec![IMAGE.to_owned()]);
    let status = h.status(&app).await;
    assert_eq!(status.phase, Phase::Running);
    assert_eq!((status.replicas, status.ready_replicas), (2, 2));
    assert_eq!(status.host_ports, ports);

    // Level-triggered: one more pass changes nothing.
    let before = h.engine.containers().len();
    assert!(matches!(h.pass(&app).await, Ok(None)));
    assert_eq!(h.engine.containers().len(), before);
}

#[tokio::test]
async fn a_crashing_replica_restarts_then_backs_off_then_the_app_fails() {
    let h = harness(quick_limit()).await;
    let app = h.apply("crashy", IMAGE, 1).await;
    h.settle(&app, 10).await.expect("settles");

    // First crash: restarted at once.
    h.engine.exit_all(1);
    h.pass(&app).await.expect("pass");
    assert_eq!(h.engine.restarts(), 1);
    assert_eq!(h.engine.running().len(), 1);

    // Second crash within the back-off: not restarted, looked at again when it ends.
    h.engine.exit_all(1);
    let requeue = h.pass(&app).await.expect("pass").expect("comes back");
    assert!(requeue <= Duration::from_secs(1), "{requeue:?}");
    assert_eq!(h.engine.restarts(), 1);
    let status = h.status(&app).await;
    assert_ne!(status.phase, Phase::Running);
    assert!(
        format!("{status:?}").contains("back-off 1s restarting replica 0"),
        "{status:?}"
    );

    // After the back-off the budget (2) allows one more; the next crash fails the app.
    h.ctx.clock.advance(1_050);
    h.pass(&app).await.expect("pass");
    assert_eq!(h.engine.restarts(), 2);
    h.engine.exit_all(1);
    assert!(matches!(h.pass(&app).await, Ok(None)), "Failed is final");
    assert_eq!(h.engine.restarts(), 2);
    let status = h.status(&app).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert!(format!("{status:?}").contains("restarted 2 times"));

    // Failed survives a new controller (the verdict is read from the status) …
    let again = Context::new(
        h.store.clone(),
        h.engine.clone(),
        h.ctx.prober.clone(),
        Bus::in_process(),
        h.ctx.config.clone(),
        CancellationToken::new(),
    );
    reconcile(app.clone(), again).await.expect("pass");
    assert_eq!(h.engine.restarts(), 2);

    // … and a restart (a new generation) clears it.
    h.store
        .apply_verb(&h.owner, "crashy", Verb::Restart, RANGE, &Quota::default())
        .await
        .expect("restart");
    h.settle(&app, 20).await.expect("settles");
    assert_eq!(h.status(&app).await.phase, Phase::Running);
}

#[tokio::test]
async fn a_refused_replica_is_reported_and_retried_without_spending_restarts() {
    let h = harness(quick_limit()).await;
    let app = h.apply("refused", IMAGE, 1).await;
    h.engine
        .refuse_next_create("OCI runtime create failed: exec: \"nope\": not found");
    // The pull comes first; the create is refused on a later pass.
    let mut refused = None;
    for _ in 0..5 {
        if let Err(err) = h.pass(&app).await {
            refused = Some(err);
            break;
        }
    }
    let err = refused.expect("the create is refused");
    assert!(err.to_string().contains("not found"), "{err}");
    let status = h.status(&app).await;
    let failure = condition(&status, "ReplicaFailure").expect("ReplicaFailure");
    assert_eq!(failure.status, "True");
    assert!(failure.message.contains("not found"), "{failure:?}");

    // The queue retries; this time the engine accepts and the condition clears.
    h.settle(&app, 10).await.expect("settles");
    let status = h.status(&app).await;
    assert_eq!(status.phase, Phase::Running);
    assert!(condition(&status, "ReplicaFailure").is_none_or(|c| c.status == "False"));
    assert_eq!(h.engine.restarts(), 0);
}

#[tokio::test]
async fn a_failed_pull_is_in_the_status_and_makes_no_container() {
    let h = harness(quick_limit()).await;
    h.engine
        .fail_pulls_of("127.0.0.1:5000/longin/missing:1", "manifest unknown");
    let app = h
        .apply("nopull", "127.0.0.1:5000/longin/missing:1", 1)
        .await;
    let mut failed = false;
    for _ in 0..5 {
        if let Err(err) = h.pass(&app).await {
            assert!(err.to_string().contains("manifest unknown"), "{err}");
            failed = true;
            break;
        }
    }
    assert!(failed, "the pull failure fails the reconcile");
    assert!(h.engine.containers().is_empty());
    assert!(format!("{:?}", h.status(&app).await).contains("manifest unknown"));
}

#[tokio::test]
async fn deletion_stops_every_replica_then_removes_the_app_and_its_ports() {
    let h = harness(quick_limit()).await;
    let app = h.apply("doomed", IMAGE, 3).await;
    h.settle(&app, 10).await.expect("settles");
    let ids: Vec<String> = h
        .engine
        .containers()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 3);

    let gone_at_once = h
        .store
        .delete_application(&h.owner, "doomed", true)
        .await
        .expect("delete");
    assert!(!gone_at_once, "marked for the controller to finish");
    assert!(matches!(h.settle(&app, 10).await, Ok(None)));
    assert!(h.engine.containers().is_empty());
    let mut stopped = h.engine.stopped();
    stopped.sort();
    assert_eq!(stopped, ids);
    assert!(
        h.store
            .application_by_id(&app)
            .await
            .expect("read")
            .is_none()
    );
    assert!(h.ports(&app, 3).await.is_empty());
}

#[tokio::test]
async fn orphans_of_an_unknown_app_are_removed() {
    let h = harness(quick_limit()).await;
    let app = h.apply("orphaned", IMAGE, 1).await;
    h.settle(&app, 10).await.expect("settles");
    // The row goes without the controller (as when an older backup is restored).
    h.store.sync_containers(&app, &[], 0).await.expect("rows");
    let gone_at_once = h
        .store
        .delete_application(&h.owner, "orphaned", false)
        .await
        .expect("delete");
    assert!(gone_at_once);
    assert!(matches!(h.pass(&app).await, Ok(None)));
    assert!(h.engine.containers().is_empty());
}

#[tokio::test]
async fn a_rollout_starts_new_replicas_on_surge_ports_before_removing_old_ones() {
    let h = harness(quick_limit()).await;
    let app = h.apply("rolling", IMAGE, 4).await;
    h.settle(&app, 10).await.expect("settles");
    let old_ports = h.ports(&app, 4).await;
    let old_hash = h.engine.running()[0].2.clone();

    h.apply("rolling", "127.0.0.1:5000/longin/httpd:2.0", 4)
        .await;
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 40, "the rollout ends");
        h.pass(&app).await.expect("pass");
        let running = h.engine.running();
        // Never below the wanted count while rolling (one surge at a time: 4 / 4).
        assert!(
            running.len() >= 4,
            "only {} running: {running:?}",
            running.len()
        );
        assert!(running.len() <= 5, "at most one surge: {running:?}");
        // A new container never takes a port an old one still serves.
        for (_, port, hash) in &running {
            if *hash != old_hash {
                let old_on_it = running
                    .iter()
                    .any(|(_, p, h2)| p == port && *h2 == old_hash);
                assert!(!old_on_it, "new and old on port {port}: {running:?}");
            }
        }
        if running.len() == 4 && running.iter().all(|(_, _, hash)| *hash != old_hash) {
            break;
        }
    }
    h.settle(&app, 10).await.expect("settles");
    let new_ports = h.ports(&app, 4).await;
    let running = h.engine.running();
    assert_eq!(
        running.iter().map(|(r, p, _)| (*r, *p)).collect::<Vec<_>>(),
        (0..4)
            .map(|r| (r, new_ports[r as usize]))
            .collect::<Vec<_>>()
    );
    // Each replica moved to its surge port (a port freed by an earlier replica is
    // reused by the next one's surge): replica 0 no longer has its first port.
    assert_ne!(new_ports[0], old_ports[0], "{old_ports:?} → {new_ports:?}");
    let distinct: std::collections::HashSet<_> = new_ports.iter().collect();
    assert_eq!(distinct.len(), 4, "{new_ports:?}");
    assert!(h.store.surge_ports(&app).await.expect("surge").is_empty());
    let status = h.status(&app).await;
    assert_eq!((status.phase, status.updated_replicas), (Phase::Running, 4));
}

#[tokio::test]
async fn a_new_controller_adopts_what_runs_and_starts_what_was_left_created() {
    let h = harness(quick_limit()).await;
    let app = h.apply("adopted", IMAGE, 2).await;
    h.settle(&app, 10).await.expect("settles");
    let before = h.engine.containers();
    // The old controller died between create and start of replica 1's container.
    h.engine.leave_created(&before[1].0);

    let (probe_tx, _probe_rx) = tokio::sync::mpsc::unbounded_channel();
    let successor = Context::new(
        h.store.clone(),
        h.engine.clone(),
        Prober::new(probe_tx),
        Bus::in_process(),
        h.ctx.config.clone(),
        CancellationToken::new(),
    );
    for _ in 0..5 {
        if matches!(reconcile(app.clone(), successor.clone()).await, Ok(None)) {
            break;
        }
    }
    let after = h.engine.containers();
    assert_eq!(
        after.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        before.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "nothing recreated"
    );
    assert_eq!(h.engine.running().len(), 2, "the created one was started");
    assert_eq!(h.status(&app).await.phase, Phase::Running);
}

#[tokio::test]
async fn a_port_held_outside_longin_moves_the_replica_and_says_so() {
    let h = harness(quick_limit()).await;
    let app = h.apply("squatted", IMAGE, 1).await;
    let wanted = h.ports(&app, 1).await[0];
    h.engine.hold_port(wanted);
    h.settle(&app, 10).await.expect("settles");

    let moved = h.ports(&app, 1).await[0];
    assert_ne!(moved, wanted);
    assert_eq!(
        h.engine
            .running()
            .iter()
            .map(|(_, p, _)| *p)
            .collect::<Vec<_>>(),
        vec![moved]
    );
    let status = format!("{:?}", h.status(&app).await);
    assert!(
        status.contains(&format!("host port {wanted} skipped")),
        "{status}"
    );
}

#[tokio::test]
async fn a_rollout_past_its_deadline_says_so_and_the_old_replicas_keep_serving() {
    let h = harness(quick_limit()).await;
    let app = h.apply("stuck", IMAGE, 1).await;
    h.settle(&app, 10).await.expect("settles");
    let serving = h.engine.running();

    h.apply("stuck", "127.0.0.1:5000/longin/httpd:2.0", 1).await;
    for _ in 0..20 {
        h.engine.refuse_next_create("exec format error");
    }
    h.ctx.clock.advance(601_000);
    for _ in 0..3 {
        let _refused = h.pass(&app).await;
    }
    let status = h.status(&app).await;
    let progressing = condition(&status, "Progressing").expect("Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", "ProgressDeadlineExceeded"),
        "{status:?}"
    );
    assert_eq!(h.engine.running(), serving, "the old replica keeps serving");
}

#[tokio::test]
async fn the_status_that_says_running_ends_the_rollouts_revision_succeeded() {
    let h = harness(quick_limit()).await;
    let app = h.apply("web", IMAGE, 2).await;
    h.settle(&app, 10).await.expect("settles");
    h.apply("web", "127.0.0.1:5000/longin/httpd:2.0", 2).await;
    h.settle(&app, 20).await.expect("settles");

    assert_eq!(h.status(&app).await.phase, Phase::Running);
    let history = h
        .store
        .application_deployments(&app, 10)
        .await
        .expect("history");
    let ended: Vec<(i64, &str)> = history
        .iter()
        .map(|d| (d.revision, d.status.as_str()))
        .collect();
    assert_eq!(ended, [(2, "succeeded"), (1, "succeeded")], "{history:?}");
}
