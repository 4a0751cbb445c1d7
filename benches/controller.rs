//! Controller benchmark: Longin against the bare Docker engine API, measured in one run
//! on this machine (figures, not a pass/fail test).
//!
//! (a) apply -> first HTTP answer of one app, vs create+start through the engine API ->
//!     first answer (target ratio <= 1.2);
//! (b) 100 apps applied at once until all are Ready, vs creating and starting the same
//!     100 containers through the engine API with the controller's concurrency (target
//!     ratio <= 1.3);
//! (c) the server's CPU time and RSS over 60 s idle with 100 apps running (target < 1 %
//!     of one core, < 60 MB).
//!
//! Needs the test services (registry and images):
//!   scripts/test-services >/dev/null && cargo bench --bench controller
//! LONGIN_BENCH_APPS and LONGIN_BENCH_IDLE_SECONDS shrink it for a quick look.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{apply, cpu_and_rss, free_port, remove_label, start_server, verdict};

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use serde_json::Value;
use tokio::sync::Semaphore;

async fn answers(client: &reqwest::Client, port: u16) -> bool {
    client
        .get(format!("http://127.0.0.1:{port}/"))
        // Short: a connection that races the engine's port proxy being set up can hang,
        // and a long timeout would bill that to whoever is measured.
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn until_answers(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !answers(client, port).await {
        assert!(Instant::now() < deadline, "port {port} never answered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn app_doc(name: &str, image: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec: {{image: '{image}', containerPort: 8080, replicas: 1, terminationGracePeriodSeconds: 1, resources: {{memory: 32Mi, cpu: 100m}}}}\n"
    )
}

/// The baseline's own bridge network: Longin puts every owner's containers on one, and
/// a container on a user-defined bridge costs the engine more to wire than one on the
/// default bridge, so the baseline pays it too.
const BASELINE_NETWORK: &str = "longin-bench-baseline";

async fn baseline_network(docker: &Docker) {
    let _ = docker.remove_network(BASELINE_NETWORK).await;
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: BASELINE_NETWORK.to_owned(),
            driver: Some("bridge".to_owned()),
            ipam: Some(bollard::models::Ipam {
                config: Some(vec![bollard::models::IpamConfig {
                    subnet: Some("10.239.255.0/24".to_owned()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create the baseline network");
}

/// Creates and starts one container the way the controller does, straight through
/// the engine API.
async fn docker_run(docker: &Docker, name: &str, image: &str, host_port: u16) -> String {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        exposed_ports: Some(vec!["8080/tcp".to_owned()]),
        labels: Some(HashMap::from([(
            "io.longin.bench-baseline".to_owned(),
            "1".to_owned(),
        )])),
        host_config: Some(HostConfig {
            memory: Some(32 << 20),
            port_bindings: Some(HashMap::from([(
                "8080/tcp".to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(host_port.to_string()),
                }]),
            )])),
            init: Some(true),
            nano_cpus: Some(100_000_000),
            network_mode: Some(BASELINE_NETWORK.to_owned()),
            ..Default::default()
        }),
        networking_config: Some(bollard::models::NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                BASELINE_NETWORK.to_owned(),
                bollard::models::EndpointSettings {
                    aliases: Some(vec![name.to_owned()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        )
        .await
        .expect("create")
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");
    id
}

#[tokio::main]
async fn main() {
    let apps: usize = std::env::var("LONGIN_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let idle_secs: u64 = std::env::var("LONGIN_BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let registry =
        std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let image = format!("{registry}/longin/httpd:1.0");
    assert!(
        Command::new("docker")
            .args(["pull", "-q", &image])
            .status()
            .unwrap()
            .success(),
        "run scripts/test-services first"
    );
    let docker = Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    remove_label("io.longin.bench-baseline=1");
    baseline_network(&docker).await;

    let server = start_server(&[]);
    let token = server.ready_and_register(&client).await;

    // (a) one app, three rounds each, medians.
    let mut longin_one = Vec::new();
    let mut docker_one = Vec::new();
    for round in 0..3 {
        // Both sides are polled from the moment of the request, as a user waiting for
        // the app would: a connection made while the engine is still wiring the port
        // hangs until the kernel retries it, and both pay that alike.
        let started = Instant::now();
        let port = free_port();
        let poller = tokio::spawn({
            let client = client.clone();
            async move { until_answers(&client, port).await }
        });
        let id = docker_run(
            &docker,
            &format!("longin-bench-base-{}-{round}", std::process::id()),
            &image,
            port,
        )
        .await;
        poller.await.unwrap();
        docker_one.push(started.elapsed().as_secs_f64());
        docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();

        let started = Instant::now();
        let applied = apply(
            &client,
            &server,
            &token,
            app_doc(&format!("single-{round}"), &image),
        )
        .await;
        let port = u16::try_from(
            applied["results"][0]["application"]["status"]["hostPorts"][0]
                .as_u64()
                .unwrap(),
        )
        .unwrap();
        until_answers(&client, port).await;
        longin_one.push(started.elapsed().as_secs_f64());
        client
            .delete(format!("{}/api/applications/single-{round}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    longin_one.sort_by(f64::total_cmp);
    docker_one.sort_by(f64::total_cmp);
    let (l1, d1) = (longin_one[1], docker_one[1]);

    // (b) many apps at once.
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(8));
    let mut baseline = Vec::new();
    for i in 0..apps {
        let (docker, image, permits) = (docker.clone(), image.clone(), permits.clone());
        baseline.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            docker_run(
                &docker,
                &format!("longin-bench-many-{}-{i}", std::process::id()),
                &image,
                13_000 + u16::try_from(i).unwrap(),
            )
            .await
        }));
    }
    for task in baseline {
        task.await.unwrap();
    }
    let docker_many = started.elapsed().as_secs_f64();
    remove_label("io.longin.bench-baseline=1");
    let _ = docker.remove_network(BASELINE_NETWORK).await;

    let docs: Vec<String> = (0..apps)
        .map(|i| app_doc(&format!("many-{i}"), &image))
        .collect();
    let started = Instant::now();
    apply(&client, &server, &token, docs.join("---\n")).await;
    loop {
        let list: Value = client
            .get(format!("{}/api/applications", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ready = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"]["readyReplicas"] == 1)
            .count();
        if ready == apps {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {ready}/{apps} ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let longin_many = started.elapsed().as_secs_f64();

    // (c) idle with the apps running.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = server.child.id();
    let (cpu_before, _) = cpu_and_rss(pid);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let (cpu_after, rss) = cpu_and_rss(pid);
    let cpu_percent = (cpu_after - cpu_before) / idle_secs as f64 * 100.0;

    println!(
        "controller benchmark ({apps} apps, SQLite, this machine: {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "(a) apply -> first answer: longin {l1:.3} s, engine API {d1:.3} s, ratio {:.2} ({}, target <= 1.2)",
        l1 / d1,
        verdict(l1 / d1, 1.2)
    );
    println!(
        "(b) {apps} apps until Ready: longin {longin_many:.2} s, engine API {docker_many:.2} s, ratio {:.2} ({}, target <= 1.3)",
        longin_many / docker_many,
        verdict(longin_many / docker_many, 1.3)
    );
    println!(
        "(c) idle {idle_secs} s with {apps} apps: CPU {cpu_percent:.2} % of one core ({}, target < 1 %), RSS {:.1} MB ({}, target < 60 MB)",
        verdict(cpu_percent, 1.0),
        rss as f64 / 1e6,
        verdict(rss as f64 / 1e6, 60.0)
    );
    drop(server);
}
