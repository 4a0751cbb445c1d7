//! Containers' logs: lines as the engine frames them, the shared engine streams, and
//! the followers that read them — one container's, or an application's across
//! restarts and rollouts — into a [`LogSink`] (a WebSocket outbox, an HTTP body).

pub mod attach;
pub mod body;
pub mod follow;
pub mod hub;
pub mod line;
pub mod merge;
pub mod sink;

pub use follow::{AppFollower, ContainerLogs, History, follow_container};
pub use hub::{LogError, LogEvent, LogHub, StreamPermit};
pub use line::{LogLine, Stream};
pub use sink::{Gone, LogSink, Output};
