//! One log line as the engine frames it: which stream, when, what. Pure.

use bollard::container::LogOutput;
use std::sync::Arc;

use serde::Serialize;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// A line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub container_id: String,
    /// The Swarm node the replica runs on (none on one engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<Arc<str>>,
    pub stream: Stream,
    pub line: String,
    /// RFC 3339 with nanoseconds, as the engine stamped it.
    pub timestamp: String,
    /// The same instant in Unix nanoseconds, to order and de-duplicate.
    #[serde(skip)]
    pub at_ns: i64,
}

impl LogLine {
    /// The line as a WebSocket message, `{"type":"log", containerId, stream, line,
    /// timestamp}` (and `node` on Swarm). Written by hand rather than as a `ServerMessage` variant: it is
    /// the hot path of a busy log stream (one per line, measured by the
    /// observability bench), and this skips serde's per-field machinery; the unit
    /// test below holds it to the same JSON.
    #[must_use]
    pub fn to_ws_message(&self) -> String {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let node = self
            .node
            .as_deref()
            .map_or_else(String::new, |n| format!(r#","node":{}"#, quoted(n)));
        format!(
            r#"{{"type":"log","containerId":{},"stream":"{}","line":{},"timestamp":{}{node}}}"#,
            quoted(&self.container_id),
            self.stream.as_str(),
            quoted(&self.line),
            quoted(&self.timestamp)
        )
    }
}

/// Reads a frame the engine sent with `timestamps=true`: `<RFC 3339 time> <text>`.
/// Input and console frames, and frames without a readable time, are not lines.
#[must_use]
pub fn parse_frame(
    container_id: &str,
    node: Option<&Arc<str>>,
    frame: &LogOutput,
) -> Option<LogLine> {
    let (stream, bytes) = match frame {
        LogOutput::StdOut { message } => (Stream::Stdout, message),
        LogOutput::StdErr { message } => (Stream::Stderr, message),
        LogOutput::StdIn { .. } | LogOutput::Console { .. } => return None,
    };
    let text = String::from_utf8_lossy(bytes);
    let (timestamp, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let at_ns = chrono::DateTime::parse_from_rfc3339(timestamp)
        .ok()?
        .timestamp_nanos_opt()?;
    let line = rest.strip_suffix('\n').unwrap_or(rest);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Some(LogLine {
        container_id: container_id.to_owned(),
        node: node.cloned(),
        stream,
        line: line.to_owned(),
        timestamp: timestamp.to_owned(),
        at_ns,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn frames_become_lines_with_their_stream_and_time() {
        let out = LogOutput::StdOut {
            message: Bytes::from_static(b"2026-11-26T01:28:09.123456789Z hello world\n"),
        };
        let line = parse_frame("c1", None, &out).unwrap();
        assert_eq!(line.stream, Stream::Stdout);
        assert_eq!(line.line, "hello world");
        assert_eq!(line.timestamp, "2026-11-26T01:28:09.123456789Z");
        let err = LogOutput::StdErr {
            message: Bytes::from_static(b"2026-11-26T01:28:09.5Z oops\r\n"),
        };
        let err = parse_frame("c1", None, &err).unwrap();
        assert_eq!((err.stream, err.line.as_str()), (Stream::Stderr, "oops"));
        // Trailing zeros trimmed by the engine still order correctly.
        assert!(err.at_ns > line.at_ns);
    }

    #[test]
    fn the_websocket_message_is_json_with_its_type() {
        let out = LogOutput::StdErr {
            message: Bytes::from_static(b"2026-11-26T01:28:09Z say \"hi\"\t\\ \xff\n"),
        };
        let line = parse_frame("c1", None, &out).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line.to_ws_message()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "log", "containerId": "c1", "stream": "stderr",
                "line": "say \"hi\"\t\\ \u{fffd}", "timestamp": "2026-11-26T01:28:09Z"})
        );
    }

    #[test]
    fn a_swarm_line_names_its_node() {
        let out = LogOutput::StdOut {
            message: Bytes::from_static(b"2026-11-26T01:28:09Z up\n"),
        };
        let node: Arc<str> = "worker-1".into();
        let line = parse_frame("t1", Some(&node), &out).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line.to_ws_message()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "log", "containerId": "t1", "stream": "stdout",
                "line": "up", "timestamp": "2026-11-26T01:28:09Z", "node": "worker-1"})
        );
    }

    #[test]
    fn empty_lines_survive_and_junk_is_dropped() {
        let empty = LogOutput::StdOut {
            message: Bytes::from_static(b"2026-11-26T01:28:09Z \n"),
        };
        assert_eq!(parse_frame("c", None, &empty).unwrap().line, "");
        let junk = LogOutput::StdOut {
            message: Bytes::from_static(b"no time here\n"),
        };
        assert_eq!(parse_frame("c", None, &junk), None);
        let console = LogOutput::Console {
            message: Bytes::from_static(b"2026-11-26T01:28:09Z x\n"),
        };
        assert_eq!(parse_frame("c", None, &console), None);
    }
}
