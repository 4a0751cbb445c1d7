//! The controller's Docker event stream breaks and comes back: the controller
//! reconnects, catches up on what it missed with a full pass, and follows events again.
//! The engine is reached through a Unix-socket proxy this test can cut; the periodic
//! resync is set to an hour, so only the reconnect can explain what the controller does.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use longin_store::applications::{ApplyMode, PortRange};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use common::{InstanceContainers, docker, eventually};

/// Forwards connections on `path` to the engine's socket. Each message on `cuts`
/// drops every open connection and refuses new ones for that long.
async fn proxy(path: PathBuf, upstream: PathBuf, mut cuts: mpsc::Receiver<Duration>) {
    loop {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let mut connections = JoinSet::new();
        let pause = loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { continue };
                    let upstream = upstream.clone();
                    connections.spawn(async move {
                        if let Ok(mut outbound) = UnixStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
                cut = cuts.recv() => match cut {
                    Some(pause) => break pause,
                    None => return,
                },
            }
        };
        drop(listener);
        let _ = std::fs::remove_file(&path);
        connections.abort_all();
        tokio::time::sleep(pause).await;
    }
}

fn engine_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_event_stream_is_reconnected_and_missed_events_caught_up() {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(data_dir.path()).await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&database_url))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let instance = format!(
        "longin-test-events-{}",
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
    let owner = common::store_user(&store, "watcher").await;
    let doc = longin_crds::validation::parse_application(&serde_json::json!({
        "apiVersion": "longin.io/v1", "kind": "Application",
        "metadata": {"name": "watched"},
        "spec": {"image": format!("{registry}/longin/httpd:1.0"), "containerPort": 8080, "replicas": 1, "terminationGracePeriodSeconds": 1},
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

    let socket = data_dir.path().join("engine.sock");
    let (cut, cuts) = mpsc::channel(1);
    let proxy = tokio::spawn(proxy(socket.clone(), engine_socket(), cuts));
    eventually(10, "proxy listening", || async {
        socket.exists().then_some(())
    })
    .await;
    let docker_host = format!("unix://{}", socket.display());
    let _controller = common::spawn_controller(
        data_dir.path(),
        &database_url,
        &instance,
        (range.first, range.last),
        3600,
        &[("DOCKER_HOST", docker_host.as_str())],
    );

    let filter = format!("label=io.longin.instance={instance}");
    let running = || {
        docker(&["ps", "-q", "--filter", &filter])
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let first = eventually(90, "the replica running", || async { running().pop() }).await;

    // Break the stream and, while it is down, remove the container: the event is lost.
    cut.send(Duration::from_secs(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    docker(&["rm", "-f", &first]);
    let second = eventually(60, "a replacement after the stream came back", || async {
        running().into_iter().find(|id| *id != first)
    })
    .await;

    // The stream is live again: an event alone brings the next replacement.
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["rm", "-f", &second]);
    eventually(20, "a replacement driven by the event", || async {
        running()
            .into_iter()
            .find(|id| *id != first && *id != second)
    })
    .await;
    drop(cut);
    proxy.await.unwrap();
}
