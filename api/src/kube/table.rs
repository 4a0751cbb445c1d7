//! The `meta.k8s.io/v1` Table form kubectl asks for (`Accept:
//! application/json;as=Table;v=v1;g=meta.k8s.io`): the columns of `longin get`, each
//! row carrying the object's metadata so that `-A` and `--show-labels` work.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use serde_json::{Value, json};

use longin_store::applications::ApplicationRecord;

use crate::listing::application_row;
use crate::resource::Presented as _;

use super::object::with_namespace;

/// Whether the client asked for a Table.
#[must_use]
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params.contains(&"g=meta.k8s.io")
                && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
        })
}

/// What each row's `object` holds (`includeObject`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Include {
    None,
    #[default]
    Metadata,
    Object,
}

impl Include {
    /// # Errors
    /// A value other than the three.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("" | "Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(format!(
                "includeObject must be None, Metadata or Object, not {other:?}"
            )),
        }
    }
}

fn column(name: &str, kind: &str, format: &str, description: &str, priority: u8) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

/// The columns, as `longin get` (and `-o wide`) shows them.
#[must_use]
pub fn columns() -> Value {
    json!([
        column(
            "Name",
            "string",
            "name",
            "The application's name, unique in its namespace.",
            0
        ),
        column("Ready", "string", "", "Ready replicas of those wanted.", 0),
        column("Status", "string", "", "The application's phase.", 0),
        column("Ports", "string", "", "Host ports of its replicas.", 0),
        column("Age", "string", "", "Time since it was created.", 0),
        column("Image", "string", "", "The image it runs.", 1),
        column(
            "Generation",
            "integer",
            "",
            "Changes of its desired state.",
            1
        ),
    ])
}

/// One row of `record`.
#[must_use]
pub fn row(
    record: &ApplicationRecord,
    include: Include,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    // Presented once, for the cells and the row's object alike.
    let resource = record.to_resource();
    let cells = application_row(&resource, now, true);
    let generation: i64 = cells.get(6).and_then(|g| g.parse().ok()).unwrap_or(0);
    let cells: Vec<Value> = cells
        .into_iter()
        .take(6)
        .map(Value::String)
        .chain(std::iter::once(json!(generation)))
        .collect();
    let mut row = json!({"cells": cells});
    match include {
        Include::None => {}
        Include::Object => row["object"] = with_namespace(&resource, &record.owner_username),
        Include::Metadata => {
            let object = with_namespace(&resource, &record.owner_username);
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"].clone(),
            });
        }
    }
    row
}

/// A Table of `records` at `resource_version`; `with_columns` false for the watch
/// events after the first (kubectl keeps the columns it was given).
#[must_use]
pub fn table(
    records: &[&ApplicationRecord],
    include: Include,
    resource_version: Option<i64>,
    with_columns: bool,
) -> Value {
    let now = chrono::Utc::now();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if with_columns { columns() } else { json!([]) },
        "rows": records.iter().map(|r| row(r, include, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn kubectl_s_accept_header_asks_for_a_table() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            ),
        );
        assert!(wants_table(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_table(&headers));
        assert!(!wants_table(&HeaderMap::new()));
    }

    #[test]
    fn columns_match_longin_get_and_wide_ones_have_priority_one() {
        let columns = columns();
        let names: Vec<&str> = columns
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
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
        assert_eq!(columns[4]["priority"], 0);
        assert_eq!(columns[5]["priority"], 1);
        assert_eq!(Include::parse(Some("Object")), Ok(Include::Object));
        assert!(Include::parse(Some("All")).is_err());
    }
}
