//! The controller on the real Docker engine, with images pulled from the local registry.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::{
    TestApp, app_yaml, apply, docker, eventually, get_application as get, registry, spawn_platform,
    wait_for,
};

fn containers_of(instance: &str, name: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=io.longin.instance={instance}"),
        "--filter",
        &format!("label=io.longin.app-name={name}"),
    ])
    .split_whitespace()
    .map(str::to_owned)
    .collect()
}

fn ports(a: &Value) -> Vec<u16> {
    a["status"]["hostPorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u16::try_from(p.as_u64().unwrap()).unwrap())
        .collect()
}

async fn body_at(port: u16, path: &str) -> Option<String> {
    let res = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    res.status().is_success().then_some(res.text().await.ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_app_runs_answers_http_and_reports_running() {
    let app = spawn_platform().await;
    let user = app.register("runner").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(
        &app,
        &user.access_token,
        &app_yaml(
            "web",
            &image,
            2,
            "  healthCheck: {http: {path: /healthz}, periodSeconds: 1}\n",
        ),
    )
    .await;
    let a = wait_for(&app, &user.access_token, "web", "Running", 2).await;
    for port in ports(&a) {
        assert_eq!(
            body_at(port, "/").await.as_deref(),
            Some("longin httpd 1.0")
        );
    }
    assert!(
        a["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    );
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["checks"]["docker"], "ok", "{ready}");
    let containers: Value = app
        .get("/api/applications/web/containers", Some(&user.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(containers.as_array().unwrap().len(), 2);
    assert!(
        containers
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "running")
    );

    // The container is hardened and limited as documented.
    let id = &containers_of(&app.instance, "web")[0];
    let inspect: Value = serde_json::from_str(&docker(&["inspect", id])).unwrap();
    let host = &inspect[0]["HostConfig"];
    assert_eq!(host["Memory"], 512 * 1024 * 1024);
    assert_eq!(host["CpuShares"], 1024);
    assert_eq!(host["RestartPolicy"]["Name"], "no");
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert!(
        host["SecurityOpt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str().unwrap().starts_with("no-new-privileges"))
    );
    assert_eq!(host["PidsLimit"], 512);
    assert!(inspect[0]["Mounts"].as_array().unwrap().is_empty());

    // A second reconcile changes nothing: same containers.
    let before = containers_of(&app.instance, "web");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut after = containers_of(&app.instance, "web");
    let mut before_sorted = before.clone();
    before_sorted.sort();
    after.sort();
    assert_eq!(after, before_sorted);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_follows_the_replica_count() {
    let app = spawn_platform().await;
    let user = app.register("scaler").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    for replicas in [1u32, 3, 0, 2] {
        apply(
            &app,
            &user.access_token,
            &app_yaml("scaled", &image, replicas, ""),
        )
        .await;
        let phase = if replicas == 0 { "Stopped" } else { "Running" };
        let a = wait_for(
            &app,
            &user.access_token,
            "scaled",
            phase,
            u64::from(replicas),
        )
        .await;
        let running = eventually(30, "container count", || async {
            let n = containers_of(&app.instance, "scaled").len();
            (n == replicas as usize).then_some(n)
        })
        .await;
        assert_eq!(running, replicas as usize);
        assert_eq!(ports(&a).len(), replicas as usize);
    }
    // Ports of removed replicas went back to the pool.
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap();
    let allocated = eventually(30, "ports released", || async {
        let p = store.allocated_ports().await.unwrap();
        (p.len() == 2).then_some(p)
    })
    .await;
    assert_eq!(allocated.len(), 2);
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_or_stopped_containers_are_replaced() {
    let app = spawn_platform().await;
    let user = app.register("healer").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(&app, &user.access_token, &app_yaml("healed", &image, 1, "")).await;
    let a = wait_for(&app, &user.access_token, "healed", "Running", 1).await;
    let port = ports(&a)[0];
    let first = containers_of(&app.instance, "healed").remove(0);

    docker(&["rm", "-f", &first]);
    let second = eventually(30, "a new container", || async {
        containers_of(&app.instance, "healed")
            .into_iter()
            .find(|id| *id != first)
    })
    .await;
    eventually(30, "answers again", || body_at(port, "/")).await;

    docker(&["stop", "-t", "1", &second]);
    eventually(30, "restarted after docker stop", || async {
        containers_of(&app.instance, "healed")
            .contains(&second)
            .then_some(())
    })
    .await;
    eventually(30, "answers after restart", || body_at(port, "/")).await;

    // A controller that dies between create and start leaves a container in the
    // "created" state. Make one with the same labels, take the running one away, and
    // the controller must start it rather than leave the replica dark.
    let labels: std::collections::BTreeMap<String, String> = serde_json::from_str(&docker(&[
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        &second,
    ]))
    .unwrap();
    let mut args = vec!["create".to_owned()];
    for (k, v) in &labels {
        args.extend(["--label".to_owned(), format!("{k}={v}")]);
    }
    args.extend([
        "-p".to_owned(),
        format!("127.0.0.1:{port}:8080"),
        image.clone(),
    ]);
    // Docker's creation times have one-second resolution, and of two copies of a
    // replica the controller keeps the newer: make this one clearly newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let created = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let created = created.trim().to_owned();
    docker(&["rm", "-f", &second]);
    eventually(60, "the created container started", || async {
        (containers_of(&app.instance, "healed")
            .iter()
            .map(|id| created.starts_with(id.as_str()))
            .collect::<Vec<_>>()
            == [true])
        .then_some(())
    })
    .await;
    eventually(30, "answers from the started container", || {
        body_at(port, "/")
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_removed_and_foreign_containers_left_alone() {
    let app = spawn_platform().await;
    let image = format!("{}/longin/busybox:1.0", registry());
    docker(&["pull", "-q", &image]);
    let installation = app.installation_id().await;
    let orphan = docker(&[
        "run",
        "-d",
        "--label",
        "io.longin.managed-by=longin",
        "--label",
        &format!("io.longin.instance={}", app.instance),
        "--label",
        &format!("io.longin.installation={installation}"),
        "--label",
        "io.longin.app-uid=00000000-dead-beef-0000-000000000000",
        "--label",
        "io.longin.replica=0",
        &image,
        "/bin/sleep",
        "300",
    ]);
    let foreign_name = format!("foreign-{}", app.instance);
    let foreign = docker(&[
        "run",
        "-d",
        "--name",
        &foreign_name,
        &image,
        "/bin/sleep",
        "300",
    ]);
    let (orphan, foreign) = (orphan.trim().to_owned(), foreign.trim().to_owned());
    eventually(30, "orphan removed", || async {
        let left = docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("id={orphan}"),
        ]);
        left.trim().is_empty().then_some(())
    })
    .await;
    let still = docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("id={foreign}"),
    ]);
    assert_eq!(
        still.trim(),
        foreign,
        "a container without the managed label is never touched"
    );
    docker(&["rm", "-f", &foreign]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_every_container_and_row() {
    let app = spawn_platform().await;
    let user = app.register("deleter").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(&app, &user.access_token, &app_yaml("doomed", &image, 2, "")).await;
    wait_for(&app, &user.access_token, "doomed", "Running", 2).await;
    let res = app
        .client
        .delete(app.url("/api/applications/doomed"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "Terminating");
    eventually(60, "application gone", || async {
        get(&app, &user.access_token, "doomed")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(containers_of(&app.instance, "doomed").is_empty());
    let all = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.longin.instance={}", app.instance),
    ]);
    assert!(all.trim().is_empty(), "no container left: {all}");
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap();
    assert!(store.allocated_ports().await.unwrap().is_empty());
    assert!(store.list_applications(None).await.unwrap().is_empty());
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_port_went_missing_gets_one_and_runs_again() {
    use sqlx::Connection as _;
    let app = spawn_platform().await;
    let user = app.register("porter").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(
        &app,
        &user.access_token,
        &app_yaml("portless", &image, 1, ""),
    )
    .await;
    wait_for(&app, &user.access_token, "portless", "Running", 1).await;
    // The replica loses its port allocation (as a racing release once made it) and
    // then its container.
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM port_allocations")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    for id in containers_of(&app.instance, "portless") {
        docker(&["rm", "-f", &id]);
    }
    let a = eventually(60, "a new port and a running replica", || async {
        let a = get(&app, &user.access_token, "portless").await?;
        (a["status"]["readyReplicas"] == 1 && ports(&a).len() == 1).then_some(a)
    })
    .await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap();
    assert_eq!(store.allocated_ports().await.unwrap(), ports(&a));
    store.close().await;
    let port = ports(&a)[0];
    eventually(10, "the replica answers on it", || body_at(port, "/")).await;
    app.stop().await;
}

/// The application once its status says `ImagePulled=False`.
async fn pull_failure(app: &TestApp, token: &str, name: &str) -> Value {
    eventually(60, "ImagePulled=False", || async {
        let a = get(app, token, name).await?;
        a["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "ImagePulled" && c["status"] == "False")
            .then_some(a)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_exist_is_reported_and_retried() {
    let app = spawn_platform().await;
    let user = app.register("puller").await;
    let image = format!("{}/longin/does-not-exist:1.0", registry());
    apply(&app, &user.access_token, &app_yaml("ghost", &image, 1, "")).await;
    let a = pull_failure(&app, &user.access_token, "ghost").await;
    assert!(
        a["status"]["message"].as_str().unwrap().contains("pull"),
        "{a}"
    );
    // Fixing the image recovers without any restart of Longin.
    apply(
        &app,
        &user.access_token,
        &app_yaml("ghost", &format!("{}/longin/httpd:1.0", registry()), 1, ""),
    )
    .await;
    wait_for(&app, &user.access_token, "ghost", "Running", 1).await;
    assert_eq!(
        app.get("/readyz", None).await.status(),
        StatusCode::OK,
        "the server kept serving"
    );
    app.stop().await;
}

/// A "registry" on 127.0.0.1 that accepts connections and never says a word.
struct SilentRegistry {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentRegistry {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let accepted = accepted.clone();
            async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    held.push(socket);
                }
            }
        });
        Self {
            port,
            accepted,
            task,
        }
    }

    fn abort(&self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_cuts_a_pull_short() {
    let silent = SilentRegistry::start().await;
    // The default engine timeout (2 min): only the cancellation can end the pull soon.
    let app = spawn_platform().await;
    let user = app.register("leaver").await;
    let image = format!("127.0.0.1:{}/longin/stalled:1.0", silent.port);
    apply(
        &app,
        &user.access_token,
        &app_yaml("leaving", &image, 1, ""),
    )
    .await;
    eventually(30, "the engine is pulling", || async {
        (silent.accepted.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    app.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_a_registry_that_stops_answering_is_given_up() {
    // Without a bound on the pull's progress the reconcile would wait on it forever.
    let silent = SilentRegistry::start().await;
    let port = silent.port;
    let app =
        common::spawn_platform_with(|args| args.engine_timeout = Duration::from_secs(3)).await;
    let user = app.register("patient").await;
    let image = format!("127.0.0.1:{port}/longin/stalled:1.0");
    apply(
        &app,
        &user.access_token,
        &app_yaml("stalled", &image, 1, ""),
    )
    .await;
    let a = pull_failure(&app, &user.access_token, "stalled").await;
    let message = a["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("no progress from the registry for 3 s"),
        "{a}"
    );
    assert_eq!(
        app.get("/readyz", None).await.status(),
        StatusCode::OK,
        "the server kept serving"
    );
    silent.abort();
    app.stop().await;
}

/// The body of the first of the app's current ports that answers, if any.
async fn any_answer(app: &TestApp, token: &str, name: &str) -> Option<String> {
    let a = get(app, token, name).await?;
    for port in ports(&a) {
        if let Some(body) = body_at(port, "/").await {
            return Some(body);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_change_rolls_over_without_a_moment_of_no_answer() {
    let app = spawn_platform().await;
    let user = app.register("roller").await;
    let check = "  healthCheck: {http: {path: /healthz}, periodSeconds: 1}\n";
    let v1 = format!("{}/longin/httpd:1.0", registry());
    let v2 = format!("{}/longin/httpd:2.0", registry());
    docker(&["pull", "-q", &v2]);
    apply(
        &app,
        &user.access_token,
        &app_yaml("rolling", &v1, 2, check),
    )
    .await;
    let before = wait_for(&app, &user.access_token, "rolling", "Running", 2).await;

    apply(
        &app,
        &user.access_token,
        &app_yaml("rolling", &v2, 2, check),
    )
    .await;
    let (mut rounds, mut misses) = (0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        rounds += 1;
        if any_answer(&app, &user.access_token, "rolling")
            .await
            .is_none()
        {
            misses += 1;
        }
        let a = get(&app, &user.access_token, "rolling").await.unwrap();
        let done = a["status"]["phase"] == "Running"
            && a["status"]["updatedReplicas"] == 2
            && a["status"]["readyReplicas"] == 2
            && a["status"]["observedGeneration"] == a["metadata"]["generation"];
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout did not finish: {a}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("rollout: {rounds} polling rounds, {misses} without an answer");
    assert_eq!(
        misses, 0,
        "some replica answered at every moment of the rollout"
    );
    let after = get(&app, &user.access_token, "rolling").await.unwrap();
    assert_ne!(
        ports(&after),
        ports(&before),
        "new replicas came up on new ports"
    );
    for port in ports(&after) {
        assert_eq!(
            body_at(port, "/").await.as_deref(),
            Some("longin httpd 2.0")
        );
    }
    let running = eventually(30, "old containers gone", || async {
        let ids = containers_of(&app.instance, "rolling");
        (ids.len() == 2).then_some(ids)
    })
    .await;
    assert_eq!(running.len(), 2);
    let history: Value = app
        .get(
            "/api/applications/rolling/deployments",
            Some(&user.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["status"], "succeeded", "{history}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_is_reported_while_the_old_replicas_keep_serving() {
    let app = common::spawn_platform_with(|args| args.progress_deadline_seconds = 3).await;
    let user = app.register("stuck").await;
    let v1 = format!("{}/longin/httpd:1.0", registry());
    let v2 = format!("{}/longin/httpd:2.0", registry());
    apply(
        &app,
        &user.access_token,
        &app_yaml(
            "stuck",
            &v1,
            1,
            "  healthCheck: {http: {path: /healthz}, periodSeconds: 1}\n",
        ),
    )
    .await;
    wait_for(&app, &user.access_token, "stuck", "Running", 1).await;
    // The new version never becomes Ready: its probe path does not exist.
    apply(
        &app,
        &user.access_token,
        &app_yaml(
            "stuck",
            &v2,
            1,
            "  healthCheck: {http: {path: /missing}, periodSeconds: 1, failureThreshold: 100}\n",
        ),
    )
    .await;
    let a = eventually(60, "ProgressDeadlineExceeded", || async {
        let a = get(&app, &user.access_token, "stuck").await?;
        a["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| {
                c["type"] == "Progressing"
                    && c["status"] == "False"
                    && c["reason"] == "ProgressDeadlineExceeded"
            })
            .then_some(a)
    })
    .await;
    assert_eq!(
        any_answer(&app, &user.access_token, "stuck")
            .await
            .as_deref(),
        Some("longin httpd 1.0"),
        "{a}"
    );
    let history: Value = app
        .get(
            "/api/applications/stuck/deployments",
            Some(&user.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["status"], "failed", "{history}");
    app.stop().await;
}

/// The app's restart count as the controller records it.
async fn restart_count(app: &TestApp, token: &str, name: &str) -> i64 {
    let containers: Value = app
        .get(&format!("/api/applications/{name}/containers"), Some(token))
        .await
        .json()
        .await
        .unwrap();
    containers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_check_restarts_with_growing_delays() {
    let app = common::spawn_platform_with(|args| {
        args.restart_backoff_seconds = 1;
        args.max_restarts = 20;
    })
    .await;
    let user = app.register("prober").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    let check = "  healthCheck: {http: {path: /missing}, periodSeconds: 1, failureThreshold: 1}\n";
    apply(
        &app,
        &user.access_token,
        &app_yaml("sick", &image, 1, check),
    )
    .await;
    let mut seen = Vec::new();
    let (mut last, started) = (0, std::time::Instant::now());
    while seen.len() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "restarts seen: {seen:?}"
        );
        let n = restart_count(&app, &user.access_token, "sick").await;
        if n > last {
            seen.push(started.elapsed().as_secs_f64());
            last = n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gaps: Vec<f64> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    println!("restart times {seen:?}, gaps {gaps:?}");
    // CrashLoopBackOff from 1 s: 1, 2, 4, 8 s between restarts. Each gap is seen
    // through a 100 ms poll of a row written after the restart, so it carries up to
    // about half a second of noise under load: the fourth gap tells doubling (8 s)
    // from linear growth (4 s) with room to spare.
    assert!(
        gaps.windows(2).all(|w| w[1] > w[0]),
        "delays grow: {gaps:?}"
    );
    assert!(gaps[3] >= 6.5, "delays double: {gaps:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_app_fails_after_the_restart_limit_and_restart_recovers_it() {
    let app = common::spawn_platform_with(|args| {
        args.restart_backoff_seconds = 1;
        args.max_restarts = 3;
    })
    .await;
    let user = app.register("crasher").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    // Crashes until `fixed_at`, then serves: the bug is "fixed" while the app is Failed.
    let fixed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 20;
    let extra = format!(
        "  command: [/bin/sh, -c]\n  args: ['if [ $(date +%s) -lt {fixed_at} ]; then echo crashing >&2; exit 3; fi; exec /bin/busybox httpd -f -p 8080 -h /www']\n  restartPolicy: Always\n"
    );
    apply(
        &app,
        &user.access_token,
        &app_yaml("crashy", &image, 1, &extra),
    )
    .await;
    let failed = eventually(60, "phase Failed", || async {
        let a = get(&app, &user.access_token, "crashy").await?;
        (a["status"]["phase"] == "Failed").then_some(a)
    })
    .await;
    assert!(
        failed["status"]["message"]
            .as_str()
            .unwrap()
            .contains("restarted 3 times"),
        "{failed}"
    );
    // Failed is final: no more restarts happen on their own.
    let count = restart_count(&app, &user.access_token, "crashy").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        restart_count(&app, &user.access_token, "crashy").await,
        count
    );

    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= fixed_at
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = app
        .post(
            "/api/applications/crashy/restart",
            &serde_json::json!({}),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let a = wait_for(&app, &user.access_token, "crashy", "Running", 1).await;
    // Without a health check Ready means the process runs; httpd listens a moment later.
    let port = ports(&a)[0];
    let body = eventually(10, "the recovered app answers", || body_at(port, "/")).await;
    assert_eq!(body, "longin httpd 1.0");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_port_taken_by_another_program_is_reported_then_recovered() {
    // Another program holds the only port of the pool.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let app = common::spawn_platform_with(|a| {
        a.port_range = longin_store::applications::PortRange {
            first: port,
            last: port,
        };
    })
    .await;
    let user = app.register("squatted").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(
        &app,
        &user.access_token,
        &app_yaml("blocked", &image, 1, ""),
    )
    .await;
    let failure = |a: &Value| {
        a["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "ReplicaFailure")
            .cloned()
    };
    let reported = eventually(60, "the refusal in the status", || async {
        failure(&get(&app, &user.access_token, "blocked").await?)
    })
    .await;
    println!("reported: {reported}");
    assert_eq!(reported["status"], "True");
    assert_eq!(reported["reason"], "FailedCreate");
    assert!(!reported["message"].as_str().unwrap().is_empty());
    let a = get(&app, &user.access_token, "blocked").await.unwrap();
    assert_ne!(a["status"]["phase"], "Running");
    assert!(
        a["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("a replica could not be started"),
        "{a}"
    );

    // The port is free again: the retry succeeds and the condition goes.
    drop(squatter);
    let a = wait_for(&app, &user.access_token, "blocked", "Running", 1).await;
    assert!(failure(&a).is_none(), "{a}");
    eventually(10, "the app answers on the freed port", || {
        body_at(port, "/")
    })
    .await;
    app.stop().await;
}
