//! The container metrics table: cycles in, downsampled series and latest totals out,
//! pruning — on SQLite and (with `LONGIN_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::float_cmp)]

mod common;

use longin_store::applications::{ApplyMode, PortRange};
use longin_store::usage::UsageRow;

fn row(app: &str, docker_id: &str, at: i64, cpu: f64, memory: i64) -> UsageRow {
    UsageRow {
        application_id: app.to_owned(),
        docker_id: docker_id.to_owned(),
        recorded_at: at,
        cpu_percent: cpu,
        memory_bytes: memory,
        memory_limit_bytes: 1000,
        net_rx_bytes: at / 1000,
        net_tx_bytes: 1,
        block_read_bytes: 0,
        block_write_bytes: 0,
    }
}

#[tokio::test]
async fn cycles_are_summed_downsampled_and_pruned() {
    let data_dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(data_dir.path()).await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&url))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let owner = common::store_user(&store, "meter").await;
    let doc = longin_crds::validation::parse_application(&serde_json::json!({
        "apiVersion": "longin.io/v1", "kind": "Application",
        "metadata": {"name": "metered"},
        "spec": {"image": "example/app:1", "containerPort": 8080},
    }))
    .unwrap();
    let applied = store
        .apply_applications(
            &owner.id,
            &[doc],
            ApplyMode::Apply,
            PortRange {
                first: 3100,
                last: 3110,
            },
            &Default::default(),
        )
        .await
        .unwrap();
    let app = applied[0].record.id.clone();

    // Four cycles, 10 s apart, two containers each; and a row for an app that is gone.
    let mut rows = Vec::new();
    for (i, at) in [100_000_i64, 110_000, 120_000, 130_000]
        .into_iter()
        .enumerate()
    {
        let i = i as f64;
        rows.push(row(&app, "c1", at, 10.0 + i, 100));
        rows.push(row(&app, "c2", at, 20.0 + i, 300));
    }
    rows.push(row("no-such-app", "c9", 130_000, 99.0, 1));
    store.record_usage(&rows).await.unwrap();

    // Steps of 20 s: [100 s, 120 s) holds cycles 100 and 110, [120 s, 140 s) 120 and 130.
    let series = store.usage_series(&app, 0, 200_000, 20_000).await.unwrap();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(series[0].at, 100_000);
    assert_eq!(series[0].cpu_percent, 31.0); // (30 + 32) / 2
    assert_eq!(series[1].cpu_percent, 35.0); // (34 + 36) / 2
    assert_eq!(series[0].memory_bytes, 400.0);
    assert_eq!(series[0].memory_limit_bytes, 2000.0);
    assert_eq!(series[0].containers, 2.0);
    assert_eq!(series[1].net_rx_bytes, 260.0); // highest cumulative in the step, summed

    // A window picks its cycles only.
    let window = store
        .usage_series(&app, 110_000, 120_000, 10_000)
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|p| p.at).collect::<Vec<_>>(),
        [110_000, 120_000]
    );

    let latest = store.latest_usage(0).await.unwrap();
    assert_eq!(
        latest.len(),
        1,
        "the unknown app was never stored: {latest:?}"
    );
    assert_eq!(latest[0].application_id, app);
    assert_eq!(latest[0].recorded_at, 130_000);
    assert_eq!(latest[0].cpu_percent, 36.0);
    assert_eq!(latest[0].memory_bytes, 400.0);
    assert_eq!(latest[0].containers, 2);
    assert!(
        store.latest_usage(130_000).await.unwrap().is_empty(),
        "stale"
    );

    // A container row that goes (replaced, scaled down) takes none of the history.
    let observed = |docker_id: &str| longin_store::status::ObservedContainer {
        docker_id: docker_id.to_owned(),
        replica_index: 0,
        host_port: 3100,
        spec_hash: "h".to_owned(),
        status: "running".to_owned(),
        restart_count: 0,
    };
    store
        .sync_containers(&app, &[observed("c3")], 1)
        .await
        .unwrap();
    store
        .record_usage(&[row(&app, "c3", 140_000, 5.0, 50)])
        .await
        .unwrap();
    store
        .sync_containers(&app, &[observed("c4")], 1)
        .await
        .unwrap();
    let kept = store
        .usage_series(&app, 140_000, 140_000, 1_000)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "the replaced container's cycle is kept");
    assert_eq!(kept[0].cpu_percent, 5.0);

    assert_eq!(store.prune_usage(120_000).await.unwrap(), 4);
    let left = store.usage_series(&app, 0, 200_000, 1_000).await.unwrap();
    assert_eq!(left.len(), 3);
}
