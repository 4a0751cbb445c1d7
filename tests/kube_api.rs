//! The Kubernetes-compatible API at the HTTP level, on both stores: discovery, lists
//! and Tables, watches from a resourceVersion across writes and deletions, patches,
//! scale, Status errors and namespaces as owners. (`tests/kubectl.rs` drives the same
//! routes with the real kubectl over HTTPS.)

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

const APPS: &str = "/apis/longin.io/v1/namespaces";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

fn object(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "longin.io/v1",
        "kind": "Application",
        "metadata": {"name": name, "labels": {"tier": "web"}},
        "spec": {"image": format!("{}/longin/httpd:1.0", common::registry()), "replicas": replicas, "containerPort": 8080},
    })
}

async fn send(
    app: &common::TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", content_type)
            .body(body.to_string());
    }
    let res = request.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(app: &common::TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    send(app, reqwest::Method::GET, path, token, "", None).await
}

async fn create(app: &common::TestApp, ns: &str, token: &str, body: Value) -> (StatusCode, Value) {
    send(
        app,
        reqwest::Method::POST,
        &format!("{APPS}/{ns}/applications"),
        token,
        "application/json",
        Some(body),
    )
    .await
}

/// A watch's lines as they come.
struct Watch {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Watch {
    async fn open(app: &common::TestApp, path: &str, token: &str, accept: &str) -> Self {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(token)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "watch {path}");
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event, within `secs`.
    async fn next(&mut self, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the watch is still open");
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next event of `kind` about `name`, skipping others (status writes).
    async fn next_about(&mut self, kind: &str, name: &str, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left.as_secs().max(1)).await;
            if event["type"] == kind && event["object"]["metadata"]["name"] == name {
                return event;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_names_the_group_its_resource_and_subresources() {
    let app = common::spawn_app().await;
    let alice = app.register("alice").await;
    let token = &alice.access_token;
    let (status, version) = get(&app, "/version", token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (version["major"].as_str(), version["minor"].as_str()),
        (Some("1"), Some("20"))
    );
    let (_, groups) = get(&app, "/apis", token).await;
    assert_eq!(groups["groups"][0]["name"], "longin.io");
    assert_eq!(
        groups["groups"][0]["preferredVersion"]["groupVersion"],
        "longin.io/v1"
    );
    let (_, resources) = get(&app, "/apis/longin.io/v1", token).await;
    let list = resources["resources"].as_array().unwrap();
    let apps = list.iter().find(|r| r["name"] == "applications").unwrap();
    assert_eq!(apps["shortNames"], json!(["app"]));
    assert!(
        apps["categories"]
            .as_array()
            .unwrap()
            .contains(&json!("all"))
    );
    assert!(apps["verbs"].as_array().unwrap().contains(&json!("watch")));
    let scale = list
        .iter()
        .find(|r| r["name"] == "applications/scale")
        .unwrap();
    assert_eq!(
        (scale["group"].as_str(), scale["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );
    let (_, core) = get(&app, "/api", token).await;
    assert_eq!(core["versions"], json!(["v1"]));
    // kubectl 1.20 asks for protobuf: an empty message is an empty document.
    let res = app
        .client
        .get(app.url("/openapi/v2"))
        .header(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.unwrap().is_empty());
    let (status, swagger) = get(&app, "/openapi/v2", token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(swagger["definitions"]["io.longin.v1.Application"]["properties"]["spec"].is_object());
    // Without a token: a Status kubectl reads as "must be logged in".
    let res = app
        .client
        .get(app.url("/apis/longin.io/v1/namespaces/alice/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_are_owners_and_errors_are_statuses() {
    let app = common::spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let root = app.admin("root").await;
    let (status, created) = create(&app, "alice", &alice.access_token, object("web", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["namespace"], "alice");
    let (status, _) = create(&app, "bob", &bob.access_token, object("api", 1)).await;
    assert_eq!(status, StatusCode::CREATED);

    // Another user's namespace is Forbidden, whether it exists or not; in one's own
    // namespace another's app is simply not found.
    for ns in ["bob", "nobody"] {
        let (status, body) = get(
            &app,
            &format!("{APPS}/{ns}/applications"),
            &alice.access_token,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["reason"], "Forbidden");
    }
    let (status, body) = get(
        &app,
        &format!("{APPS}/alice/applications/api"),
        &alice.access_token,
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
    let (status, _) = get(&app, "/api/v1/namespaces/bob", &alice.access_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ns) = get(&app, "/api/v1/namespaces/alice", &alice.access_token).await;
    assert_eq!(
        (status, ns["kind"].as_str()),
        (StatusCode::OK, Some("Namespace"))
    );

    // -A: a user sees their own; an admin everyone's.
    let (_, mine) = get(&app, "/apis/longin.io/v1/applications", &alice.access_token).await;
    let names: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    let (_, all) = get(&app, "/apis/longin.io/v1/applications", &root.access_token).await;
    let namespaces: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["alice", "bob"]);
    let (status, _) = get(
        &app,
        &format!("{APPS}/bob/applications/api"),
        &root.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Create twice: AlreadyExists. Invalid: 422 with a cause per field.
    let (status, body) = create(&app, "alice", &alice.access_token, object("web", 1)).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyExists"))
    );
    let mut bad = object("broken", 1);
    bad["spec"]["replicas"] = json!(-1);
    bad["spec"]["image"] = json!("NOT AN IMAGE");
    let (status, body) = create(&app, "alice", &alice.access_token, bad).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("Invalid")),
        "{body}"
    );
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.replicas") && fields.contains(&"spec.image"),
        "{fields:?}"
    );
    let (status, _) = get(
        &app,
        &format!("{APPS}/alice/applications/broken"),
        &alice.access_token,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an invalid object changes nothing"
    );
    // Into someone else's namespace, or with a namespace other than the path's.
    let (status, _) = create(&app, "bob", &alice.access_token, object("sneaky", 1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut elsewhere = object("sneaky", 1);
    elsewhere["metadata"]["namespace"] = json!("bob");
    let (status, _) = create(&app, "alice", &alice.access_token, elsewhere).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, bobs) = get(&app, &format!("{APPS}/bob/applications"), &bob.access_token).await;
    assert_eq!(
        bobs["items"].as_array().unwrap().len(),
        1,
        "bob still has only his app"
    );
    // A dry run is refused, not carried out.
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        &format!("{APPS}/alice/applications?dryRun=All"),
        &alice.access_token,
        "application/json",
        Some(object("dry", 1)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &app,
        &format!("{APPS}/alice/applications/dry"),
        &alice.access_token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_selectors_and_pages() {
    let app = common::spawn_app().await;
    let alice = app.register("alice").await;
    let token = &alice.access_token;
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut o = object(name, 1);
        o["metadata"]["labels"]["tier"] = json!(tier);
        assert_eq!(create(&app, "alice", token, o).await.0, StatusCode::CREATED);
    }
    let res = app
        .client
        .get(app.url(&format!("{APPS}/alice/applications")))
        .header("accept", TABLE)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let table: Value = res.json().await.unwrap();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Ready",
            "Status",
            "Ports",
            "Age",
            "Image",
            "Generation"
        ]
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["cells"][0], "a");
    assert_eq!(rows[0]["cells"][1], "0/1");
    assert_eq!(rows[0]["object"]["metadata"]["namespace"], "alice");
    assert_eq!(rows[0]["object"]["metadata"]["labels"]["tier"], "web");

    let (_, web) = get(
        &app,
        &format!("{APPS}/alice/applications?labelSelector=tier%3Dweb"),
        token,
    )
    .await;
    let names: Vec<&str> = web["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
    let (_, one) = get(
        &app,
        &format!("{APPS}/alice/applications?fieldSelector=metadata.name%3Db"),
        token,
    )
    .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let (status, _) = get(
        &app,
        &format!("{APPS}/alice/applications?fieldSelector=spec.image%3Dx"),
        token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, page) = get(&app, &format!("{APPS}/alice/applications?limit=2"), token).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["metadata"]["continue"].as_str().unwrap();
    let (_, rest) = get(
        &app,
        &format!("{APPS}/alice/applications?limit=2&continue={next}"),
        token,
    )
    .await;
    let names: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c"]);
    assert!(rest["metadata"]["continue"].is_null());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_replace_and_scale_go_through_longins_rules() {
    let app = common::spawn_app().await;
    let alice = app.register("alice").await;
    let token = &alice.access_token;
    let path = format!("{APPS}/alice/applications/web");
    let (_, created) = create(&app, "alice", token, object("web", 1)).await;
    let first_version = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Merge patch: null deletes; kubectl's annotation is kept verbatim.
    let applied = "{\"apiVersion\":\"longin.io/v1\",\"kind\":\"Application\"}\n";
    let (status, patched) = send(&app, reqwest::Method::PATCH, &path, token, "application/merge-patch+json",
        Some(json!({"metadata": {"labels": {"tier": null, "team": "a"}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}}, "spec": {"replicas": 2}}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["spec"]["replicas"], 2);
    assert_eq!(patched["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        applied
    );
    assert_eq!(patched["metadata"]["generation"], 2);
    // The same application through Longin's own API.
    let own = common::get_application(&app, token, "web").await.unwrap();
    assert_eq!(own["spec"]["replicas"], 2);
    assert_eq!(
        own["metadata"]["resourceVersion"],
        patched["metadata"]["resourceVersion"]
    );

    // JSON patch, and a test that fails.
    let (status, patched) = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        token,
        "application/json-patch+json",
        Some(json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])),
    )
    .await;
    assert_eq!(
        (status, patched["spec"]["replicas"].as_u64()),
        (StatusCode::OK, Some(3))
    );
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        token,
        "application/json-patch+json",
        Some(json!([{"op": "test", "path": "/spec/replicas", "value": 9}])),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A patch that makes the object invalid changes nothing.
    let (status, body) = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        token,
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": -5}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        token,
        "application/strategic-merge-patch+json",
        Some(json!({"spec": {"replicas": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, now) = get(&app, &path, token).await;
    assert_eq!(now["spec"]["replicas"], 3);

    // Replace from a stale version: 409; from the current one: done.
    let mut stale = now.clone();
    stale["metadata"]["resourceVersion"] = json!(first_version);
    stale["spec"]["replicas"] = json!(1);
    let (status, body) = send(
        &app,
        reqwest::Method::PUT,
        &path,
        token,
        "application/json",
        Some(stale),
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::CONFLICT, Some("Conflict")),
        "{body}"
    );
    let mut fresh = now.clone();
    fresh["spec"]["replicas"] = json!(1);
    let (status, replaced) = send(
        &app,
        reqwest::Method::PUT,
        &path,
        token,
        "application/json",
        Some(fresh),
    )
    .await;
    assert_eq!(
        (status, replaced["spec"]["replicas"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{replaced}"
    );

    // Server-side apply: creates, then updates; needs a field manager.
    let apply_path = format!("{APPS}/alice/applications/ssa");
    let yaml = longin_crds::document::to_yaml(&object("ssa", 1)).unwrap();
    let ssa = |query: &'static str, body: String| {
        let url = app.url(&format!("{apply_path}{query}"));
        let client = app.client.clone();
        let token = token.clone();
        async move {
            client
                .patch(url)
                .bearer_auth(token)
                .header("content-type", "application/apply-patch+yaml")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(ssa("", yaml.clone()).await, StatusCode::BAD_REQUEST);
    assert_eq!(
        ssa("?fieldManager=test&force=true", yaml.clone()).await,
        StatusCode::CREATED
    );
    assert_eq!(
        ssa(
            "?fieldManager=test&force=true",
            yaml.replace("replicas: 1", "replicas: 2")
        )
        .await,
        StatusCode::OK
    );
    let (_, ssa_now) = get(&app, &apply_path, token).await;
    assert_eq!(ssa_now["spec"]["replicas"], 2);

    // Scale: read, patch, replace.
    let scale_path = format!("{path}/scale");
    let (_, scale) = get(&app, &scale_path, token).await;
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_u64()),
        (Some("Scale"), Some(1))
    );
    let (status, scaled) = send(
        &app,
        reqwest::Method::PATCH,
        &scale_path,
        token,
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": 4}})),
    )
    .await;
    assert_eq!(
        (status, scaled["spec"]["replicas"].as_u64()),
        (StatusCode::OK, Some(4)),
        "{scaled}"
    );
    let mut put = scaled.clone();
    put["spec"]["replicas"] = json!(2);
    let (status, scaled) = send(
        &app,
        reqwest::Method::PUT,
        &scale_path,
        token,
        "application/json",
        Some(put.clone()),
    )
    .await;
    assert_eq!(
        (status, scaled["spec"]["replicas"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        &scale_path,
        token,
        "application/json",
        Some(put),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the scale's version is now stale"
    );
    // Over the quota (40 replicas by default): refused, unchanged.
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &scale_path,
        token,
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": 500}})),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(
        common::get_application(&app, token, "web").await.unwrap()["spec"]["replicas"],
        2
    );
    // Status is the controller's.
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        &format!("{path}/status"),
        token,
        "application/json",
        Some(now),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_from_a_version_sees_every_change_after_it_and_an_old_one_expires() {
    let app = common::spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let token = &alice.access_token;
    create(&app, "alice", token, object("before", 1)).await;
    let (_, list) = get(&app, &format!("{APPS}/alice/applications"), token).await;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut watch = Watch::open(
        &app,
        &format!("{APPS}/alice/applications?watch=true&resourceVersion={version}"),
        token,
        "application/json",
    )
    .await;
    let (_, created) = create(&app, "alice", token, object("web", 1)).await;
    let added = watch.next_about("ADDED", "web", 10).await;
    assert_eq!(
        added["object"]["metadata"]["uid"],
        created["metadata"]["uid"]
    );
    // Bob's change is not alice's to see.
    create(&app, "bob", &bob.access_token, object("bobs", 1)).await;
    send(
        &app,
        reqwest::Method::PATCH,
        &format!("{APPS}/alice/applications/web"),
        token,
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": 2}})),
    )
    .await;
    let modified = watch.next_about("MODIFIED", "web", 10).await;
    assert_eq!(modified["object"]["spec"]["replicas"], 2);
    let modified_version: i64 = modified["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(modified_version > version.parse::<i64>().unwrap());
    // No controller here: nothing runs, so a deletion ends at once.
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("{APPS}/alice/applications/web"),
        token,
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let deleted = watch.next_about("DELETED", "web", 10).await;
    assert_eq!(
        deleted["object"]["metadata"]["uid"],
        created["metadata"]["uid"]
    );
    drop(watch);

    // From the list's version again: the history replayed, coalesced: what was made
    // and deleted since is one DELETED, with its last state.
    let mut replay = Watch::open(
        &app,
        &format!("{APPS}/alice/applications?watch=true&resourceVersion={version}"),
        token,
        "application/json",
    )
    .await;
    let event = replay.next(10).await;
    assert_eq!(event["type"], "DELETED", "{event}");
    assert_eq!(event["object"]["metadata"]["name"], "web");
    assert_eq!(event["object"]["metadata"]["namespace"], "alice");
    assert_eq!(event["object"]["spec"]["replicas"], 2);
    drop(replay);

    // Without a version: ADDED for what exists now (as a Table, columns once).
    let mut fresh = Watch::open(
        &app,
        &format!("{APPS}/alice/applications?watch=true"),
        token,
        TABLE,
    )
    .await;
    let first = fresh.next(10).await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(first["object"]["rows"][0]["cells"][0], "before");
    assert!(
        !first["object"]["columnDefinitions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    create(&app, "alice", token, object("later", 1)).await;
    let next = fresh.next_about_table("later", 10).await;
    assert!(
        next["object"]["columnDefinitions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    drop(fresh);

    // Once tombstones before a version are pruned, a watch from it expires: 410.
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&app.database_url))
        .await
        .unwrap();
    store
        .prune_tombstones(longin_store::now_ms() + 1)
        .await
        .unwrap();
    store.close().await;
    let mut expired = Watch::open(
        &app,
        &format!("{APPS}/alice/applications?watch=true&resourceVersion={version}"),
        token,
        "application/json",
    )
    .await;
    let error = expired.next(10).await;
    assert_eq!(error["type"], "ERROR");
    assert_eq!(
        (
            error["object"]["code"].as_u64(),
            error["object"]["reason"].as_str()
        ),
        (Some(410), Some("Expired"))
    );
    app.stop().await;
}

impl Watch {
    /// The next Table event whose row is `name`.
    async fn next_about_table(&mut self, name: &str, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left.as_secs().max(1)).await;
            if event["object"]["rows"][0]["cells"][0] == name {
                return event;
            }
        }
    }
}

/// Two API processes on one PostgreSQL (in both passes: several processes need it):
/// a watch on one sees a write made through the other.
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_sees_writes_made_through_another_api_process() {
    let database = common::fresh_postgres_url().await;
    let first =
        common::spawn_app_with_args(|args| args.store.database_url = Some(database.clone())).await;
    let second = common::spawn_api_sharing(&first, |_| {}).await;
    let alice = first.register("alice").await;
    let (_, list) = get(
        &first,
        &format!("{APPS}/alice/applications"),
        &alice.access_token,
    )
    .await;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watch = Watch::open(
        &first,
        &format!("{APPS}/alice/applications?watch=true&resourceVersion={version}"),
        &alice.access_token,
        "application/json",
    )
    .await;
    let (status, _) = create(
        &second,
        "alice",
        &alice.access_token,
        object("elsewhere", 1),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let added = watch.next_about("ADDED", "elsewhere", 10).await;
    assert_eq!(added["object"]["metadata"]["namespace"], "alice");
    drop(watch);
    second.stop().await;
    first.stop().await;
}

/// Watches hold a task and a connection each: a user gets as many as log streams
/// (`--log-streams-per-user`), then 429, and a place comes back when a watch ends. A
/// client that opens the HTTPS port and never finishes its handshake is cut off.
#[tokio::test(flavor = "multi_thread")]
async fn watches_are_capped_per_user_and_a_silent_tls_client_is_cut_off() {
    let app = common::spawn_app_with_args(|args| {
        args.log_streams_per_user = 2;
        args.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        args.http_header_timeout = Duration::from_secs(1);
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let path = |ns: &str| format!("{APPS}/{ns}/applications?watch=true");
    let first = Watch::open(
        &app,
        &path("alice"),
        &alice.access_token,
        "application/json",
    )
    .await;
    let _second = Watch::open(
        &app,
        &path("alice"),
        &alice.access_token,
        "application/json",
    )
    .await;
    let (status, body) = get(&app, &path("alice"), &alice.access_token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["reason"], "TooManyRequests");
    let _bobs = Watch::open(&app, &path("bob"), &bob.access_token, "application/json").await;
    drop(first);
    common::eventually(10, "alice's place back once her watch ended", || async {
        let res = app
            .client
            .get(app.url(&path("alice")))
            .bearer_auth(&alice.access_token)
            .send()
            .await
            .unwrap();
        (res.status() == StatusCode::OK).then_some(())
    })
    .await;

    let tls = app.tls.expect("an HTTPS listener");
    let mut silent = tokio::net::TcpStream::connect(tls).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("the server closes a connection that sends no handshake");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    app.stop().await;
}

/// `kubectl get -A -w` as a user is a watch of their own namespace: another user's
/// applications, created while it runs, never show in it.
#[tokio::test(flavor = "multi_thread")]
async fn a_users_watch_of_every_namespace_shows_only_their_own() {
    let app = common::spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut watch = Watch::open(
        &app,
        "/apis/longin.io/v1/applications?watch=true",
        &alice.access_token,
        "application/json",
    )
    .await;
    assert_eq!(
        create(&app, "bob", &bob.access_token, object("secret", 1))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        create(&app, "alice", &alice.access_token, object("mine", 1))
            .await
            .0,
        StatusCode::CREATED
    );
    let first = watch.next(10).await;
    assert_eq!(first["object"]["metadata"]["name"], "mine", "{first}");
    assert_eq!(first["object"]["metadata"]["namespace"], "alice");
    drop(watch);
    app.stop().await;
}
