//! Where followed log lines go: the seam between the followers and the transports
//! (a WebSocket outbox, an HTTP streaming body), each with its own policy for a slow
//! client.

use std::future::Future;

use super::line::LogLine;

/// Something a follower hands to its sink.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// A line of history the client asked for: a sink waits for room rather than
    /// drop it.
    History {
        line: &'a LogLine,
        replica: Option<i64>,
    },
    /// A line as it is printed: a sink may drop it for a slow client.
    Live {
        line: &'a LogLine,
        replica: Option<i64>,
    },
    /// This many live lines were lost before they reached the sink.
    Lagged(u64),
    /// A container's output ended (it stopped, or reading failed), and why.
    End {
        container_id: &'a str,
        replica: Option<i64>,
        reason: &'a str,
    },
    /// The application is gone: nothing more will come.
    AppGone,
}

/// The client the sink writes to has gone away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the log client went away")]
pub struct Gone;

/// A destination for followed lines.
pub trait LogSink: Clone + Send + Sync + 'static {
    /// Takes `output`, waiting for the client as the sink's policy says.
    ///
    /// # Errors
    /// The client has gone: the follower stops.
    fn send(&self, output: Output<'_>) -> impl Future<Output = Result<(), Gone>> + Send;

    /// Resolves once the client has gone, so that a follower of a quiet container
    /// (or of a filtered stream) does not outlive it.
    fn closed(&self) -> impl Future<Output = ()> + Send;
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use super::{Gone, LogSink, Output};

    /// A sink that records what it is sent as `replica:line` (`-1:` without a
    /// replica), `end ID`, `lagged N`, `gone`.
    #[derive(Clone, Default)]
    pub struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Recorder {
        pub fn seen(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl LogSink for Recorder {
        async fn send(&self, output: Output<'_>) -> Result<(), Gone> {
            let text = match output {
                Output::History { line, replica } | Output::Live { line, replica } => {
                    format!("{}:{}", replica.unwrap_or(-1), line.line)
                }
                Output::End { container_id, .. } => format!("end {container_id}"),
                Output::Lagged(n) => format!("lagged {n}"),
                Output::AppGone => "gone".to_owned(),
            };
            self.0.lock().unwrap().push(text);
            Ok(())
        }

        async fn closed(&self) {
            std::future::pending::<()>().await;
        }
    }
}
