//! How Longin marks its containers: labels carry everything needed to adopt a container
//! after a crash (which app, which replica, which spec, which port), so actual state is
//! always read back from Docker, never assumed from the database.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use longin_crds::application::{ApplicationSpec, RESTARTED_AT_ANNOTATION};

pub const MANAGED_BY: &str = "io.longin.managed-by";
pub const MANAGED_BY_VALUE: &str = "longin";
/// Which Longin installation owns the container: a controller only ever looks at its
/// own instance's containers, so two installations (or parallel tests) on one engine
/// never take each other's containers for orphans.
pub const INSTANCE: &str = "io.longin.instance";
/// The installation's generated id (kept in its store): unlike the instance name,
/// which two installations may share by mistake (both left at the default), it is
/// unique, so a controller never removes another installation's containers.
pub const INSTALLATION: &str = "io.longin.installation";
pub const APP_UID: &str = "io.longin.app-uid";
pub const APP_NAME: &str = "io.longin.app-name";
pub const OWNER: &str = "io.longin.owner";
/// On an owner's network: whose it is.
pub const OWNER_ID: &str = "io.longin.owner-id";
pub const SPEC_HASH: &str = "io.longin.spec-hash";
pub const REPLICA: &str = "io.longin.replica";
pub const HOST_PORT: &str = "io.longin.host-port";
pub const GENERATION: &str = "io.longin.generation";

/// See [`spec_hash`].
const CONTAINER_REVISION: u32 = 1;

/// A short hash of everything in the spec that shapes a container (not the replica
/// count, not the host port): a container whose label differs is out of date. Keyed
/// with the installation's secrets key when there is one (HMAC), so the hash in
/// container names and labels — readable by anyone who can list containers — cannot
/// be used to test guesses of a secret value offline.
#[must_use]
pub fn spec_hash(
    spec: &ApplicationSpec,
    annotations: &std::collections::BTreeMap<String, String>,
    sealer: Option<&longin_store::secrets::Sealer>,
) -> String {
    let mut template = spec.clone();
    template.replicas = 0;
    // Where the image comes from and what happens on failure do not change a
    // container: only the image does.
    template.source = None;
    template.auto_rollback = false;
    let restarted_at = annotations
        .get(RESTARTED_AT_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    // The revision of how containers are made beyond the spec (1: on the owner's own
    // network): raising it rolls every container over once, without downtime.
    let canonical =
        serde_json::to_string(&(&template, restarted_at, CONTAINER_REVISION)).unwrap_or_default();
    match sealer {
        Some(sealer) => sealer.fingerprint(canonical.as_bytes())[..12].to_owned(),
        None => {
            let digest = Sha256::digest(canonical.as_bytes());
            digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// Who a replica's container is: everything its labels record.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaIdentity<'a> {
    pub instance: &'a str,
    pub installation: &'a str,
    pub app_uid: &'a str,
    pub app_name: &'a str,
    pub owner: &'a str,
    pub spec_hash: &'a str,
    pub replica: u32,
    pub host_port: u16,
    pub generation: i64,
}

/// The labels of one replica's container.
#[must_use]
pub fn container_labels(who: &ReplicaIdentity<'_>) -> HashMap<String, String> {
    HashMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (INSTANCE.to_owned(), who.instance.to_owned()),
        (INSTALLATION.to_owned(), who.installation.to_owned()),
        (APP_UID.to_owned(), who.app_uid.to_owned()),
        (APP_NAME.to_owned(), who.app_name.to_owned()),
        (OWNER.to_owned(), who.owner.to_owned()),
        (SPEC_HASH.to_owned(), who.spec_hash.to_owned()),
        (REPLICA.to_owned(), who.replica.to_string()),
        (HOST_PORT.to_owned(), who.host_port.to_string()),
        (GENERATION.to_owned(), who.generation.to_string()),
    ])
}

/// A managed container as reconcile sees it, read back from its labels: its app uid
/// and what it runs. `None` for a container without an app uid label.
#[must_use]
pub fn observed(
    id: String,
    labels: &HashMap<String, String>,
    state: crate::plan::RunState,
    created: i64,
) -> Option<(String, crate::plan::Observed)> {
    let app = labels.get(APP_UID)?.clone();
    let replica = labels
        .get(REPLICA)
        .and_then(|r| r.parse().ok())
        .unwrap_or(u32::MAX);
    let host_port = labels
        .get(HOST_PORT)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Some((
        app,
        crate::plan::Observed {
            id,
            replica,
            spec_hash: labels.get(SPEC_HASH).cloned().unwrap_or_default(),
            host_port,
            state,
            created,
        },
    ))
}

/// A container name that is unique, readable in `docker ps`, and says what it runs.
#[must_use]
pub fn container_name(app_name: &str, app_uid: &str, replica: u32, spec_hash: &str) -> String {
    let uid: String = app_uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("longin-{app_name}-{uid}-r{replica}-{spec_hash}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec() -> ApplicationSpec {
        longin_crds::validation::parse_application(&serde_json::json!({
            "apiVersion": "longin.io/v1", "kind": "Application",
            "metadata": {"name": "web"},
            "spec": {"image": "busybox", "containerPort": 80, "replicas": 2},
        }))
        .expect("valid")
        .spec
    }

    #[test]
    fn hash_ignores_replicas_but_not_the_template_or_restarts() {
        let base = spec_hash(&spec(), &BTreeMap::new(), None);
        let mut scaled = spec();
        scaled.replicas = 7;
        assert_eq!(spec_hash(&scaled, &BTreeMap::new(), None), base);
        let mut other_image = spec();
        other_image.image = Some(longin_crds::limits::Image::parse("busybox:2").expect("image"));
        assert_ne!(spec_hash(&other_image, &BTreeMap::new(), None), base);
        let restarted = BTreeMap::from([(RESTARTED_AT_ANNOTATION.to_owned(), "now".to_owned())]);
        assert_ne!(spec_hash(&spec(), &restarted, None), base);
        assert_eq!(base.len(), 12);
    }

    #[test]
    fn a_keyed_hash_says_nothing_without_the_key() {
        let a = longin_store::secrets::Sealer::new(&[1; 32]);
        let b = longin_store::secrets::Sealer::new(&[2; 32]);
        let keyed = spec_hash(&spec(), &BTreeMap::new(), Some(&a));
        assert_eq!(keyed.len(), 12);
        assert_eq!(keyed, spec_hash(&spec(), &BTreeMap::new(), Some(&a)));
        assert_ne!(keyed, spec_hash(&spec(), &BTreeMap::new(), Some(&b)));
        assert_ne!(keyed, spec_hash(&spec(), &BTreeMap::new(), None));
    }

    #[test]
    fn names_are_readable_and_distinct_per_replica() {
        let a = container_name("web", "0f1e2d3c-aaaa-bbbb", 0, "abc");
        assert_eq!(a, "longin-web-0f1e2d3c-r0-abc");
        assert_ne!(a, container_name("web", "0f1e2d3c-aaaa-bbbb", 1, "abc"));
    }
}
