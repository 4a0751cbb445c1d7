//! What the builder asks of the engine: build an image from a context stream, look
//! images up, re-pull, list and remove the images this installation built. A trait of
//! its own beside [`crate::engine::ContainerRuntime`]: an engine that only runs
//! containers need not build.

use std::collections::HashMap;

use bollard::query_parameters::{
    BuildImageOptions, ListImagesOptions, PushImageOptions, RemoveImageOptions, TagImageOptions,
};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::runtime::{DockerRuntime, RuntimeError};

/// One image build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// `longin/<uid>:<sha12>`.
    pub tag: String,
    /// The Dockerfile's path in the context.
    pub dockerfile: String,
    /// Memory of each build step's container, bytes.
    pub memory: i64,
}

/// An image this installation built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub id: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub app_uid: String,
}

/// The label naming the application an image was built for.
pub const IMAGE_APP_LABEL: &str = "io.longin.app-uid";
/// The label naming the commit an image was built from.
pub const IMAGE_COMMIT_LABEL: &str = "io.longin.commit";
/// The label naming the revision that built an image.
pub const IMAGE_REVISION_LABEL: &str = "io.longin.revision";

/// The engine's image side, as the builder uses it.
#[async_trait::async_trait]
pub trait ImageBuilds: std::fmt::Debug + Send + Sync + 'static {
    /// Builds `request.tag` from the context tar; every output line goes to `output`.
    /// Returns the image's id.
    async fn build(
        &self,
        request: &BuildRequest,
        context: BoxStream<'static, Result<Bytes, std::io::Error>>,
        output: mpsc::UnboundedSender<String>,
    ) -> Result<String, RuntimeError>;

    /// The id of `image` on the engine, if it has it.
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError>;

    /// The labels naming this installation that every built image carries (the
    /// clean-up finds Longin's images by them).
    fn installation_labels(&self) -> Vec<(String, String)>;

    /// Images carrying this installation's labels.
    async fn built_images(&self) -> Result<Vec<BuiltImage>, RuntimeError>;

    /// Removes one tag (the image goes with its last tag; an image a container uses
    /// is refused by the engine and stays).
    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError>;

    /// Tags `image` as `target` (`registry/repository:tag`) and pushes it there; each
    /// progress line goes to `output`.
    async fn push(
        &self,
        image: &str,
        target: &str,
        output: mpsc::UnboundedSender<String>,
    ) -> Result<(), RuntimeError>;
}

/// `repository` and `tag` of a reference with a tag (`host:5000/a/b:t` → `host:5000/a/b`,
/// `t`); `latest` when it has none (a port is no tag).
fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (reference, "latest"),
    }
}

fn engine(operation: &'static str) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    move |source| RuntimeError::Engine { operation, source }
}

#[async_trait::async_trait]
impl ImageBuilds for DockerRuntime {
    async fn build(
        &self,
        request: &BuildRequest,
        context: BoxStream<'static, Result<Bytes, std::io::Error>>,
        output: mpsc::UnboundedSender<String>,
    ) -> Result<String, RuntimeError> {
        let options = BuildImageOptions {
            dockerfile: request.dockerfile.clone(),
            t: Some(request.tag.clone()),
            rm: true,
            forcerm: true,
            memory: i32::try_from(request.memory).ok(),
            memswap: i32::try_from(request.memory).ok(),
            ..Default::default()
        };
        let body = bollard::body_try_stream(context);
        let mut progress = self.docker().build_image(options, None, Some(body));
        let mut id = None;
        while let Some(item) = progress.next().await {
            let info = item.map_err(engine("build"))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                let _ = output.send(detail.clone());
                return Err(RuntimeError::Build { message: detail });
            }
            if let Some(text) = info.stream.or(info.status) {
                let _ = output.send(text);
            }
            if let Some(aux) = info.aux.and_then(|a| a.id) {
                id = Some(aux);
            }
        }
        match id {
            Some(id) => Ok(id),
            None => self
                .image_id(&request.tag)
                .await?
                .ok_or_else(|| RuntimeError::Build {
                    message: "the engine finished without an image".to_owned(),
                }),
        }
    }

    fn installation_labels(&self) -> Vec<(String, String)> {
        vec![
            (
                crate::labels::INSTALLATION.to_owned(),
                self.installation().to_owned(),
            ),
            (
                crate::labels::INSTANCE.to_owned(),
                self.instance().to_owned(),
            ),
        ]
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        match self.docker().inspect_image(image).await {
            Ok(found) => Ok(found.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(engine("inspect image")(err)),
        }
    }

    async fn built_images(&self) -> Result<Vec<BuiltImage>, RuntimeError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!(
                "{}={}",
                crate::labels::INSTALLATION,
                self.installation()
            )],
        )]);
        let images = self
            .docker()
            .list_images(Some(ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(engine("list images"))?;
        Ok(images
            .into_iter()
            .filter_map(|image| {
                let app_uid = image.labels.get(IMAGE_APP_LABEL)?.clone();
                Some(BuiltImage {
                    id: image.id,
                    tags: image.repo_tags,
                    size: u64::try_from(image.size).unwrap_or(0),
                    app_uid,
                })
            })
            .collect())
    }

    async fn push(
        &self,
        image: &str,
        target: &str,
        output: mpsc::UnboundedSender<String>,
    ) -> Result<(), RuntimeError> {
        let (repository, tag) = split_tag(target);
        self.docker()
            .tag_image(
                image,
                Some(TagImageOptions {
                    repo: Some(repository.to_owned()),
                    tag: Some(tag.to_owned()),
                }),
            )
            .await
            .map_err(engine("tag"))?;
        let mut progress = self.docker().push_image(
            repository,
            Some(PushImageOptions {
                tag: Some(tag.to_owned()),
                ..Default::default()
            }),
            None,
        );
        while let Some(item) = progress.next().await {
            let info = item.map_err(|err| RuntimeError::Push {
                image: target.to_owned(),
                message: err.to_string(),
            })?;
            // Per-layer progress is a line per chunk: the log keeps the outcome lines.
            if let Some(status) = info.status
                && info.progress_detail.is_none()
            {
                let _ = output.send(status);
            }
        }
        Ok(())
    }

    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError> {
        match self
            .docker()
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                    ..Default::default()
                }),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(err) => Err(engine("remove image")(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn a_port_is_no_tag() {
        assert_eq!(
            split_tag("10.0.0.1:5000/longin/abc:0123456789ab"),
            ("10.0.0.1:5000/longin/abc", "0123456789ab")
        );
        assert_eq!(
            split_tag("10.0.0.1:5000/longin/abc"),
            ("10.0.0.1:5000/longin/abc", "latest")
        );
        assert_eq!(split_tag("longin/abc:1"), ("longin/abc", "1"));
    }
}
