//! Swarm benchmark: Longin's `--engine swarm` against the bare engine API on the same
//! three-node swarm (made as in tests/swarm.rs), measured in one run (figures, not a
//! pass/fail test):
//!
//! (a) apply of a 3-replica app → every replica answers on its node, vs creating the
//!     same service spec through the engine API (`POST /services/create`, what
//!     `docker service create` sends) → every node answers (target ratio <= 1.2);
//! (b) a new image → every replica answers with it, vs updating the bare service to
//!     it (target ratio <= 1.2).
//!
//! Both sides publish in host mode with the same health check (Swarm waits for it
//! before a replica counts, and before the next is updated), on an overlay network.
//! Each side runs LONGIN_BENCH_ROUNDS times (default 3), alternating; medians.
//!
//! Needs root and the test services (registry and images):
//!   scripts/test-services >/dev/null && cargo bench --bench swarm

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/common/swarm.rs"]
mod swarm;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::UpdateServiceOptions;
use longin_controller::runtime::NetworkPlan;
use longin_controller::services::{
    PublishMode, RestartCondition, ServiceHealth, ServicePlan, probe_command,
};

const REPLICAS: u32 = 3;

fn registry() -> String {
    std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned())
}

fn image(tag: &str) -> String {
    format!("{}/longin/httpd:{tag}", registry())
}

fn app_doc(name: &str, image: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  image: {image}\n  containerPort: 8080\n  replicas: {REPLICAS}\n  terminationGracePeriodSeconds: 1\n  resources: {{memory: 32Mi, cpu: 100m}}\n  healthCheck:\n    http: {{path: /}}\n    periodSeconds: 1\n    timeoutSeconds: 1\n    failureThreshold: 2\n"
    )
}

/// The bare service: what Longin asks of the engine for the same app, without
/// Longin's labels (so its controller never takes it for its own).
fn bare_plan(name: &str, image: &str, port: u16, network: &str) -> ServicePlan {
    ServicePlan {
        app_uid: name.to_owned(),
        name: name.to_owned(),
        image: image.to_owned(),
        command: Vec::new(),
        args: Vec::new(),
        env: Vec::new(),
        labels: HashMap::new(),
        spec_hash: String::new(),
        replicas: REPLICAS,
        container_port: 8080,
        published_port: port,
        publish: PublishMode::Host,
        memory_bytes: 32 << 20,
        cpu_millis: 100,
        grace_period_secs: 1,
        health: Some(ServiceHealth {
            test: probe_command(8080, Some("/"), 1),
            interval_secs: 1,
            timeout_secs: 1,
            retries: 2,
            start_period_secs: 0,
        }),
        restart: RestartCondition::Any,
        restart_delay_secs: 10,
        max_restarts: 5,
        restart_window_secs: 600,
        start_first: false,
        monitor_secs: 5,
        network: NetworkPlan {
            name: network.to_owned(),
            owner_id: String::new(),
            subnet: String::new(),
            gateway: String::new(),
        },
        aliases: vec![name.to_owned()],
    }
}

/// Until every node answers `port` with a page starting `page`.
async fn until_all_answer(client: &reqwest::Client, swarm: &swarm::Swarm, port: u16, page: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut all = true;
        for node in &swarm.nodes {
            let body = client
                .get(format!("http://{}:{port}/", node.address))
                .timeout(Duration::from_millis(200))
                .send()
                .await
                .ok();
            let ok = match body {
                Some(res) => res.text().await.is_ok_and(|t| t.starts_with(page)),
                None => false,
            };
            if !ok {
                all = false;
                break;
            }
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} never answered {page:?} on every node"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Until no container of the swarm's services is left on any node.
async fn until_no_containers(swarm: &swarm::Swarm) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while swarm
        .nodes
        .iter()
        .any(|n| !n.docker(&["ps", "-aq"]).trim().is_empty())
    {
        assert!(Instant::now() < deadline, "containers left on the nodes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("LONGIN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let swarm = tokio::task::spawn_blocking(|| swarm::Swarm::start(3))
        .await
        .unwrap();
    let manager = swarm.docker_host();
    let docker = Docker::connect_with_unix(&manager, 120, bollard::API_DEFAULT_VERSION)
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: "bench-bare".to_owned(),
            driver: Some("overlay".to_owned()),
            attachable: Some(true),
            ipam: Some(bollard::models::Ipam {
                config: Some(vec![bollard::models::IpamConfig {
                    subnet: Some("10.238.0.0/24".to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();

    let server = common::start_server(&[
        ("LONGIN_ENGINE", "swarm"),
        ("DOCKER_HOST", manager.as_str()),
        ("LONGIN_RESYNC_SECONDS", "30"),
        ("LONGIN_NETWORK_POOL", "10.237.0.0/20"),
    ]);
    let token = server.ready_and_register(&client).await;

    // Warm-up: every node pulls both images once, so no round pays a first pull.
    for (i, tag) in ["1.0", "2.0"].into_iter().enumerate() {
        let port = 13_900 + u16::try_from(i).unwrap();
        let spec = longin_controller::swarm::service_spec(&bare_plan(
            "warm",
            &image(tag),
            port,
            "bench-bare",
        ));
        docker.create_service(spec, None).await.unwrap();
        until_all_answer(&client, &swarm, port, "longin httpd").await;
        docker.delete_service("warm").await.unwrap();
        until_no_containers(&swarm).await;
    }

    let (mut longin_a, mut bare_a, mut longin_b, mut bare_b) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // Longin: apply, then a new image.
        let name = format!("web{round}");
        let started = Instant::now();
        common::apply(&client, &server, &token, app_doc(&name, &image("1.0"))).await;
        // The port is given at apply; the application's status names it.
        let app: serde_json::Value = client
            .get(format!("{}/api/applications/{name}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let port = u16::try_from(app["status"]["hostPorts"][0].as_u64().unwrap()).unwrap();
        until_all_answer(&client, &swarm, port, "longin httpd 1.0").await;
        longin_a.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        common::apply(&client, &server, &token, app_doc(&name, &image("2.0"))).await;
        until_all_answer(&client, &swarm, port, "longin httpd 2.0").await;
        longin_b.push(started.elapsed().as_secs_f64());
        let res = client
            .delete(format!("{}/api/applications/{name}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        until_no_containers(&swarm).await;

        // The engine API: create the same service, then update its image.
        let bare = format!("bare{round}");
        let port = 13_800 + u16::try_from(round).unwrap();
        let started = Instant::now();
        let spec = longin_controller::swarm::service_spec(&bare_plan(
            &bare,
            &image("1.0"),
            port,
            "bench-bare",
        ));
        docker.create_service(spec, None).await.unwrap();
        until_all_answer(&client, &swarm, port, "longin httpd 1.0").await;
        bare_a.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let current = docker.inspect_service(&bare, None).await.unwrap();
        let version = i32::try_from(current.version.unwrap().index.unwrap()).unwrap();
        let spec = longin_controller::swarm::service_spec(&bare_plan(
            &bare,
            &image("2.0"),
            port,
            "bench-bare",
        ));
        docker
            .update_service(
                &bare,
                spec,
                UpdateServiceOptions {
                    version,
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        until_all_answer(&client, &swarm, port, "longin httpd 2.0").await;
        bare_b.push(started.elapsed().as_secs_f64());
        docker.delete_service(&bare).await.unwrap();
        until_no_containers(&swarm).await;
        eprintln!(
            "round {round}: apply {:.2} s vs create {:.2} s; new image {:.2} s vs update {:.2} s",
            longin_a[round], bare_a[round], longin_b[round], bare_b[round]
        );
    }
    let (la, ba, lb, bb) = (
        median(longin_a),
        median(bare_a),
        median(longin_b),
        median(bare_b),
    );
    println!("Swarm benchmark: 3 nodes, {REPLICAS} replicas, medians of {rounds} rounds");
    println!(
        "(a) apply -> every replica answers: Longin {la:.2} s, engine API {ba:.2} s, ratio {:.2} ({})",
        la / ba,
        common::verdict(la / ba, 1.2)
    );
    println!(
        "(b) new image -> every replica answers it: Longin {lb:.2} s, engine API {bb:.2} s, ratio {:.2} ({})",
        lb / bb,
        common::verdict(lb / bb, 1.2)
    );
    drop(server);
    let _ = docker.remove_network("bench-bare").await;
}
