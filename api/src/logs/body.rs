//! Log lines as an HTTP streaming body: plain text or JSON lines, written through a
//! bounded channel, so a slow client holds its follower back (and the shared stream
//! then reports `lagged`) instead of lines piling up in memory.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::mpsc;

use super::line::{LogLine, Stream};
use super::sink::{Gone, LogSink, Output};
use crate::error::{AppError, FieldErrors};

/// Rendered lines waiting for a slow client: with the history's read-ahead, what one
/// log request can hold in memory (a line is at most 16 KiB).
const CHUNKS_AHEAD: usize = 16;

/// Most lines `tail` may ask for: an engine line can be 16 KiB, and a read of this
/// many still ends in reasonable time.
pub const MAX_TAIL: usize = 10_000;

/// Which lines a log request asks for, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Only lines at or after this instant (Unix nanoseconds).
    pub since: Option<i64>,
    /// Only this stream's lines.
    pub only: Option<Stream>,
}

impl Selection {
    /// Checks a request's `tail`, `since` (RFC 3339 or Unix seconds) and `stream`
    /// (`stdout` or `stderr`).
    ///
    /// # Errors
    /// A validation error naming each bad field.
    pub fn parse(tail: usize, since: Option<&str>, stream: Option<&str>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        if tail > MAX_TAIL {
            errors.insert("tail".to_owned(), format!("at most {MAX_TAIL}"));
        }
        let since = since
            .and_then(|s| crate::instant::instant("since", s, &mut errors))
            .map(|ms| ms.saturating_mul(1_000_000));
        let only = match stream {
            None => None,
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            Some(_) => {
                errors.insert("stream".to_owned(), "stdout or stderr".to_owned());
                None
            }
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok(Self { since, only })
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// JSON lines (`Accept: application/x-ndjson`), else plain text.
    pub ndjson: bool,
    /// Plain text: each line after its engine time.
    pub timestamps: bool,
    /// Only this stream's lines.
    pub only: Option<Stream>,
    /// Plain text: each line after `[rN] ` (several replicas read at once; `[rN
    /// node] ` on Swarm).
    pub replica_prefix: bool,
}

/// Whether the client asked for JSON lines.
#[must_use]
pub fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/x-ndjson"))
}

/// A line as JSON: `replica` only in an application's logs.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonLine<'a> {
    container_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<i64>,
    /// The Swarm node the line came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    stream: Stream,
    line: &'a str,
    timestamp: &'a str,
}

/// A notice as JSON: `{"type": "end" | "lagged", "message"}`, and the container an
/// end is about in an application's logs.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonNotice<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<i64>,
}

impl Format {
    /// The line as the client reads it; `None` if filtered out.
    #[must_use]
    pub fn render(self, line: &LogLine, replica: Option<i64>) -> Option<String> {
        if self.only.is_some_and(|s| s != line.stream) {
            return None;
        }
        if self.ndjson {
            let json = JsonLine {
                container_id: &line.container_id,
                replica,
                node: line.node.as_deref(),
                stream: line.stream,
                line: &line.line,
                timestamp: &line.timestamp,
            };
            let mut text = serde_json::to_string(&json).unwrap_or_default();
            text.push('\n');
            return Some(text);
        }
        let prefix = match (replica, line.node.as_deref()) {
            (Some(r), Some(node)) if self.replica_prefix => format!("[r{r} {node}] "),
            _ => self.prefix(replica),
        };
        Some(if self.timestamps {
            format!("{prefix}{} {}\n", line.timestamp, line.line)
        } else {
            format!("{prefix}{}\n", line.line)
        })
    }

    fn prefix(self, replica: Option<i64>) -> String {
        match replica {
            Some(r) if self.replica_prefix => format!("[r{r}] "),
            _ => String::new(),
        }
    }

    /// A notice (`end`, `lagged`) as the client reads it.
    #[must_use]
    pub fn notice(
        self,
        kind: &str,
        message: &str,
        container: Option<(&str, Option<i64>)>,
    ) -> String {
        if self.ndjson {
            let json = JsonNotice {
                kind,
                message,
                container_id: container.map(|(id, _)| id),
                replica: container.and_then(|(_, r)| r),
            };
            let mut text = serde_json::to_string(&json).unwrap_or_default();
            text.push('\n');
            text
        } else {
            let prefix = self.prefix(container.and_then(|(_, r)| r));
            format!("{prefix}[longin: {message}]\n")
        }
    }

    /// The body's content type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        if self.ndjson {
            "application/x-ndjson"
        } else {
            "text/plain; charset=utf-8"
        }
    }
}

/// The sending end of a streaming body.
#[derive(Debug, Clone)]
pub struct BodySink {
    tx: mpsc::Sender<String>,
    format: Format,
}

impl BodySink {
    async fn write(&self, chunk: String) -> Result<(), Gone> {
        self.tx.send(chunk).await.map_err(|_| Gone)
    }
}

impl LogSink for BodySink {
    async fn send(&self, output: Output<'_>) -> Result<(), Gone> {
        let chunk = match output {
            // Both wait for the client: a body has no way to skip lines, and a
            // follower held back lags on the shared stream, which is then said.
            Output::History { line, replica } | Output::Live { line, replica } => {
                self.format.render(line, replica)
            }
            Output::Lagged(n) => Some(self.format.notice(
                "lagged",
                &format!("{n} lines dropped: the client fell behind"),
                None,
            )),
            Output::End {
                container_id,
                replica,
                reason,
            } => Some(
                self.format
                    .notice("end", reason, Some((container_id, replica))),
            ),
            Output::AppGone => Some(
                self.format
                    .notice("end", "the application was deleted", None),
            ),
        };
        match chunk {
            Some(chunk) => self.write(chunk).await,
            None => Ok(()),
        }
    }

    async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// A streaming response in `format`, and the sink that writes its body: the body
/// ends when every clone of the sink is dropped.
#[must_use]
pub fn streaming(format: Format) -> (BodySink, Response) {
    let (tx, rx) = mpsc::channel::<String>(CHUNKS_AHEAD);
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    }));
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    (BodySink { tx, format }, response)
}

/// A log read that failed, as the API answers it: an unreachable engine is a 503, a
/// container gone or going from it (404, or 409 while it is removed) a 404 naming
/// `id`, anything else a 500.
pub(crate) fn log_error(err: crate::logs::LogError, id: &str) -> AppError {
    match err {
        crate::logs::LogError::Engine(_) => AppError::Unavailable(err.to_string()),
        // Gone, or going: the engine answers 409 for a container being removed or dead.
        crate::logs::LogError::Read(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => AppError::NotFound(format!("container {id} is gone from the engine")),
        crate::logs::LogError::Read(other) => AppError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stream: Stream) -> LogLine {
        LogLine {
            container_id: "c1".to_owned(),
            node: None,
            stream,
            line: "hi".to_owned(),
            timestamp: "2026-12-01T10:00:00Z".to_owned(),
            at_ns: 0,
        }
    }

    fn format(ndjson: bool) -> Format {
        Format {
            ndjson,
            timestamps: false,
            only: None,
            replica_prefix: true,
        }
    }

    #[test]
    fn json_lines_carry_the_replica_only_in_an_applications_logs() {
        let f = format(true);
        assert_eq!(
            f.render(&line(Stream::Stderr), Some(1)).unwrap(),
            "{\"containerId\":\"c1\",\"replica\":1,\"stream\":\"stderr\",\"line\":\"hi\",\"timestamp\":\"2026-12-01T10:00:00Z\"}\n"
        );
        assert_eq!(
            f.render(&line(Stream::Stdout), None).unwrap(),
            "{\"containerId\":\"c1\",\"stream\":\"stdout\",\"line\":\"hi\",\"timestamp\":\"2026-12-01T10:00:00Z\"}\n"
        );
        assert_eq!(
            f.notice("end", "stopped", Some(("c1", Some(0)))),
            "{\"type\":\"end\",\"message\":\"stopped\",\"containerId\":\"c1\",\"replica\":0}\n"
        );
        assert_eq!(
            f.notice("lagged", "3 lines", None),
            "{\"type\":\"lagged\",\"message\":\"3 lines\"}\n"
        );
    }

    #[test]
    fn swarm_lines_name_their_node_in_json_and_in_the_prefix() {
        let mut tagged = line(Stream::Stdout);
        tagged.node = Some("worker-2".into());
        assert_eq!(
            format(true).render(&tagged, Some(1)).unwrap(),
            "{\"containerId\":\"c1\",\"replica\":1,\"node\":\"worker-2\",\"stream\":\"stdout\",\"line\":\"hi\",\"timestamp\":\"2026-12-01T10:00:00Z\"}\n"
        );
        assert_eq!(
            format(false).render(&tagged, Some(1)).unwrap(),
            "[r1 worker-2] hi\n"
        );
        assert_eq!(
            format(false)
                .render(&line(Stream::Stdout), Some(1))
                .unwrap(),
            "[r1] hi\n"
        );
    }

    #[test]
    fn a_selection_names_each_bad_field() {
        let ok = Selection::parse(10, Some("2026-12-01T10:00:00.5Z"), Some("stderr")).unwrap();
        assert_eq!(ok.since, Some(1_796_119_200_500_000_000));
        assert_eq!(ok.only, Some(Stream::Stderr));
        assert_eq!(
            Selection::parse(0, Some("60"), None).unwrap().since,
            Some(60_000_000_000)
        );
        let Err(AppError::Validation(fields)) =
            Selection::parse(MAX_TAIL + 1, Some("yesterday"), Some("both"))
        else {
            panic!("accepted");
        };
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            ["since", "stream", "tail"]
        );
    }

    #[test]
    fn text_lines_are_prefixed_filtered_and_stamped_as_asked() {
        let f = format(false);
        assert_eq!(
            f.render(&line(Stream::Stdout), Some(2)).unwrap(),
            "[r2] hi\n"
        );
        assert_eq!(f.render(&line(Stream::Stdout), None).unwrap(), "hi\n");
        let stamped = Format {
            timestamps: true,
            only: Some(Stream::Stderr),
            replica_prefix: false,
            ..f
        };
        assert_eq!(stamped.render(&line(Stream::Stdout), Some(2)), None);
        assert_eq!(
            stamped.render(&line(Stream::Stderr), Some(2)).unwrap(),
            "2026-12-01T10:00:00Z hi\n"
        );
        assert_eq!(
            f.notice("end", "stopped", Some(("c1", Some(1)))),
            "[r1] [longin: stopped]\n"
        );
    }
}
