//! Containers' logs: lines as the engine frames them, and the shared follow streams.

pub mod hub;
pub mod line;

pub use hub::{LogError, LogEvent, LogHub, StreamPermit};
pub use line::{LogLine, Stream};
