//! kubectl-like output: aligned tables and human ages. Pure.

use longin_crds::Application;

/// Columns aligned with two spaces between them, like kubectl's.
#[must_use]
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push('\n');
    out
}

/// A duration as kubectl shows ages: `45s`, `12m`, `5h`, `3d`.
#[must_use]
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// How long ago an RFC 3339 time was, as an age (`5m`), if it is one.
#[must_use]
pub fn age_since(now: chrono::DateTime<chrono::Utc>, time: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    Some(age((now - time.with_timezone(&chrono::Utc)).num_seconds()))
}

/// A list of ports, `sep`-separated, or `<none>`.
#[must_use]
pub fn ports(ports: &[u16], sep: &str) -> String {
    if ports.is_empty() {
        return "<none>".to_owned();
    }
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// One row of `longin get` for an application.
#[must_use]
pub fn application_row(
    app: &Application,
    now: chrono::DateTime<chrono::Utc>,
    wide: bool,
) -> Vec<String> {
    let status = app.status.as_ref();
    let meta = &app.metadata;
    let mut row = vec![
        meta.name.clone(),
        format!(
            "{}/{}",
            status.map_or(0, |s| s.ready_replicas),
            app.spec.replicas
        ),
        status.map_or("", |s| s.phase.as_str()).to_owned(),
        ports(status.map_or(&[], |s| &s.host_ports), ","),
        age_since(now, meta.creation_timestamp.as_deref().unwrap_or(""))
            .unwrap_or_else(|| "<unknown>".to_owned()),
    ];
    if wide {
        row.push(app.spec.image.to_string());
        row.push(meta.generation.unwrap_or(0).to_string());
        row.push(meta.owner.clone().unwrap_or_default());
    }
    row
}

pub const GET_HEADER: [&str; 5] = ["NAME", "READY", "STATUS", "PORTS", "AGE"];
pub const GET_WIDE_HEADER: [&str; 8] = [
    "NAME",
    "READY",
    "STATUS",
    "PORTS",
    "AGE",
    "IMAGE",
    "GENERATION",
    "OWNER",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let out = table(
            &["NAME", "READY"],
            &[
                vec!["hello".into(), "2/3".into()],
                vec!["a".into(), "0/0".into()],
            ],
        );
        assert_eq!(out, "NAME    READY\nhello   2/3\na       0/0\n");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(5 * 86_400), "5d");
        assert_eq!(age(-3), "0s");
    }

    #[test]
    fn application_row_shows_ready_status_ports_and_age() {
        let app: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "longin.io/v1", "kind": "Application",
            "metadata": {"name": "hello", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3, "owner": "ada"},
            "spec": {"replicas": 3, "image": "busybox", "containerPort": 8080},
            "status": {"phase": "Running", "readyReplicas": 2, "hostPorts": [3100, 3101, 3102]},
        }))
        .expect("an application");
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(
            application_row(&app, now, false),
            ["hello", "2/3", "Running", "3100,3101,3102", "10m"]
        );
        assert_eq!(
            application_row(&app, now, true)[5..],
            ["busybox", "3", "ada"]
        );
    }
}
