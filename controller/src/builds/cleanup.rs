//! Image clean-up: of the images this installation built (found by its labels, never
//! a host-wide prune), each application keeps those of its newest `keep` succeeded
//! revisions, of its revisions still under way and the one its spec names; the rest
//! go. The engine refuses to remove an image a container still uses, so a running
//! replica never loses its image.

use std::collections::HashMap;

use longin_store::Store;

use super::images::{BuiltImage, ImageBuilds};

/// The tags to remove: every tag of an image of `images` that `keep` (per app uid)
/// does not name; an image with no tag left is removed by id.
#[must_use]
pub fn doomed(images: &[BuiltImage], keep: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut doomed = Vec::new();
    for image in images {
        let kept = keep.get(&image.app_uid);
        let wanted = |tag: &String| kept.is_some_and(|k| k.contains(tag));
        if image.tags.is_empty() || image.tags.iter().all(|t| t == "<none>:<none>") {
            if kept.is_none_or(|k| !k.contains(&image.id)) {
                doomed.push(image.id.clone());
            }
            continue;
        }
        doomed.extend(image.tags.iter().filter(|t| !wanted(t)).cloned());
    }
    doomed
}

/// One clean-up pass; failures are logged (the next pass tries again). With a
/// `registry`, a kept image keeps its registry tag too (the name the nodes run).
pub async fn run_once(
    store: &Store,
    images: &dyn ImageBuilds,
    keep: usize,
    registry: Option<&str>,
) {
    let built = match images.built_images().await {
        Ok(built) => built,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list built images for clean-up");
            return;
        }
    };
    let mut keep_by_app: HashMap<String, Vec<String>> = HashMap::new();
    for uid in built.iter().map(|i| i.app_uid.clone()) {
        if keep_by_app.contains_key(&uid) {
            continue;
        }
        let mut kept = match store
            .images_to_keep(&uid, i64::try_from(keep).unwrap_or(i64::MAX))
            .await
        {
            Ok(kept) => kept,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the images to keep; skipping clean-up");
                return;
            }
        };
        match store.application_by_id(&uid).await {
            Ok(Some(app)) => kept.extend(app.spec.image.map(|i| i.as_str().to_owned())),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "cannot read an application; skipping clean-up");
                return;
            }
        }
        if let Some(registry) = registry {
            let pushed: Vec<String> = kept
                .iter()
                .map(|tag| super::in_registry(registry, tag))
                .collect();
            kept.extend(pushed);
        }
        keep_by_app.insert(uid, kept);
    }
    let mut removed = 0usize;
    for reference in doomed(&built, &keep_by_app) {
        match images.remove_image(&reference).await {
            Ok(()) => removed += 1,
            // In use by a container (an old replica still stopping): next time.
            Err(err) => tracing::debug!(image = %reference, error = %err, "image not removed"),
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed built images no revision needs");
    }
    let bytes: u64 = match images.built_images().await {
        Ok(left) => left.iter().map(|i| i.size).sum(),
        Err(_) => built.iter().map(|i| i.size).sum(),
    };
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("longin_built_image_bytes").set(bytes as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, app: &str, tags: &[&str]) -> BuiltImage {
        BuiltImage {
            id: id.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            size: 10,
            app_uid: app.to_owned(),
        }
    }

    #[test]
    fn only_what_no_revision_needs_goes() {
        let images = [
            image("sha256:1", "a", &["longin/a:111"]),
            image("sha256:2", "a", &["longin/a:222"]),
            image("sha256:3", "b", &["longin/b:333"]),
            image("sha256:4", "gone", &["longin/gone:444"]),
            image("sha256:5", "a", &[]),
        ];
        let keep = HashMap::from([
            ("a".to_owned(), vec!["longin/a:222".to_owned()]),
            ("b".to_owned(), vec!["longin/b:333".to_owned()]),
        ]);
        assert_eq!(
            doomed(&images, &keep),
            ["longin/a:111", "longin/gone:444", "sha256:5"]
        );
    }
}
