//! One PostgreSQL LISTEN loop for every channel the store follows (application
//! changes, account changes): connect, LISTEN, hand each notification on, and on any
//! failure reconnect with backoff (500 ms doubling to 30 s) until cancelled.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Listens on `channel` at `url` until `cancel` fires: every notification's payload
/// goes to `on_note`; `on_up` hears when the connection starts and stops listening
/// (what was notified while it was down is lost, so callers stop trusting caches).
pub(crate) async fn listen(
    url: &str,
    channel: &str,
    cancel: &CancellationToken,
    on_note: impl Fn(&str),
    on_up: impl Fn(bool),
) {
    let mut wait = Duration::from_millis(500);
    loop {
        match sqlx::postgres::PgListener::connect(url).await {
            Ok(mut listener) => match listener.listen(channel).await {
                Ok(()) => {
                    tracing::info!(channel, "listening for changes");
                    on_up(true);
                    wait = Duration::from_millis(500);
                    let lost = loop {
                        tokio::select! {
                            () = cancel.cancelled() => break None,
                            note = listener.recv() => match note {
                                Ok(note) => on_note(note.payload()),
                                Err(err) => break Some(err),
                            },
                        }
                    };
                    on_up(false);
                    match lost {
                        None => return,
                        Some(err) => {
                            tracing::warn!(channel, error = %err, "LISTEN connection lost; reconnecting");
                        }
                    }
                }
                Err(err) => tracing::warn!(channel, error = %err, "LISTEN failed"),
            },
            Err(err) => tracing::warn!(channel, error = %err, "cannot open the LISTEN connection"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}
