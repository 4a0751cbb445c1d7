//! How the API shows what is stored: an application as the Application resource, with
//! the server's metadata filled in and secret values redacted; a replica's container. Presentation belongs here,
//! not in the store: the store keeps secrets in clear for the controller.

use longin_crds::API_VERSION;
use longin_crds::application::{Application, KIND, ObjectMeta};
use longin_store::applications::ApplicationRecord;
use longin_store::containers::ContainerRecord;
use longin_store::time::rfc3339;

/// A stored application as the API shows it.
pub trait Presented {
    /// The resource: server metadata filled in, secrets redacted.
    fn to_resource(&self) -> Application;
}

impl Presented for ApplicationRecord {
    fn to_resource(&self) -> Application {
        Application {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: self.name.clone(),
                labels: self.labels.clone(),
                annotations: self.annotations.clone(),
                owner: Some(self.owner_username.clone()),
                uid: Some(self.id.clone()),
                generation: Some(self.generation),
                resource_version: Some(self.resource_version.to_string()),
                creation_timestamp: Some(rfc3339(self.created_at)),
                deletion_timestamp: self.deletion_timestamp.map(rfc3339),
            },
            spec: self.spec.redacted(),
            status: Some(self.status.clone()),
        }
    }
}

/// A replica's container as the controller last observed it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerView {
    id: String,
    docker_id: Option<String>,
    replica: i64,
    host_port: Option<i64>,
    status: String,
    restart_count: i64,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ContainerRecord> for ContainerView {
    fn from(c: ContainerRecord) -> Self {
        Self {
            id: c.id,
            docker_id: c.docker_id,
            replica: c.replica_index,
            host_port: c.host_port,
            status: c.status,
            restart_count: c.restart_count,
            started_at: c.started_at.map(crate::users::time_from_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use longin_crds::application::{ApplicationStatus, EnvVar};

    use super::*;

    #[test]
    fn the_resource_carries_server_metadata_and_no_secret_value() {
        let mut spec: longin_crds::application::ApplicationSpec =
            serde_json::from_value(serde_json::json!({"image": "web:1", "containerPort": 8080}))
                .expect("spec");
        spec.env = vec![EnvVar {
            name: "TOKEN".to_owned(),
            value: Some("hunter2".to_owned()),
            secret: true,
        }];
        let record = ApplicationRecord {
            id: "uid-1".to_owned(),
            owner_id: "o1".to_owned(),
            owner_username: "alice".to_owned(),
            name: "web".to_owned(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            spec,
            status: ApplicationStatus::default(),
            generation: 3,
            resource_version: 7,
            created_at: 0,
            updated_at: 0,
            deletion_timestamp: None,
        };
        let shown = record.to_resource();
        assert_eq!(shown.metadata.owner.as_deref(), Some("alice"));
        assert_eq!(shown.metadata.uid.as_deref(), Some("uid-1"));
        assert_eq!(shown.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(shown.metadata.generation, Some(3));
        assert_eq!(
            shown.metadata.creation_timestamp.as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        let text = serde_json::to_string(&shown).expect("json");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("TOKEN"));
    }
}
