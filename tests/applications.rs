//! Application resources over real HTTP: apply, validation, the port pool, ownership.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestApp, apply_yaml, error_code, spawn_app, spawn_app_with};

const HELLO: &str = r"
apiVersion: longin.io/v1
kind: Application
metadata:
  name: hello
  labels: {team: web}
spec:
  image: 127.0.0.1:5000/demo/hello:1.0
  command: [/bin/busybox]
  args: [httpd, -f, -p, '8080', -h, /www]
  containerPort: 8080
  replicas: 2
  env:
    - {name: GREETING, value: hi}
  healthCheck:
    http: {path: /healthz}
";

async fn apply_ok(app: &TestApp, token: &str, yaml: &str) -> Vec<Value> {
    let res = apply_yaml(app, token, yaml).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array().unwrap().clone()
}

fn doc(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec: {{image: 'busybox:1.36', containerPort: 8080, replicas: {replicas}}}\n"
    )
}

fn ports(application: &Value) -> Vec<u64> {
    application["status"]["hostPorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn apply_creates_with_defaults_generation_and_host_ports() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let results = apply_ok(&app, &user.access_token, HELLO).await;
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(
        (
            r["name"].as_str(),
            r["action"].as_str(),
            r["unchanged"].as_bool()
        ),
        (Some("hello"), Some("created"), Some(false))
    );
    let a = &r["application"];
    assert_eq!(a["apiVersion"], "longin.io/v1");
    assert_eq!(a["metadata"]["generation"], 1);
    // One installation-wide counter, as Kubernetes': a number, opaque to clients.
    assert!(
        a["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "{a}"
    );
    assert_eq!(a["metadata"]["owner"], "alice");
    assert!(a["metadata"]["uid"].is_string() && a["metadata"]["creationTimestamp"].is_string());
    assert_eq!(
        a["spec"]["resources"],
        json!({"memory": "512Mi", "cpu": "1"})
    );
    assert_eq!(a["spec"]["restartPolicy"], "Always");
    assert_eq!(a["spec"]["terminationGracePeriodSeconds"], 10);
    assert_eq!(a["spec"]["healthCheck"]["periodSeconds"], 10);
    assert_eq!(a["status"]["phase"], "Pending");
    let ports = ports(a);
    assert_eq!(ports.len(), 2);
    assert!(ports.iter().all(|p| (3100..=4000).contains(p)), "{ports:?}");
    assert_ne!(ports[0], ports[1]);
    app.stop().await;
}

/// An apply result's resourceVersion, as the number it is.
fn version(result: &Value) -> u64 {
    result["application"]["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a numeric resourceVersion")
}

#[tokio::test]
async fn reapplying_the_same_document_changes_nothing_and_says_so() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let first = apply_ok(&app, &user.access_token, HELLO).await;
    let again = apply_ok(&app, &user.access_token, HELLO).await;
    assert_eq!(again[0]["action"], "unchanged");
    assert_eq!(again[0]["unchanged"], true);
    assert_eq!(again[0]["application"], first[0]["application"]);

    // A changed spec is a new generation; only labels, a new resourceVersion only.
    let scaled = apply_ok(
        &app,
        &user.access_token,
        &HELLO.replace("replicas: 2", "replicas: 3"),
    )
    .await;
    assert_eq!(scaled[0]["action"], "configured");
    assert_eq!(scaled[0]["application"]["metadata"]["generation"], 2);
    assert!(version(&scaled[0]) > version(&first[0]));
    assert_eq!(ports(&scaled[0]["application"]).len(), 3);
    assert_eq!(
        ports(&scaled[0]["application"])[..2],
        ports(&first[0]["application"])[..],
        "kept ports"
    );
    let relabelled = apply_ok(
        &app,
        &user.access_token,
        &HELLO
            .replace("replicas: 2", "replicas: 3")
            .replace("team: web", "team: api"),
    )
    .await;
    assert_eq!(relabelled[0]["application"]["metadata"]["generation"], 2);
    assert!(version(&relabelled[0]) > version(&scaled[0]));
    app.stop().await;
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let first = apply_ok(&app, &user.access_token, HELLO).await;
    let second = apply_ok(
        &app,
        &user.access_token,
        &HELLO.replace("replicas: 2", "replicas: 1"),
    )
    .await;
    let with_version = |v: u64| {
        HELLO.replace(
            "  name: hello\n",
            &format!("  name: hello\n  resourceVersion: '{v}'\n"),
        )
    };
    let stale = with_version(version(&first[0]));
    let (status, body) = error_code(apply_yaml(&app, &user.access_token, &stale).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "stale_resource_version");
    let current = with_version(version(&second[0])).replace("replicas: 2", "replicas: 3");
    let ok = apply_ok(&app, &user.access_token, &current).await;
    assert!(version(&ok[0]) > version(&second[0]));
    app.stop().await;
}

#[tokio::test]
async fn multi_document_apply_is_all_or_nothing() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let results = apply_ok(
        &app,
        &user.access_token,
        &format!("{}---\n{}", doc("one", 1), doc("two", 2)),
    )
    .await;
    assert_eq!(
        results
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["one", "two"]
    );

    let bad = format!(
        "{}---\n{}",
        doc("three", 1),
        doc("four", 1).replace("replicas: 1", "replicas: 99")
    );
    let (status, body) = error_code(apply_yaml(&app, &user.access_token, &bad).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["fields"]["[1].spec.replicas"].is_string(),
        "{body}"
    );
    assert_eq!(
        app.get("/api/applications/three", Some(&user.access_token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A name given twice takes its last document, as applying them in turn would.
    let results = apply_ok(
        &app,
        &user.access_token,
        &format!("{}---\n{}", doc("dup", 1), doc("dup", 2)),
    )
    .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["application"]["spec"]["replicas"], 2);
    app.stop().await;
}

#[tokio::test]
async fn malformed_yaml_reports_line_and_column() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let broken =
        "apiVersion: longin.io/v1\nkind: Application\nmetadata:\n  name: [oops\nspec: {}\n";
    let (status, body) = error_code(apply_yaml(&app, &user.access_token, broken).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "malformed_yaml");
    assert!(body["error"]["line"].as_u64().unwrap() >= 4, "{body}");
    assert!(body["error"]["column"].is_u64());
    assert!(body["error"]["message"].as_str().unwrap().contains("line"));

    let res = app
        .client
        .put(app.url("/api/applications/apply"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body("{\n \"apiVersion\": }")
        .send()
        .await
        .unwrap();
    let (status, body) = error_code(res).await;
    assert_eq!(
        (status, body["error"]["line"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(2))
    );

    let res = app
        .client
        .put(app.url("/api/applications/apply"))
        .bearer_auth(&user.access_token)
        .header("content-type", "text/plain")
        .body(HELLO)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.stop().await;
}

/// Each case: a change to a valid document, and the path its 400 must name.
/// (what is wrong, how to break a valid document that way, the path the 400 names)
type BadCase = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);

fn bad_documents() -> Vec<BadCase> {
    fn set(path: &'static [&'static str], value: Value) -> Box<dyn Fn(&mut Value)> {
        Box::new(move |doc: &mut Value| {
            let mut target = doc;
            for key in &path[..path.len() - 1] {
                target = &mut target[*key];
            }
            target[path[path.len() - 1]] = value.clone();
        })
    }
    fn remove(path: &'static [&'static str]) -> Box<dyn Fn(&mut Value)> {
        Box::new(move |doc: &mut Value| {
            let mut target = doc;
            for key in &path[..path.len() - 1] {
                target = &mut target[*key];
            }
            target.as_object_mut().unwrap().remove(path[path.len() - 1]);
        })
    }
    vec![
        (
            "wrong apiVersion",
            set(&["apiVersion"], json!("v1")),
            "apiVersion",
        ),
        ("apiVersion missing", remove(&["apiVersion"]), "apiVersion"),
        ("wrong kind", set(&["kind"], json!("Deployment")), "kind"),
        ("kind not a string", set(&["kind"], json!(3)), "kind"),
        (
            "unknown top-level field",
            set(&["specs"], json!({})),
            "specs",
        ),
        ("metadata missing", remove(&["metadata"]), "metadata"),
        (
            "metadata not a mapping",
            set(&["metadata"], json!("hello")),
            "metadata",
        ),
        (
            "name missing",
            remove(&["metadata", "name"]),
            "metadata.name",
        ),
        (
            "name upper case",
            set(&["metadata", "name"], json!("Hello")),
            "metadata.name",
        ),
        (
            "name underscore",
            set(&["metadata", "name"], json!("my_app")),
            "metadata.name",
        ),
        (
            "name too long",
            set(&["metadata", "name"], json!("a".repeat(64))),
            "metadata.name",
        ),
        (
            "name ends with dash",
            set(&["metadata", "name"], json!("web-")),
            "metadata.name",
        ),
        (
            "name empty",
            set(&["metadata", "name"], json!("")),
            "metadata.name",
        ),
        (
            "name a number",
            set(&["metadata", "name"], json!(5)),
            "metadata.name",
        ),
        (
            "unknown metadata field",
            set(&["metadata", "namespace"], json!("x")),
            "metadata.namespace",
        ),
        (
            "label value a number",
            set(&["metadata", "labels"], json!({"tier": 1})),
            "metadata.labels.tier",
        ),
        (
            "label value with spaces",
            set(&["metadata", "labels"], json!({"tier": "a b"})),
            "metadata.labels.tier",
        ),
        (
            "label key invalid",
            set(&["metadata", "labels"], json!({"-bad": "x"})),
            "metadata.labels.-bad",
        ),
        (
            "labels a list",
            set(&["metadata", "labels"], json!(["a"])),
            "metadata.labels",
        ),
        (
            "annotation value a list",
            set(&["metadata", "annotations"], json!({"note": []})),
            "metadata.annotations.note",
        ),
        (
            "resourceVersion garbage",
            set(&["metadata", "resourceVersion"], json!("abc")),
            "metadata.resourceVersion",
        ),
        ("spec missing", remove(&["spec"]), "spec"),
        ("spec a list", set(&["spec"], json!([])), "spec"),
        (
            "typo replica",
            set(&["spec", "replica"], json!(2)),
            "spec.replica",
        ),
        (
            "typo image_name",
            set(&["spec", "imageName"], json!("x")),
            "spec.imageName",
        ),
        ("image missing", remove(&["spec", "image"]), "spec.image"),
        (
            "image upper case",
            set(&["spec", "image"], json!("Busybox")),
            "spec.image",
        ),
        (
            "image empty tag",
            set(&["spec", "image"], json!("busybox:")),
            "spec.image",
        ),
        (
            "image bad digest",
            set(&["spec", "image"], json!("busybox@sha256:123")),
            "spec.image",
        ),
        (
            "image spaces",
            set(&["spec", "image"], json!("busy box")),
            "spec.image",
        ),
        (
            "image a number",
            set(&["spec", "image"], json!(1)),
            "spec.image",
        ),
        (
            "command a string",
            set(&["spec", "command"], json!("/bin/sh")),
            "spec.command",
        ),
        (
            "args with a number",
            set(&["spec", "args"], json!(["-p", 8080])),
            "spec.args[1]",
        ),
        (
            "containerPort missing",
            remove(&["spec", "containerPort"]),
            "spec.containerPort",
        ),
        (
            "containerPort zero",
            set(&["spec", "containerPort"], json!(0)),
            "spec.containerPort",
        ),
        (
            "containerPort too big",
            set(&["spec", "containerPort"], json!(65536)),
            "spec.containerPort",
        ),
        (
            "containerPort a string",
            set(&["spec", "containerPort"], json!("http")),
            "spec.containerPort",
        ),
        (
            "containerPort fractional",
            set(&["spec", "containerPort"], json!(80.5)),
            "spec.containerPort",
        ),
        (
            "replicas negative",
            set(&["spec", "replicas"], json!(-1)),
            "spec.replicas",
        ),
        (
            "replicas too many",
            set(&["spec", "replicas"], json!(21)),
            "spec.replicas",
        ),
        (
            "replicas a string",
            set(&["spec", "replicas"], json!("2")),
            "spec.replicas",
        ),
        (
            "env a mapping",
            set(&["spec", "env"], json!({"A": "1"})),
            "spec.env",
        ),
        (
            "env name invalid",
            set(&["spec", "env"], json!([{"name": "1A", "value": "x"}])),
            "spec.env[0].name",
        ),
        (
            "env name with dash",
            set(&["spec", "env"], json!([{"name": "MY-VAR", "value": "x"}])),
            "spec.env[0].name",
        ),
        (
            "env name missing",
            set(&["spec", "env"], json!([{"value": "x"}])),
            "spec.env[0].name",
        ),
        (
            "env value a number",
            set(&["spec", "env"], json!([{"name": "PORT", "value": 80}])),
            "spec.env[0].value",
        ),
        (
            "env value missing",
            set(&["spec", "env"], json!([{"name": "PORT"}])),
            "spec.env[0].value",
        ),
        (
            "env unknown field",
            set(&["spec", "env"], json!([{"name": "A", "valu": "1"}])),
            "spec.env[0].valu",
        ),
        (
            "env secret not bool",
            set(
                &["spec", "env"],
                json!([{"name": "A", "value": "1", "secret": "yes"}]),
            ),
            "spec.env[0].secret",
        ),
        (
            "memory unparsable",
            set(&["spec", "resources"], json!({"memory": "lots"})),
            "spec.resources.memory",
        ),
        (
            "memory too small",
            set(&["spec", "resources"], json!({"memory": "1Mi"})),
            "spec.resources.memory",
        ),
        (
            "memory too big",
            set(&["spec", "resources"], json!({"memory": "65Gi"})),
            "spec.resources.memory",
        ),
        (
            "memory bad suffix",
            set(&["spec", "resources"], json!({"memory": "512MB"})),
            "spec.resources.memory",
        ),
        (
            "cpu zero",
            set(&["spec", "resources"], json!({"cpu": "0"})),
            "spec.resources.cpu",
        ),
        (
            "cpu negative",
            set(&["spec", "resources"], json!({"cpu": -1})),
            "spec.resources.cpu",
        ),
        (
            "cpu unparsable",
            set(&["spec", "resources"], json!({"cpu": "fast"})),
            "spec.resources.cpu",
        ),
        (
            "resources unknown",
            set(&["spec", "resources"], json!({"gpu": 1})),
            "spec.resources.gpu",
        ),
        (
            "probe path relative",
            set(
                &["spec", "healthCheck"],
                json!({"http": {"path": "healthz"}}),
            ),
            "spec.healthCheck.http.path",
        ),
        (
            "probe path missing",
            set(&["spec", "healthCheck"], json!({"http": {}})),
            "spec.healthCheck.http.path",
        ),
        (
            "probe both kinds",
            set(
                &["spec", "healthCheck"],
                json!({"http": {"path": "/"}, "tcp": {}}),
            ),
            "spec.healthCheck",
        ),
        (
            "probe no kind",
            set(&["spec", "healthCheck"], json!({"periodSeconds": 5})),
            "spec.healthCheck",
        ),
        (
            "probe period zero",
            set(
                &["spec", "healthCheck"],
                json!({"tcp": {}, "periodSeconds": 0}),
            ),
            "spec.healthCheck.periodSeconds",
        ),
        (
            "probe threshold huge",
            set(
                &["spec", "healthCheck"],
                json!({"tcp": {}, "failureThreshold": 1000}),
            ),
            "spec.healthCheck.failureThreshold",
        ),
        (
            "probe tcp with fields",
            set(&["spec", "healthCheck"], json!({"tcp": {"port": 1}})),
            "spec.healthCheck.tcp.port",
        ),
        (
            "restartPolicy unknown",
            set(&["spec", "restartPolicy"], json!("Sometimes")),
            "spec.restartPolicy",
        ),
        (
            "restartPolicy lower case",
            set(&["spec", "restartPolicy"], json!("always")),
            "spec.restartPolicy",
        ),
        (
            "grace period negative",
            set(&["spec", "terminationGracePeriodSeconds"], json!(-5)),
            "spec.terminationGracePeriodSeconds",
        ),
        (
            "grace period huge",
            set(&["spec", "terminationGracePeriodSeconds"], json!(100_000)),
            "spec.terminationGracePeriodSeconds",
        ),
    ]
}

#[tokio::test]
async fn every_bad_document_gets_a_400_naming_its_path_and_changes_nothing() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let valid = json!({
        "apiVersion": "longin.io/v1",
        "kind": "Application",
        "metadata": {"name": "probe-target"},
        "spec": {"image": "busybox:1.36", "containerPort": 8080},
    });
    let cases = bad_documents();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (what, mutate, path) in &cases {
        let mut doc = valid.clone();
        mutate(&mut doc);
        let res = app
            .client
            .put(app.url("/api/applications/apply"))
            .bearer_auth(&user.access_token)
            .json(&doc)
            .send()
            .await
            .unwrap();
        let (status, body) = error_code(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(
            body["error"]["fields"][*path].is_string(),
            "{what}: expected {path} in {body}"
        );
    }
    let list: Value = app
        .get("/api/applications", Some(&user.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]), "nothing was created");
    assert!(
        app.get("/api/applications", Some(&user.access_token))
            .await
            .status()
            .is_success()
    );
    app.stop().await;
}

#[tokio::test]
async fn three_hundred_concurrent_applies_get_distinct_ports() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for c in 0..30 {
        clients.push(app.register(&format!("client-{c}")).await);
    }
    let tasks = clients.iter().enumerate().map(|(c, session)| {
        let app = &app;
        async move {
            let mut ports = Vec::new();
            for i in 0..10 {
                let results =
                    apply_ok(app, &session.access_token, &doc(&format!("app-{c}-{i}"), 1)).await;
                ports.extend(self::ports(&results[0]["application"]));
            }
            ports
        }
    });
    let ports: Vec<u64> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ports.len(), 300);
    let distinct: HashSet<u64> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), 300, "every replica has its own port");
    assert!(ports.iter().all(|p| (3100..=4000).contains(p)));
    app.stop().await;
}

#[tokio::test]
async fn exhausted_pool_refuses_the_apply_and_creates_nothing() {
    let app = spawn_app_with(|config| {
        config.port_range = longin_store::applications::PortRange {
            first: 3200,
            last: 3204,
        };
    })
    .await;
    let user = app.register("alice").await;
    apply_ok(&app, &user.access_token, &doc("first", 3)).await;
    let (status, body) =
        error_code(apply_yaml(&app, &user.access_token, &doc("second", 3)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "port_pool_exhausted");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3200-3204"),
        "{body}"
    );
    assert_eq!(
        app.get("/api/applications/second", Some(&user.access_token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A multi-document apply that runs out half-way leaves no trace either.
    let both = format!("{}---\n{}", doc("third", 1), doc("fourth", 2));
    assert_eq!(
        error_code(apply_yaml(&app, &user.access_token, &both).await)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.get("/api/applications/third", Some(&user.access_token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Scaling up past the pool fails and keeps the old state.
    let (status, _) =
        error_code(apply_yaml(&app, &user.access_token, &doc("first", 6)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let first: Value = app
        .get("/api/applications/first", Some(&user.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["spec"]["replicas"], 3);
    assert_eq!(ports(&first).len(), 3);

    // Ports come back when replicas go away.
    apply_ok(&app, &user.access_token, &doc("first", 1)).await;
    let second = apply_ok(&app, &user.access_token, &doc("second", 4)).await;
    assert_eq!(ports(&second[0]["application"]).len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn users_only_see_their_own_applications() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    apply_ok(&app, &alice.access_token, HELLO).await;

    for (method, path) in [
        ("GET", "/api/applications/hello"),
        ("DELETE", "/api/applications/hello"),
        ("POST", "/api/applications/hello/stop"),
        ("POST", "/api/applications/hello/start"),
        ("POST", "/api/applications/hello/restart"),
    ] {
        let res = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&bob.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(res).await.0,
            StatusCode::NOT_FOUND,
            "{method} {path}"
        );
    }
    let list: Value = app
        .get("/api/applications", Some(&bob.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
    let res = app
        .get("/api/applications?owner=alice", Some(&bob.access_token))
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::FORBIDDEN);

    // The same name is free for another owner.
    let bobs = apply_ok(&app, &bob.access_token, HELLO).await;
    assert_eq!(bobs[0]["action"], "created");

    let admin = app.admin("root").await;
    let all: Value = app
        .get("/api/applications", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    let owners: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["metadata"]["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["alice", "bob"]);
    let alices: Value = app
        .get(
            "/api/applications/hello?owner=alice",
            Some(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alices["metadata"]["owner"], "alice");
    // The untouched application is still alice's and still there.
    let res = app
        .get("/api/applications/hello", Some(&alice.access_token))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn get_answers_yaml_when_asked() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    apply_ok(&app, &user.access_token, HELLO).await;
    let res = app
        .client
        .get(app.url("/api/applications/hello"))
        .bearer_auth(&user.access_token)
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/yaml");
    let text = res.text().await.unwrap();
    assert!(
        text.contains("kind: Application") && text.contains("hostPorts:"),
        "{text}"
    );
    // What GET returns re-applies unchanged.
    let again = apply_ok(&app, &user.access_token, &text).await;
    assert_eq!(again[0]["unchanged"], true);
    app.stop().await;
}

#[tokio::test]
async fn secret_env_values_are_never_returned_and_survive_reapply() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let yaml = HELLO.replace(
        "- {name: GREETING, value: hi}",
        "- {name: GREETING, value: hi}\n    - {name: API_KEY, value: s3cr3t-value, secret: true}",
    );
    let results = apply_ok(&app, &user.access_token, &yaml).await;
    assert!(!results[0].to_string().contains("s3cr3t-value"));
    let res = app
        .client
        .get(app.url("/api/applications/hello"))
        .bearer_auth(&user.access_token)
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(!text.contains("s3cr3t-value"), "{text}");
    assert!(text.contains("API_KEY"));
    assert_eq!(
        apply_ok(&app, &user.access_token, &text).await[0]["unchanged"],
        true
    );
    // The value itself is kept for the controller (sealed: it opens with the key).
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap()
        .with_sealer(longin_store::secrets::Sealer::new(
            app.secrets_key.as_bytes(),
        ));
    let record = store.list_applications(None).await.unwrap().remove(0);
    assert_eq!(record.spec.env[1].value.as_deref(), Some("s3cr3t-value"));
    store.close().await;
    // A new secret without a value is refused: a conflict with what is stored (none).
    let missing = doc("other", 1).replace(
        "replicas: 1}",
        "replicas: 1, env: [{name: TOKEN, secret: true}]}",
    );
    let (status, body) = error_code(apply_yaml(&app, &user.access_token, &missing).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "missing_secret");
    app.stop().await;
}

#[tokio::test]
async fn stop_start_and_restart() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    apply_ok(&app, &user.access_token, HELLO).await;
    let stopped: Value = app
        .post(
            "/api/applications/hello/stop",
            &json!({}),
            Some(&user.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["spec"]["replicas"], 0);
    assert_eq!(stopped["status"]["phase"], "Stopped");
    assert_eq!(ports(&stopped), Vec::<u64>::new());
    assert_eq!(
        stopped["metadata"]["annotations"]["longin.io/previousReplicas"],
        "2"
    );
    assert_eq!(stopped["metadata"]["generation"], 2);

    let started: Value = app
        .post(
            "/api/applications/hello/start",
            &json!({}),
            Some(&user.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(started["spec"]["replicas"], 2);
    assert_eq!(ports(&started).len(), 2);
    assert!(
        started["metadata"]["annotations"]
            .get("longin.io/previousReplicas")
            .is_none()
    );

    let restarted: Value = app
        .post(
            "/api/applications/hello/restart",
            &json!({}),
            Some(&user.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(restarted["metadata"]["generation"], 4);
    assert!(restarted["metadata"]["annotations"]["longin.io/restartedAt"].is_string());
    // Server annotations survive a re-apply of the user's document.
    let reapplied = apply_ok(&app, &user.access_token, HELLO).await;
    assert_eq!(reapplied[0]["unchanged"], true);
    app.stop().await;
}

#[tokio::test]
async fn delete_removes_an_application_that_never_ran_and_frees_its_ports() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    apply_ok(&app, &user.access_token, HELLO).await;
    let res = app
        .client
        .delete(app.url("/api/applications/hello"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "Deleted");
    assert_eq!(
        app.get("/api/applications/hello", Some(&user.access_token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap();
    assert_eq!(store.allocated_ports().await.unwrap(), Vec::<u16>::new());
    store.close().await;
    app.stop().await;
}

#[tokio::test]
async fn post_creates_once_from_json() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let body = json!({"apiVersion": "longin.io/v1", "kind": "Application", "metadata": {"name": "api"}, "spec": {"image": "busybox", "containerPort": 80}});
    let res = app
        .post("/api/applications", &body, Some(&user.access_token))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (status, err) = error_code(
        app.post("/api/applications", &body, Some(&user.access_token))
            .await,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let res = app
        .client
        .post(app.url("/api/applications"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/yaml")
        .body(HELLO)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        app.get("/api/applications", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn examples_apply_cleanly() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let results = apply_ok(
                &app,
                &user.access_token,
                &std::fs::read_to_string(&path).unwrap(),
            )
            .await;
            names.push(results[0]["name"].as_str().unwrap().to_owned());
        }
    }
    names.sort();
    assert_eq!(names, ["api", "greeter", "site"]);
    app.stop().await;
}

#[tokio::test]
async fn syncing_containers_releases_ports_by_the_stored_replica_count() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let token = &user.access_token;
    apply_ok(&app, token, HELLO).await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap();
    let id = store.list_applications(None).await.unwrap().remove(0).id;
    let ports = store.host_ports(&id, 2).await.unwrap();
    assert_eq!(ports.len(), 2);
    let running = |replica: u16| longin_store::status::ObservedContainer {
        docker_id: format!("c{replica}"),
        replica_index: i64::from(replica),
        host_port: i64::from(ports[usize::from(replica)]),
        spec_hash: "h".to_owned(),
        status: "running".to_owned(),
        restart_count: 0,
    };
    store
        .sync_containers(&id, &[running(0), running(1)], 2)
        .await
        .unwrap();
    let post = |verb: &'static str| {
        let app = &app;
        async move {
            let res = app
                .post(
                    &format!("/api/applications/hello/{verb}"),
                    &json!({}),
                    Some(token),
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK, "{verb}");
        }
    };

    // Stopped while its containers still run: their ports stay held until they go.
    post("stop").await;
    assert_eq!(store.allocated_ports().await.unwrap().len(), 2);
    // Started again before the controller saw the stop. A reconcile that read the
    // stopped spec now syncs its empty view of the containers: the ports belong to the
    // replicas the stored spec wants, and stay.
    post("start").await;
    store.sync_containers(&id, &[], 0).await.unwrap();
    assert_eq!(store.host_ports(&id, 2).await.unwrap(), ports);

    // Stopped for good: the same sync releases them.
    post("stop").await;
    store.sync_containers(&id, &[], 0).await.unwrap();
    assert_eq!(store.allocated_ports().await.unwrap(), Vec::<u16>::new());
    store.close().await;
    app.stop().await;
}
