//! How an application reads in a listing: `longin get`'s rows and the Kubernetes
//! Table kubectl prints. Pure.

use longin_crds::Application;

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
        row.push(
            app.spec
                .image
                .as_ref()
                .map_or_else(|| "<building>".to_owned(), ToString::to_string),
        );
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
