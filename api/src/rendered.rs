//! Applications as JSON, rendered once per resourceVersion.
//!
//! Reading an application row and turning it into its JSON resource (parse the spec
//! and status columns, redact secrets, serialize) was most of what `GET
//! /api/applications` cost: about 25 µs an application. Every write of an application
//! bumps its resourceVersion (migration 0007 refuses one that does not), so a
//! rendering kept under (uid, resourceVersion) is exactly what a fresh one would be.
//! Readers still ask the database for the current versions on every request, so a
//! change made by any process is seen at once; only the rows that changed are read
//! in full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use longin_store::applications::ApplicationRecord;

use crate::resource::Presented as _;

/// More renderings than this and the cache starts over (deleted applications' entries
/// go then too).
const CAPACITY: usize = 20_000;

/// Renderings by application uid, each with the resourceVersion it shows.
#[derive(Debug, Clone, Default)]
pub struct RenderedApplications(Arc<Mutex<HashMap<String, (i64, Bytes)>>>);

impl RenderedApplications {
    /// The rendering of `uid` at `resource_version`, if kept.
    #[must_use]
    pub fn get(&self, uid: &str, resource_version: i64) -> Option<Bytes> {
        let hit = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uid)
            .filter(|(version, _)| *version == resource_version)
            .map(|(_, json)| json.clone());
        metrics::counter!("longin_api_rendered_applications_total", "result" => if hit.is_some() { "hit" } else { "miss" })
            .increment(1);
        hit
    }

    /// Renders `record` and keeps it under its resourceVersion.
    ///
    /// # Errors
    /// Serialization failed (it cannot for these types, short of a bug).
    pub fn render(&self, record: &ApplicationRecord) -> Result<Bytes, serde_json::Error> {
        let json = Bytes::from(serde_json::to_vec(&record.to_resource())?);
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        // Two readers may render different versions at once; keep the newer.
        match entries.get(&record.id) {
            Some((kept, _)) if *kept > record.resource_version => {}
            _ => {
                entries.insert(record.id.clone(), (record.resource_version, json.clone()));
            }
        }
        Ok(json)
    }
}

/// `{"apiVersion":…,"kind":"ApplicationList","items":[…]}` around renderings, as
/// serializing the list would write it.
#[must_use]
pub fn list_json(items: &[Bytes]) -> Bytes {
    const HEAD: &str = concat!(
        r#"{"apiVersion":""#,
        "longin.io/v1",
        r#"","kind":"ApplicationList","items":["#
    );
    let size = HEAD.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(HEAD.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_head_names_the_api_version() {
        // The head is spelled out for speed; it must say what the crate's constant says.
        let empty: serde_json::Value = serde_json::from_slice(&list_json(&[])).expect("json");
        assert_eq!(empty["apiVersion"], longin_crds::API_VERSION);
        assert_eq!(empty["kind"], "ApplicationList");
        assert_eq!(empty["items"], serde_json::json!([]));
        let two = list_json(&[Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{}")]);
        let two: serde_json::Value = serde_json::from_slice(&two).expect("json");
        assert_eq!(two["items"], serde_json::json!([{"a": 1}, {}]));
    }
}
