//! kubectl-like output: aligned tables and human ages. Pure.

use serde_json::Value;

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

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// One row of `longin get` for an application document.
#[must_use]
pub fn application_row(app: &Value, now: chrono::DateTime<chrono::Utc>, wide: bool) -> Vec<String> {
    let ready = app
        .pointer("/status/readyReplicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let desired = app
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let ports = app
        .pointer("/status/hostPorts")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(Value::as_u64)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let created = chrono::DateTime::parse_from_rfc3339(str_at(app, "/metadata/creationTimestamp"))
        .map(|t| age((now - t.with_timezone(&chrono::Utc)).num_seconds()))
        .unwrap_or_else(|_| "<unknown>".to_owned());
    let mut row = vec![
        str_at(app, "/metadata/name").to_owned(),
        format!("{ready}/{desired}"),
        str_at(app, "/status/phase").to_owned(),
        if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports
        },
        created,
    ];
    if wide {
        row.push(str_at(app, "/spec/image").to_owned());
        row.push(
            app.pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
        );
        row.push(str_at(app, "/metadata/owner").to_owned());
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
        let app = serde_json::json!({
            "metadata": {"name": "hello", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3, "owner": "ada"},
            "spec": {"replicas": 3, "image": "busybox"},
            "status": {"phase": "Running", "readyReplicas": 2, "hostPorts": [3100, 3101, 3102]},
        });
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
