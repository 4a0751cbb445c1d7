//! Several `longin controller` processes on one store: one leader acts; when it dies
//! another takes over within about the lease time.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use longin_store::applications::{ApplyMode, PortRange};

use common::{InstanceContainers, docker, eventually};

async fn scrape(base: &str) -> String {
    common::scrape(&format!("{base}/metrics")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_controller_leads_and_another_takes_over_when_it_dies() {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(data_dir.path()).await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&database_url))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let instance = format!(
        "longin-test-lead-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let _containers = InstanceContainers(instance.clone());
    // Reserved: no test running at the same time gets the same ports.
    let ports = common::PortBlock::reserve(20_000, 250);
    let block = ports.first;
    let range = PortRange {
        first: block,
        last: block + 39,
    };
    let registry =
        std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());

    let owner = common::store_user(&store, "leader").await;
    let doc = longin_crds::validation::parse_application(&serde_json::json!({
        "apiVersion": "longin.io/v1", "kind": "Application",
        "metadata": {"name": "led"},
        "spec": {"image": format!("{registry}/longin/httpd:1.0"), "containerPort": 8080, "replicas": 2, "terminationGracePeriodSeconds": 1},
    }))
    .unwrap();
    store
        .apply_applications(
            &owner.id,
            &[doc],
            ApplyMode::Apply,
            range,
            &Default::default(),
        )
        .await
        .unwrap();

    let mut first = common::spawn_controller(
        data_dir.path(),
        &database_url,
        &instance,
        (range.first, range.last),
        1,
        &[],
    );
    let first_pid = first.id();
    let lease = format!("controller:{instance}");
    eventually(30, "first controller leads", || async {
        let l = store.lease(&lease).await.unwrap()?;
        l.holder.contains(&format!(":{first_pid}:")).then_some(())
    })
    .await;
    let mut second = common::spawn_controller(
        data_dir.path(),
        &database_url,
        &instance,
        (range.first, range.last),
        1,
        &[],
    );
    let second_pid = second.id();

    let filter = format!("label=io.longin.instance={instance}");
    let count = || {
        docker(&["ps", "-q", "--filter", &filter])
            .split_whitespace()
            .count()
    };
    eventually(60, "2 replicas running", || async {
        (count() == 2).then_some(())
    })
    .await;
    // Only the leader acts: a few resyncs later there are still exactly two containers.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(count(), 2);
    assert!(
        store
            .lease(&lease)
            .await
            .unwrap()
            .unwrap()
            .holder
            .contains(&format!(":{first_pid}:"))
    );
    // Each controller says on its own /metrics whether it leads, and reconciles only
    // on the leader.
    let leader = scrape(&first.base).await;
    let standby = scrape(&second.base).await;
    assert!(
        leader.contains("\nlongin_controller_leader 1\n"),
        "{leader}"
    );
    assert!(
        standby.contains("\nlongin_controller_leader 0\n"),
        "{standby}"
    );
    assert!(
        leader.contains("longin_reconciles_total{result=\"success\"}"),
        "{leader}"
    );
    assert!(!standby.contains("longin_reconciles_total"), "{standby}");

    first.kill();
    let killed = Instant::now();
    let victim = docker(&["ps", "-q", "--filter", &filter])
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    docker(&["rm", "-f", &victim]);
    eventually(40, "second controller takes over", || async {
        let l = store.lease(&lease).await.unwrap()?;
        l.holder.contains(&format!(":{second_pid}:")).then_some(())
    })
    .await;
    let took_over = killed.elapsed();
    eventually(40, "the removed replica is back", || async {
        (count() == 2).then_some(())
    })
    .await;
    println!(
        "failover: lease taken over {:.1} s after kill -9",
        took_over.as_secs_f64()
    );
    assert!(took_over.as_secs_f64() < 25.0, "{took_over:?}");

    second.kill();
    store.close().await;
}

#[tokio::test]
async fn a_lease_goes_to_one_contender_and_expires_for_the_next() {
    let data_dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(data_dir.path()).await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&url))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ttl = std::time::Duration::from_millis(300);
    let attempts = (0..10).map(|i| {
        let store = store.clone();
        async move {
            store
                .try_acquire_lease("l", &format!("h{i}"), ttl)
                .await
                .unwrap()
        }
    });
    let won = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1, "exactly one contender gets a free lease");
    let holder = store.lease("l").await.unwrap().unwrap().holder;
    assert!(
        store.try_acquire_lease("l", &holder, ttl).await.unwrap(),
        "the holder renews"
    );
    assert!(!store.try_acquire_lease("l", "other", ttl).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        store.try_acquire_lease("l", "other", ttl).await.unwrap(),
        "an expired lease is free"
    );
    store.release_lease("l", "other").await.unwrap();
    assert!(store.lease("l").await.unwrap().is_none());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_by_another_process_reaches_the_controller() {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(data_dir.path()).await;
    let postgres = database_url.starts_with("postgres");
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&database_url))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let instance = format!(
        "longin-test-notify-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let _containers = InstanceContainers(instance.clone());
    // Reserved: no test running at the same time gets the same ports.
    let ports = common::PortBlock::reserve(20_000, 250);
    let block = ports.first;
    let range = PortRange {
        first: block,
        last: block + 39,
    };
    // PostgreSQL carries changes across processes with NOTIFY, so the resync can be an
    // hour; a single-node SQLite install has one process, and across processes only the
    // resync finds changes.
    let resync = if postgres { 3600 } else { 2 };
    let _controller = common::spawn_controller(
        data_dir.path(),
        &database_url,
        &instance,
        (range.first, range.last),
        resync,
        &[],
    );
    let lease = format!("controller:{instance}");
    eventually(30, "controller leads", || async {
        store.lease(&lease).await.unwrap().map(|_| ())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let owner = common::store_user(&store, "notifier").await;
    let registry =
        std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let doc = longin_crds::validation::parse_application(&serde_json::json!({
        "apiVersion": "longin.io/v1", "kind": "Application",
        "metadata": {"name": "notified"},
        "spec": {"image": format!("{registry}/longin/httpd:1.0"), "containerPort": 8080, "terminationGracePeriodSeconds": 1},
    }))
    .unwrap();
    let applied = Instant::now();
    store
        .apply_applications(
            &owner.id,
            &[doc],
            ApplyMode::Apply,
            range,
            &Default::default(),
        )
        .await
        .unwrap();
    let filter = format!("label=io.longin.instance={instance}");
    eventually(30, "container started", || async {
        (!docker(&["ps", "-q", "--filter", &filter]).trim().is_empty()).then_some(())
    })
    .await;
    let latency = applied.elapsed().as_secs_f64();
    println!(
        "apply in another process -> container running: {latency:.2} s (postgres: {postgres})"
    );
    assert!(latency < if postgres { 10.0 } else { 15.0 }, "{latency}");

    // A spec change of the app, now settled and quiet: on SQLite nothing notifies the
    // other process, and the resync must not skip the app for having unchanged
    // containers (every tenth pass would be 20 s here).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let doc = longin_crds::validation::parse_application(&serde_json::json!({
        "apiVersion": "longin.io/v1", "kind": "Application",
        "metadata": {"name": "notified"},
        "spec": {"image": format!("{registry}/longin/httpd:1.0"), "containerPort": 8080, "terminationGracePeriodSeconds": 1, "replicas": 2},
    }))
    .unwrap();
    let changed = Instant::now();
    store
        .apply_applications(
            &owner.id,
            &[doc],
            ApplyMode::Apply,
            range,
            &Default::default(),
        )
        .await
        .unwrap();
    eventually(30, "the second replica", || async {
        (docker(&["ps", "-q", "--filter", &filter])
            .split_whitespace()
            .count()
            == 2)
            .then_some(())
    })
    .await;
    let latency = changed.elapsed().as_secs_f64();
    println!("spec change of a quiet app in another process -> applied: {latency:.2} s");
    assert!(latency < 10.0, "{latency}");
    store.close().await;
}
