//! kubectl-like output: aligned tables and human ages. Pure.

// The rows are the API's too (its Kubernetes Table form): one definition for both.
pub use longin_api::listing::{
    GET_HEADER, GET_WIDE_HEADER, age, age_since, application_row, ports,
};

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

#[cfg(test)]
mod tests {
    use longin_crds::Application;

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
