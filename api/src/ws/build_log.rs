//! A revision's build log on `/ws/logs` (`{"type": "subscribe", "app": NAME,
//! "revision": N}`): the log stored so far, then the builder's new lines as it
//! publishes them (a batch a second, from whichever process builds), then `buildEnd`.
//! The bus is followed before the stored log is read, and a batch says how many
//! lines came before it, so no line is lost or sent twice in between.

use std::sync::Arc;

use longin_store::bus::Event;
use longin_store::deployments::DeploymentStatus;
use tokio::sync::broadcast;

use super::outbox::Outbox;
use super::protocol::ServerMessage;
use crate::context::ApiContext;

/// How many lines the build had when `stored` was written: its lines, with the ones
/// a capped log left out (`… N lines omitted …`) counted back in.
#[must_use]
pub fn lines_behind(stored: &str) -> usize {
    let mut count = 0;
    for line in stored.lines() {
        count += 1;
        if let Some(n) = line
            .strip_prefix("… ")
            .and_then(|rest| rest.strip_suffix(" lines omitted …"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            // The marker stands for n lines and is none itself.
            count += n - 1;
        }
    }
    count
}

/// Follows revision `revision` of app `app_id` into `outbox` until the build ends.
pub async fn follow_build(
    ctx: ApiContext,
    app_id: String,
    app: String,
    revision: i64,
    outbox: Arc<Outbox>,
) {
    let mut events = ctx.bus.subscribe();
    let stored = match ctx.store.deployment_log(&app_id, revision).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read a build log");
            return outbox.push_always(ServerMessage::error(
                "unavailable",
                "cannot read the build log",
            ));
        }
    };
    let mut seen = lines_behind(&stored);
    for line in stored.lines() {
        outbox
            .push_when_room(ServerMessage::BuildLog {
                app: &app,
                revision,
                line,
            })
            .await;
    }
    if ended(&ctx, &app_id, &app, revision, &outbox).await {
        return;
    }
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                outbox.add_dropped(n);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Event::BuildLog {
            app_id: id,
            revision: rev,
            first,
            lines,
            done,
        } = event.as_ref()
        else {
            continue;
        };
        if *id != app_id || *rev != revision {
            continue;
        }
        for (i, line) in lines.iter().enumerate() {
            if first + i >= seen {
                outbox.push(ServerMessage::BuildLog {
                    app: &app,
                    revision,
                    line,
                });
            }
        }
        seen = seen.max(first + lines.len());
        if *done && ended(&ctx, &app_id, &app, revision, &outbox).await {
            return;
        }
    }
}

/// Sends `buildEnd` if the revision is past building (its image built, or its end).
async fn ended(ctx: &ApiContext, app_id: &str, app: &str, revision: i64, outbox: &Outbox) -> bool {
    let Ok(Some(found)) = ctx.store.deployment(app_id, revision).await else {
        return false;
    };
    if matches!(
        found.status,
        DeploymentStatus::Queued | DeploymentStatus::Building
    ) {
        return false;
    }
    outbox.push_always(ServerMessage::BuildEnd {
        app,
        revision,
        status: found.status.as_str(),
        message: &found.message,
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_log_counts_the_lines_it_left_out() {
        assert_eq!(lines_behind(""), 0);
        assert_eq!(lines_behind("a\nb\n"), 2);
        assert_eq!(lines_behind("a\n… 40 lines omitted …\nz\n"), 42);
    }
}
