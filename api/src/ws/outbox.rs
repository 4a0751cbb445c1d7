//! What waits to be written to one WebSocket client, as serialized messages. A slow client never slows the
//! producers: values with a key (metrics and status of an app) keep only the newest,
//! and the bounded line queue drops what does not fit and says how much, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::protocol::ServerMessage;
use crate::logs::{Gone, LogSink, Output};

/// A message as it goes on the wire: a [`ServerMessage`], or text already serialized
/// (the hot path of log lines skips building a message).
pub trait IntoText {
    fn into_text(self) -> String;
}

impl IntoText for String {
    fn into_text(self) -> String {
        self
    }
}

/// A queued message, or how many were dropped at that point.
#[derive(Debug)]
enum Item {
    Message(String),
    Dropped(u64),
}

#[derive(Debug, Default)]
struct State {
    /// Newest value per key, in the order the keys first appeared.
    latest: Vec<(String, String)>,
    queue: VecDeque<Item>,
}

impl State {
    fn mark_dropped(&mut self, n: u64) {
        metrics::counter!("longin_ws_dropped_messages_total").increment(n);
        match self.queue.back_mut() {
            Some(Item::Dropped(m)) => *m += n,
            _ => self.queue.push_back(Item::Dropped(n)),
        }
    }
}

/// One client's pending messages.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    capacity: usize,
    notify: Notify,
    /// Wakes producers waiting for room in the line queue (after each drain).
    room: Notify,
}

impl Outbox {
    /// An outbox whose line queue holds `capacity` messages.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            capacity,
            notify: Notify::new(),
            room: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the pending value under `key` (or queues it).
    pub fn put_latest(&self, key: String, value: impl IntoText) {
        {
            let mut state = self.state();
            match state.latest.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value.into_text(),
                None => state.latest.push((key, value.into_text())),
            }
        }
        self.notify.notify_one();
    }

    /// Queues the value under `key` unless a value is pending there already (which is
    /// then at least as new).
    pub fn put_if_absent(&self, key: String, value: impl IntoText) {
        {
            let mut state = self.state();
            if state.latest.iter().any(|(k, _)| *k == key) {
                return;
            }
            state.latest.push((key, value.into_text()));
        }
        self.notify.notify_one();
    }

    /// Drops the pending values whose key starts with `prefix`.
    pub fn forget(&self, prefix: &str) {
        self.state().latest.retain(|(k, _)| !k.starts_with(prefix));
    }

    /// Queues a line; if the queue is full the line is dropped and counted.
    pub fn push(&self, value: impl IntoText) {
        {
            let mut state = self.state();
            if state.queue.len() >= self.capacity {
                state.mark_dropped(1);
                return;
            }
            state.queue.push_back(Item::Message(value.into_text()));
        }
        self.notify.notify_one();
    }

    /// Queues a line once the queue has room, waiting for the writer to take what is
    /// there: for history, which the client asked for in full but must not pile up in
    /// memory faster than it reads.
    pub async fn push_when_room(&self, value: impl IntoText) {
        let text = value.into_text();
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.state();
                if state.queue.len() < self.capacity {
                    state.queue.push_back(Item::Message(text));
                    drop(state);
                    self.notify.notify_one();
                    return;
                }
            }
            room.await;
        }
    }

    /// Counts lines lost before they reached this outbox.
    pub fn add_dropped(&self, n: u64) {
        self.state().mark_dropped(n);
        self.notify.notify_one();
    }

    /// Queues a message that must not be lost (an end, an error, a reply), even over
    /// the capacity.
    pub fn push_always(&self, value: impl IntoText) {
        self.state()
            .queue
            .push_back(Item::Message(value.into_text()));
        self.notify.notify_one();
    }

    /// Everything pending, in order: queued messages with `lagged` where lines were
    /// dropped, then the newest keyed values.
    fn drain(&self) -> Vec<String> {
        let mut state = self.state();
        let mut out: Vec<String> = state
            .queue
            .drain(..)
            .map(|item| match item {
                Item::Message(value) => value,
                Item::Dropped(n) => ServerMessage::Lagged { dropped: n }.into_text(),
            })
            .collect();
        out.extend(state.latest.drain(..).map(|(_, v)| v));
        drop(state);
        self.room.notify_waiters();
        out
    }

    /// Waits for something to write and takes all of it.
    pub async fn next_batch(&self) -> Vec<String> {
        loop {
            let notified = self.notify.notified();
            let batch = self.drain();
            if !batch.is_empty() {
                return batch;
            }
            notified.await;
        }
    }
}

/// The outbox as the destination of log followers: history waits for room (the
/// client asked for all of it), live lines drop for a slow client and are counted,
/// ends are never lost. An application's end is not said: the subscription's own
/// protocol has no message for it, and unsubscribing is the client's to do.
impl LogSink for Arc<Outbox> {
    async fn send(&self, output: Output<'_>) -> Result<(), Gone> {
        match output {
            Output::History { line, .. } => self.push_when_room(line.to_ws_message()).await,
            Output::Live { line, .. } => self.push(line.to_ws_message()),
            Output::Lagged(n) => self.add_dropped(n),
            Output::End {
                container_id,
                reason,
                ..
            } => self.push_always(ServerMessage::End {
                container_id,
                reason,
            }),
            Output::AppGone => {}
        }
        Ok(())
    }

    async fn closed(&self) {
        // The connection aborts its followers when the client leaves.
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn history_waits_for_room_instead_of_piling_up() {
        let outbox = std::sync::Arc::new(Outbox::new(2));
        let producer = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                for i in 0..5 {
                    outbox.push_when_room(format!("line {i}")).await;
                }
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let batch = outbox.next_batch().await;
            assert!(batch.len() <= 2, "more than the capacity queued: {batch:?}");
            seen.extend(batch);
        }
        producer.await.expect("producer");
        assert_eq!(
            seen,
            (0..5).map(|i| format!("line {i}")).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn keyed_values_keep_the_newest_and_lines_report_drops_in_order() {
        let outbox = Outbox::new(2);
        outbox.put_latest("metrics:a".into(), json!(1).to_string());
        outbox.put_latest("metrics:b".into(), json!(10).to_string());
        outbox.put_latest("metrics:a".into(), json!(2).to_string());
        outbox.push(json!("l1").to_string());
        outbox.push(json!("l2").to_string());
        outbox.push(json!("l3").to_string()); // over capacity
        outbox.push(json!("l4").to_string());
        outbox.push_always(json!("end").to_string());
        assert_eq!(
            outbox.next_batch().await,
            [
                json!("l1").to_string(),
                json!("l2").to_string(),
                ServerMessage::Lagged { dropped: 2 }.into_text(),
                json!("end").to_string(),
                json!(2).to_string(),
                json!(10).to_string()
            ]
        );
        // Drained: room again, no drop reported twice.
        outbox.push(json!("l5").to_string());
        assert_eq!(outbox.next_batch().await, [json!("l5").to_string()]);
    }

    #[tokio::test]
    async fn a_snapshot_never_replaces_a_pending_value_and_forget_drops_keys() {
        let outbox = Outbox::new(4);
        outbox.put_latest("status:a".into(), json!("event").to_string());
        outbox.put_if_absent("status:a".into(), json!("snapshot").to_string());
        outbox.put_if_absent("status:b".into(), json!("snapshot b").to_string());
        outbox.put_latest("metrics:b".into(), json!(1).to_string());
        outbox.forget("metrics:b");
        assert_eq!(
            outbox.next_batch().await,
            [json!("event").to_string(), json!("snapshot b").to_string()]
        );
    }

    #[tokio::test]
    async fn next_batch_waits_for_something() {
        let outbox = std::sync::Arc::new(Outbox::new(4));
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.next_batch().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        outbox.add_dropped(5);
        assert_eq!(
            waiting.await.unwrap(),
            [ServerMessage::Lagged { dropped: 5 }.into_text()]
        );
    }
}
