//! Builds from git on the real engine (issue 13): a push delivered to the webhook
//! ends with the new commit serving on every replica behind a health-gated rollout;
//! a bad commit is one rollback away. The repositories are real (a bare repository
//! over `file://`, which only admins may use), the images are built by the engine
//! `FROM` the local registry's test image.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::git::{Repo, borrowed, push_payload, sign, web_files};
use common::{InstanceContainers, Session, TestApp, docker, eventually, registry};

const ZERO: &str = "0000000000000000000000000000000000000000";

fn source_app(name: &str, url: &str, replicas: u32, extra: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  source: {{git: {{url: '{url}', branch: main}}}}\n  containerPort: 8080\n  replicas: {replicas}\n  terminationGracePeriodSeconds: 1\n  healthCheck: {{http: {{path: /healthz}}, periodSeconds: 1, failureThreshold: 2}}\n{extra}"
    )
}

/// The hook's URL and secret (created).
async fn webhook(app: &TestApp, token: &str, name: &str) -> (String, String) {
    let res = app
        .client
        .put(app.url(&format!("/api/applications/{name}/webhook")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let url = body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&app.url("/hooks/github/")), "{url}");
    assert!(!url.contains(name), "the URL names no app: {url}");
    (url, body["secret"].as_str().unwrap().to_owned())
}

/// Delivers `payload` as GitHub would; the status and answer.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    event: &str,
    delivery: &str,
    payload: &Value,
) -> (StatusCode, Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(secret) = secret {
        req = req.header("x-hub-signature-256", sign(secret, &body));
    }
    let res = req.body(body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn deployments(app: &TestApp, token: &str, name: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/api/applications/{name}/deployments"),
            Some(token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn revision(app: &TestApp, token: &str, name: &str, revision: i64) -> Value {
    let res = app
        .get(
            &format!("/api/applications/{name}/deployments/{revision}"),
            Some(token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// `POST …/redeploy`: the revision it queued.
async fn redeploy(app: &TestApp, token: &str, name: &str) -> i64 {
    let res = app
        .post(
            &format!("/api/applications/{name}/redeploy"),
            &json!({}),
            Some(token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    res.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap()
}

/// Waits for `rev` to end; panics with its build log unless it ends `status`.
async fn wait_revision(app: &TestApp, token: &str, name: &str, rev: i64, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let done = loop {
        let d = revision(app, token, name, rev).await;
        let s = d["status"].as_str().unwrap_or_default().to_owned();
        if ["succeeded", "failed", "cancelled", "superseded"].contains(&s.as_str()) {
            break d;
        }
        if std::time::Instant::now() > deadline {
            // What it was doing, to tell a slow build from a rollout nobody finished.
            let a = common::get_application(app, token, name).await;
            panic!("revision {rev} of {name} did not end in 240 s: {d}\napplication: {a:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if done["status"] != status {
        let log = app
            .get(
                &format!("/api/applications/{name}/deployments/{rev}/log"),
                Some(token),
            )
            .await
            .text()
            .await
            .unwrap();
        panic!("revision {rev} ended {done}, not {status}; build log:\n{log}");
    }
    done
}

/// What every replica's host port serves at `/`.
async fn pages(app: &TestApp, token: &str, name: &str) -> Vec<String> {
    let a = common::get_application(app, token, name).await.unwrap();
    let mut out = Vec::new();
    for port in a["status"]["hostPorts"].as_array().unwrap() {
        let text = match reqwest::get(format!("http://127.0.0.1:{port}/")).await {
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.push(text);
    }
    out
}

async fn wait_serving(app: &TestApp, token: &str, name: &str, page: &str, replicas: usize) {
    eventually(
        180,
        &format!("every replica of {name} serving {page:?}"),
        || async {
            let served = pages(app, token, name).await;
            (served.len() == replicas && served.iter().all(|p| p == page)).then_some(())
        },
    )
    .await;
}

struct Fixture {
    app: TestApp,
    admin: Session,
    repo: Repo,
    _containers: InstanceContainers,
}

async fn fixture() -> Fixture {
    let app = common::spawn_platform().await;
    let containers = InstanceContainers(app.instance.clone());
    let admin = app.admin("builder").await;
    Fixture {
        app,
        admin,
        repo: Repo::new(),
        _containers: containers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_builds_the_commit_and_rolls_it_out_with_no_moment_without_a_ready_replica() {
    let Fixture {
        app, admin, repo, ..
    } = fixture().await;
    let registry = registry();
    let token = &admin.access_token;
    let first = repo.commit("main", &borrowed(&web_files(&registry, "v1")), "first page");
    common::apply(&app, token, &source_app("web", &repo.url(), 2, "")).await;

    // The first build comes from the apply; the app waits for it, then serves it.
    let history = deployments(&app, token, "web").await;
    assert_eq!(history[0]["triggeredBy"], "create");
    wait_revision(&app, token, "web", 1, "succeeded").await;
    wait_serving(&app, token, "web", "v1", 2).await;
    let built = revision(&app, token, "web", 1).await;
    assert_eq!(built["commitSha"], first);
    assert_eq!(built["commitMessage"], "first page");
    assert_eq!(built["commitAuthor"], "Ada Lovelace <ada@example.com>");
    let image = built["image"].as_str().unwrap().to_owned();
    let uid = common::get_application(&app, token, "web").await.unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(image, format!("longin/{uid}:{}", &first[..12]));
    // Labelled with its installation, app, commit and revision; not `latest`.
    let labels = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &image,
    ]);
    let labels: Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["io.longin.app-uid"], uid);
    assert_eq!(labels["io.longin.commit"], first);
    assert_eq!(labels["io.longin.revision"], "1");
    assert_eq!(
        labels["io.longin.installation"],
        app.installation_id().await
    );
    let log = app
        .get("/api/applications/web/deployments/1/log", Some(token))
        .await
        .text()
        .await
        .unwrap();
    assert!(log.contains("Step 1/") && log.contains(" : FROM "), "{log}");

    // A push: 202 at once with the revision; the work happens after the answer.
    let (hook, secret) = webhook(&app, token, "web").await;
    let second = repo.commit("main", &[("index.html", "v2")], "second page");
    let payload = push_payload(
        &repo.url(),
        "refs/heads/main",
        &first,
        &second,
        "second page",
    );
    let started = std::time::Instant::now();
    let (status, answer) =
        deliver(&app.client, &hook, Some(&secret), "push", "d-1", &payload).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered in {:?}",
        started.elapsed()
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["result"], "queued");
    let rev = answer["revision"].as_i64().unwrap();

    // Throughout the rollout at least one replica is ready and answers.
    let watch = {
        let (app_url, client, token) = (app.url(""), app.client.clone(), token.clone());
        tokio::spawn(async move {
            let mut worst = u64::MAX;
            let deadline = std::time::Instant::now() + Duration::from_secs(240);
            while std::time::Instant::now() < deadline {
                let a: Value = client
                    .get(format!("{app_url}/api/applications/web"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                worst = worst.min(a["status"]["readyReplicas"].as_u64().unwrap_or(0));
                let generation = a["metadata"]["generation"].as_i64().unwrap_or(0);
                if a["status"]["phase"] == "Running"
                    && a["status"]["updatedReplicas"] == 2
                    && a["status"]["observedGeneration"] == generation
                    && generation > 2
                {
                    return worst;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the rollout did not finish");
        })
    };
    wait_revision(&app, token, "web", rev, "succeeded").await;
    assert!(watch.await.unwrap() >= 1, "a moment with no ready replica");
    wait_serving(&app, token, "web", "v2", 2).await;
    assert_eq!(revision(&app, token, "web", rev).await["commitSha"], second);

    // The same delivery again: no second revision.
    let (status, answer) =
        deliver(&app.client, &hook, Some(&secret), "push", "d-1", &payload).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], "duplicate");
    assert_eq!(answer["revision"], rev);
    assert_eq!(deployments(&app, token, "web").await[0]["revision"], rev);

    // Bad, missing or other-secret signatures: 401, and nothing queued.
    for signer in [None, Some("not the secret")] {
        let (status, _) = deliver(&app.client, &hook, signer, "push", "d-2", &payload).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Another branch, a tag, a deletion: ignored.
    let cases = [
        push_payload(&repo.url(), "refs/heads/feature", &second, &second, "x"),
        push_payload(&repo.url(), "refs/tags/v2", ZERO, &second, "x"),
        push_payload(&repo.url(), "refs/heads/main", &second, ZERO, "x"),
        push_payload(
            "https://github.com/acme/other.git",
            "refs/heads/main",
            &first,
            &second,
            "x",
        ),
    ];
    for (i, case) in cases.iter().enumerate() {
        let (status, answer) = deliver(
            &app.client,
            &hook,
            Some(&secret),
            "push",
            &format!("i-{i}"),
            case,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["result"], "ignored", "{answer}");
    }
    let (status, answer) = deliver(
        &app.client,
        &hook,
        Some(&secret),
        "ping",
        "p-1",
        &json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
    )
    .await;
    assert_eq!(
        (status, answer["result"].clone()),
        (StatusCode::OK, json!("pong"))
    );
    assert_eq!(deployments(&app, token, "web").await[0]["revision"], rev);
    // The hook lists what it received.
    let shown: Value = app
        .get("/api/applications/web/webhook", Some(token))
        .await
        .json()
        .await
        .unwrap();
    let results: Vec<&str> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert!(
        results.contains(&"queued") && results.contains(&"pong"),
        "{shown}"
    );
    assert!(shown.get("secret").is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_build_keeps_the_previous_revision_and_a_rollback_serves_the_old_commit() {
    let Fixture {
        app, admin, repo, ..
    } = fixture().await;
    let registry = registry();
    let token = &admin.access_token;
    repo.commit("main", &borrowed(&web_files(&registry, "v1")), "v1");
    common::apply(&app, token, &source_app("shop", &repo.url(), 1, "")).await;
    wait_revision(&app, token, "shop", 1, "succeeded").await;
    wait_serving(&app, token, "shop", "v1", 1).await;
    let generation =
        common::get_application(&app, token, "shop").await.unwrap()["metadata"]["generation"]
            .clone();

    // A commit that does not build: the previous revision keeps serving.
    repo.commit_dockerfile(
        &registry,
        "RUN echo the build breaks here && false\n",
        "broken",
    );
    let rev = redeploy(&app, token, "shop").await;
    let failed = wait_revision(&app, token, "shop", rev, "failed").await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("returned a non-zero code"),
        "{failed}"
    );
    let log = app
        .get(
            &format!("/api/applications/shop/deployments/{rev}/log"),
            Some(token),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(log.contains("the build breaks here"), "{log}");
    let a = common::get_application(&app, token, "shop").await.unwrap();
    assert_eq!(
        a["metadata"]["generation"], generation,
        "nothing rolled out"
    );
    assert_eq!(pages(&app, token, "shop").await, ["v1"]);

    // v2 builds and serves; rolling back serves v1 again, as a new revision.
    let files = web_files(&registry, "v2");
    repo.commit("main", &borrowed(&files), "v2");
    let rev2 = redeploy(&app, token, "shop").await;
    wait_revision(&app, token, "shop", rev2, "succeeded").await;
    wait_serving(&app, token, "shop", "v2", 1).await;
    let undo = app
        .post("/api/applications/shop/rollback", &json!({}), Some(token))
        .await;
    assert_eq!(undo.status(), StatusCode::ACCEPTED);
    let rev3 = undo.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap();
    let back = wait_revision(&app, token, "shop", rev3, "succeeded").await;
    assert_eq!(back["triggeredBy"], "rollback");
    assert_eq!(
        back["image"],
        revision(&app, token, "shop", 1).await["image"]
    );
    wait_serving(&app, token, "shop", "v1", 1).await;

    // Forward to v2 again after its image was deleted: rebuilt from its commit.
    let v2_image = revision(&app, token, "shop", rev2).await["image"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(60, "the v2 image removable", || async {
        std::process::Command::new("docker")
            .args(["rmi", &v2_image])
            .output()
            .unwrap()
            .status
            .success()
            .then_some(())
    })
    .await;
    let again = app
        .post(
            "/api/applications/shop/rollback",
            &json!({"revision": rev2}),
            Some(token),
        )
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let rev4 = again.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap();
    wait_revision(&app, token, "shop", rev4, "succeeded").await;
    wait_serving(&app, token, "shop", "v2", 1).await;
    let log = app
        .get(
            &format!("/api/applications/shop/deployments/{rev4}/log"),
            Some(token),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(log.contains("rebuilding it from its commit"), "{log}");

    // Rollback refusals: no such revision, a bad body.
    let missing = app
        .post(
            "/api/applications/shop/rollback",
            &json!({"revision": 999}),
            Some(token),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = app
        .post(
            "/api/applications/shop/rollback",
            &json!({"revision": "x"}),
            Some(token),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_quick_pushes_leave_the_newest_serving_and_a_cancel_stops_a_build() {
    let Fixture {
        app, admin, repo, ..
    } = fixture().await;
    let registry = registry();
    let token = &admin.access_token;
    let first = repo.commit("main", &borrowed(&web_files(&registry, "v1")), "v1");
    common::apply(&app, token, &source_app("blog", &repo.url(), 1, "")).await;
    wait_revision(&app, token, "blog", 1, "succeeded").await;
    let (hook, secret) = webhook(&app, token, "blog").await;

    let second = repo.commit("main", &[("index.html", "v2")], "v2");
    let third = repo.commit("main", &[("index.html", "v3")], "v3");
    let mut revisions = Vec::new();
    for (i, (before, after)) in [(&first, &second), (&second, &third)]
        .into_iter()
        .enumerate()
    {
        let payload = push_payload(&repo.url(), "refs/heads/main", before, after, "x");
        let (status, answer) = deliver(
            &app.client,
            &hook,
            Some(&secret),
            "push",
            &format!("q-{i}"),
            &payload,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        revisions.push(answer["revision"].as_i64().unwrap());
    }
    wait_revision(&app, token, "blog", revisions[1], "succeeded").await;
    let older = revision(&app, token, "blog", revisions[0]).await;
    assert!(
        ["superseded", "succeeded"].contains(&older["status"].as_str().unwrap()),
        "{older}"
    );
    wait_serving(&app, token, "blog", "v3", 1).await;

    // A build's log live over /ws/logs: each line once, in order, then its end.
    repo.commit(
        "main",
        &[(
            "Dockerfile",
            &format!(
                // The nonce keeps the engine's layer cache (from an earlier run) from
                // answering the step without running it.
                "FROM {registry}/longin/httpd:1.0\nRUN echo {} && for i in 1 2 3; do echo tick-$i; sleep 1; done\nCOPY index.html /www/index.html\n",
                uuid::Uuid::new_v4().simple()
            ),
        )],
        "ticks",
    );
    let rev = redeploy(&app, token, "blog").await;
    let mut ws = common::ws::WsClient::authenticated(&app, "/ws/logs", token).await;
    ws.send(json!({"type": "subscribe", "app": "blog", "revision": rev}))
        .await;
    ws.next_of_type("subscribed", 10).await;
    let mut lines = Vec::new();
    let end = loop {
        let m = ws.recv(120).await.expect("the build log stream");
        match m["type"].as_str() {
            Some("buildLog") => lines.push(m["line"].as_str().unwrap().to_owned()),
            Some("buildEnd") => break m,
            _ => {}
        }
    };
    assert_eq!(end["status"], "deploying", "{end}");
    let ticks: Vec<&String> = lines.iter().filter(|l| l.starts_with("tick-")).collect();
    assert_eq!(ticks, ["tick-1", "tick-2", "tick-3"], "{lines:#?}");
    wait_revision(&app, token, "blog", rev, "succeeded").await;
    // Someone else's revision is not theirs to read.
    let stranger = app.register("stranger").await;
    let mut other =
        common::ws::WsClient::authenticated(&app, "/ws/logs", &stranger.access_token).await;
    other
        .send(json!({"type": "subscribe", "app": "blog", "revision": rev}))
        .await;
    assert_eq!(other.next_of_type("error", 10).await["code"], "not_found");

    // A slow build, cancelled while it runs: the app keeps serving v3.
    repo.commit_dockerfile(
        &registry,
        &format!("RUN echo {} && sleep 60\n", uuid::Uuid::new_v4().simple()),
        "slow",
    );
    let rev = redeploy(&app, token, "blog").await;
    eventually(60, "the slow build running", || async {
        (revision(&app, token, "blog", rev).await["status"] == "building").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cancelled = app
        .post(
            &format!("/api/applications/blog/deployments/{rev}/cancel"),
            &json!({}),
            Some(token),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    wait_revision(&app, token, "blog", rev, "cancelled").await;
    // The engine's build stops too: no build step container is left sleeping.
    eventually(30, "the build's containers gone", || async {
        let running = docker(&["ps", "--no-trunc", "--format", "{{.Command}}"]);
        (!running.contains("sleep 60")).then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    let again = app
        .post(
            &format!("/api/applications/blog/deployments/{rev}/cancel"),
            &json!({}),
            Some(token),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(pages(&app, token, "blog").await, ["v3"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clean_up_keeps_the_images_of_the_newest_succeeded_revisions_only() {
    let app = common::spawn_platform_with(|args| args.keep_images = 2).await;
    let _containers = InstanceContainers(app.instance.clone());
    let admin = app.admin("keeper").await;
    let token = &admin.access_token;
    let repo = Repo::new();
    let registry = registry();
    repo.commit("main", &borrowed(&web_files(&registry, "p0")), "p0");
    common::apply(&app, token, &source_app("keep", &repo.url(), 1, "")).await;
    wait_revision(&app, token, "keep", 1, "succeeded").await;
    let mut images = vec![
        revision(&app, token, "keep", 1).await["image"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    for i in 1..4 {
        repo.commit(
            "main",
            &[("index.html", &format!("p{i}"))],
            &format!("p{i}"),
        );
        let rev = redeploy(&app, token, "keep").await;
        let done = wait_revision(&app, token, "keep", rev, "succeeded").await;
        images.push(done["image"].as_str().unwrap().to_owned());
    }
    // Another installation's image with our labels' names, and an unlabelled one:
    // never touched.
    let uid = common::get_application(&app, token, "keep").await.unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = format!("longin/{uid}:foreign00000");
    docker(&["tag", &format!("{registry}/longin/httpd:1.0"), &foreign]);
    // The clean-up after the last build, and after its rollout succeeded.
    repo.commit("main", &[("index.html", "p4")], "p4");
    let rev = redeploy(&app, token, "keep").await;
    wait_revision(&app, token, "keep", rev, "succeeded").await;
    images.push(
        revision(&app, token, "keep", rev).await["image"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let kept = eventually(60, "old images removed", || async {
        let present: Vec<String> = images
            .iter()
            .filter(|i| {
                std::process::Command::new("docker")
                    .args(["image", "inspect", i.as_str()])
                    .output()
                    .unwrap()
                    .status
                    .success()
            })
            .cloned()
            .collect();
        (present.len() <= 2).then_some(present)
    })
    .await;
    // The newest two succeeded ones (kept), and the running one among them.
    assert_eq!(
        kept,
        images[images.len() - 2..].to_vec(),
        "kept {kept:?} of {images:?}"
    );
    assert!(docker(&["image", "inspect", &foreign]).contains("Id"));
    docker(&["rmi", &foreign]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_build_from_the_servers_own_files_and_hooks_are_unguessable() {
    let app = common::spawn_platform().await;
    let user = app.register("tenant").await;
    let res = common::apply_yaml(
        &app,
        &user.access_token,
        &source_app("mine", "file:///etc/longin", 1, ""),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.source.git.url: "),
        "{body}"
    );
    for url in [
        "https://127.0.0.1/x.git",
        "https://169.254.169.254/x.git",
        "http://example.com/x.git",
    ] {
        let res =
            common::apply_yaml(&app, &user.access_token, &source_app("mine", url, 1, "")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{url}");
    }
    // A URL git would read as an option is refused for everyone.
    let admin = app.admin("root").await;
    let res = common::apply_yaml(
        &app,
        &admin.access_token,
        &source_app("evil", "--upload-pack=touch /tmp/x", 1, ""),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // An unknown hook id answers 404; a known one without its secret, 401.
    let (status, _) = deliver(
        &app.client,
        &app.url("/hooks/github/00000000000000000000000000000000"),
        Some("x"),
        "ping",
        "z",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    common::apply(
        &app,
        &user.access_token,
        &source_app("theirs", "https://github.com/acme/web.git", 0, ""),
    )
    .await;
    let (hook, secret) = webhook(&app, &user.access_token, "theirs").await;
    // Someone else's application has no hook to them.
    let other = app.register("other").await;
    let res = app
        .get(
            "/api/applications/theirs/webhook",
            Some(&other.access_token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Rotating keeps the URL and retires the old secret.
    let (rotated, new_secret) = webhook(&app, &user.access_token, "theirs").await;
    assert_eq!(rotated, hook);
    assert_ne!(new_secret, secret);
    let (status, _) = deliver(&app.client, &hook, Some(&secret), "ping", "r-1", &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = deliver(
        &app.client,
        &hook,
        Some(&new_secret),
        "ping",
        "r-2",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A form-encoded push is read as GitHub sends it.
    let payload = push_payload(
        "https://github.com/acme/web.git",
        "refs/heads/other",
        ZERO,
        &"a".repeat(40),
        "x",
    );
    let body = format!("payload={}", form_encode(&payload.to_string()));
    let res = app
        .client
        .post(&hook)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "push")
        .header("x-github-delivery", "f-1")
        .header("x-hub-signature-256", sign(&new_secret, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        (answer["result"].as_str(), answer["reason"].as_str()),
        (Some("ignored"), Some("other_branch"))
    );
    let removed = app
        .client
        .delete(app.url("/api/applications/theirs/webhook"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let (status, _) = deliver(
        &app.client,
        &hook,
        Some(&new_secret),
        "ping",
        "r-3",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_past_its_timeout_fails_and_auto_rollback_undoes_a_rollout_that_fails() {
    let app = common::spawn_platform_with(|args| {
        args.build_timeout = Duration::from_secs(20);
        args.progress_deadline_seconds = 20;
    })
    .await;
    let _containers = InstanceContainers(app.instance.clone());
    let admin = app.admin("careful").await;
    let token = &admin.access_token;
    let repo = Repo::new();
    let registry = registry();
    repo.commit("main", &borrowed(&web_files(&registry, "good")), "good");
    let doc = source_app("guarded", &repo.url(), 1, "  autoRollback: true\n");
    common::apply(&app, token, &doc).await;
    wait_revision(&app, token, "guarded", 1, "succeeded").await;
    wait_serving(&app, token, "guarded", "good", 1).await;
    let built = common::get_application(&app, token, "guarded")
        .await
        .unwrap();

    // Applying the same document (no image in it) keeps the built image; so does a
    // change of something else, and no build is queued for either.
    let again = common::apply(&app, token, &doc).await;
    assert_eq!(again["results"][0]["action"], "unchanged", "{again}");
    let scaled = common::apply(&app, token, &doc.replace("replicas: 1", "replicas: 2")).await;
    assert_eq!(
        scaled["results"][0]["application"]["spec"]["image"],
        built["spec"]["image"]
    );
    common::apply(&app, token, &doc).await;
    let history = deployments(&app, token, "guarded").await;
    assert!(
        history.iter().all(|d| d["status"] != "queued"),
        "{history:?}"
    );

    // A build that runs past --build-timeout fails; nothing rolls out.
    repo.commit_dockerfile(&registry, "RUN sleep 120\n", "too slow");
    let rev = redeploy(&app, token, "guarded").await;
    let timed_out = wait_revision(&app, token, "guarded", rev, "failed").await;
    assert!(
        timed_out["message"]
            .as_str()
            .unwrap()
            .contains("longer than 20 s"),
        "{timed_out}"
    );

    // A commit that builds but never gets ready: its rollout passes the deadline,
    // fails, and the app rolls back to the good revision by itself.
    repo.commit(
        "main",
        &borrowed(&[(
            "Dockerfile",
            format!("FROM {registry}/longin/httpd:1.0\nRUN rm /www/healthz\n"),
        )]),
        "no health",
    );
    let bad = redeploy(&app, token, "guarded").await;
    let failed = wait_revision(&app, token, "guarded", bad, "failed").await;
    assert!(
        failed["message"].as_str().unwrap().contains("deadline"),
        "{failed}"
    );
    let rollback = eventually(60, "an automatic rollback", || async {
        deployments(&app, token, "guarded")
            .await
            .into_iter()
            .find(|d| d["triggeredBy"] == "rollback")
    })
    .await;
    let rev = rollback["revision"].as_i64().unwrap();
    let back = wait_revision(&app, token, "guarded", rev, "succeeded").await;
    assert_eq!(back["image"], built["spec"]["image"]);
    wait_serving(&app, token, "guarded", "good", 1).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_for_an_app_without_source_pulls_again_and_rolls_out_only_a_changed_image() {
    let app = common::spawn_platform().await;
    let _containers = InstanceContainers(app.instance.clone());
    let user = app.register("pusher").await;
    let token = &user.access_token;
    let registry = registry();
    let tag = format!(
        "{registry}/longin/pushed-{}:live",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    docker(&["tag", &format!("{registry}/longin/httpd:1.0"), &tag]);
    docker(&["push", &tag]);
    let doc = common::app_yaml(
        "pulled",
        &tag,
        1,
        "  healthCheck: {http: {path: /healthz}, periodSeconds: 1}\n",
    );
    common::apply(&app, token, &doc).await;
    common::wait_for(&app, token, "pulled", "Running", 1).await;
    let (hook, secret) = webhook(&app, token, "pulled").await;
    let some = "b".repeat(40);
    let payload = push_payload(
        "https://github.com/acme/site.git",
        "refs/heads/main",
        ZERO,
        &some,
        "x",
    );

    // The image is the same: nothing rolls out.
    let (status, answer) =
        deliver(&app.client, &hook, Some(&secret), "push", "s-1", &payload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let rev = answer["revision"].as_i64().unwrap();
    let same = wait_revision(&app, token, "pulled", rev, "succeeded").await;
    assert!(
        same["message"].as_str().unwrap().contains("unchanged"),
        "{same}"
    );
    let generation = common::get_application(&app, token, "pulled")
        .await
        .unwrap()["metadata"]["generation"]
        .clone();

    // The user's CI pushed a new image under the tag (from elsewhere: this engine's
    // copy of the tag still names the old one): the next push rolls it out.
    docker(&["tag", &format!("{registry}/longin/httpd:2.0"), &tag]);
    docker(&["push", &tag]);
    docker(&["tag", &format!("{registry}/longin/httpd:1.0"), &tag]);
    let (_, answer) = deliver(&app.client, &hook, Some(&secret), "push", "s-2", &payload).await;
    let rev = answer["revision"].as_i64().unwrap();
    wait_revision(&app, token, "pulled", rev, "succeeded").await;
    let a = common::get_application(&app, token, "pulled")
        .await
        .unwrap();
    assert_ne!(a["metadata"]["generation"], generation);
    wait_serving(&app, token, "pulled", "longin httpd 2.0", 1).await;
    app.stop().await;
    let _ = std::process::Command::new("docker")
        .args(["rmi", &tag])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_repository_over_http_builds_with_its_token_which_is_never_written_down() {
    use common::git::GitHttpServer;
    let Fixture {
        app, admin, repo, ..
    } = fixture().await;
    let registry = registry();
    let token = &admin.access_token;
    const SECRET_TOKEN: &str = "ghp_s3cretTokenForTheTest0123456789";
    repo.commit(
        "main",
        &borrowed(&web_files(&registry, "private")),
        "private",
    );
    let server = GitHttpServer::start(&repo.root(), Some(SECRET_TOKEN)).await;
    let url = format!("{}/web.git", server.base);
    common::apply(&app, token, &source_app("secret", &url, 1, "")).await;

    // Without the token the forge refuses, and the build says why.
    let refused = wait_revision(&app, token, "secret", 1, "failed").await;
    assert!(server.refused.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(
        refused["message"].as_str().unwrap().contains("fetch"),
        "{refused}"
    );

    let set = app
        .client
        .put(app.url("/api/applications/secret/credentials/token"))
        .bearer_auth(token)
        .json(&json!({"token": SECRET_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let shown: Value = app
        .get("/api/applications/secret/credentials", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown, json!({"token": true, "deployKey": null}));
    let rev = redeploy(&app, token, "secret").await;
    wait_revision(&app, token, "secret", rev, "succeeded").await;
    wait_serving(&app, token, "secret", "private", 1).await;

    // The token is in no file of the data dir (the mirror's config included), no
    // build log, no revision, no answer.
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", SECRET_TOKEN])
        .arg(app.data_dir.path())
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&grep.stdout);
    let leaked: Vec<&str> = files
        .lines()
        .filter(|f| !f.ends_with(".db") && !f.contains(".db-"))
        .collect();
    assert!(leaked.is_empty(), "the token is in {leaked:?}");
    for rev in 1..=rev {
        let log = app
            .get(
                &format!("/api/applications/secret/deployments/{rev}/log"),
                Some(token),
            )
            .await
            .text()
            .await
            .unwrap();
        assert!(!log.contains(SECRET_TOKEN));
        let d = revision(&app, token, "secret", rev).await;
        assert!(!d.to_string().contains(SECRET_TOKEN));
    }
    // Sealed in the database too.
    let db = std::fs::read(app.data_dir.path().join("longin.db")).unwrap_or_default();
    assert!(
        !db.windows(SECRET_TOKEN.len())
            .any(|w| w == SECRET_TOKEN.as_bytes())
    );

    // A deploy key: generated here, only its public half shown, to its owner only.
    let key: Value = app
        .post(
            "/api/applications/secret/credentials/deploy-key",
            &json!({}),
            Some(token),
        )
        .await
        .json()
        .await
        .unwrap();
    let public = key["deployKey"].as_str().unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(!key.to_string().contains("PRIVATE"));
    let shown: Value = app
        .get("/api/applications/secret/credentials", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["deployKey"], public);
    let stranger = app.register("stranger").await;
    let res = app
        .get(
            "/api/applications/secret/credentials",
            Some(&stranger.access_token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let bad = app
        .client
        .put(app.url("/api/applications/secret/credentials/token"))
        .bearer_auth(token)
        .json(&json!({"token": "has space"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_repository_over_ssh_builds_with_the_deploy_key_longin_made() {
    use common::git::Sshd;
    let Fixture {
        app, admin, repo, ..
    } = fixture().await;
    let registry = registry();
    let token = &admin.access_token;
    repo.commit("main", &borrowed(&web_files(&registry, "over ssh")), "ssh");
    // The app first: its deploy key is made for it. Its first build finds no server.
    let port = Sshd::free_port();
    let url = format!("ssh://root@127.0.0.1:{port}{}", repo.bare.display());
    common::apply(&app, token, &source_app("tunnel", &url, 1, "")).await;
    let key: Value = app
        .post(
            "/api/applications/tunnel/credentials/deploy-key",
            &json!({}),
            Some(token),
        )
        .await
        .json()
        .await
        .unwrap();
    wait_revision(&app, token, "tunnel", 1, "failed").await;
    let _sshd = Sshd::start(port, key["deployKey"].as_str().unwrap()).await;
    let rev = redeploy(&app, token, "tunnel").await;
    wait_revision(&app, token, "tunnel", rev, "succeeded").await;
    wait_serving(&app, token, "tunnel", "over ssh", 1).await;

    // A new key that the server does not know: the fetch is refused.
    app.post(
        "/api/applications/tunnel/credentials/deploy-key",
        &json!({}),
        Some(token),
    )
    .await;
    let rev = redeploy(&app, token, "tunnel").await;
    let refused = wait_revision(&app, token, "tunnel", rev, "failed").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{refused}"
    );
    // No key file is left behind once builds end.
    let keys = app.data_dir.path().join("git/keys");
    let left: Vec<_> = std::fs::read_dir(&keys)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(pages(&app, token, "tunnel").await, ["over ssh"]);
    app.stop().await;
}
