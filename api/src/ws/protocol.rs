//! The WebSocket messages. Clients send `auth` first, then `subscribe` /
//! `unsubscribe` / `ping`; every server message has a `type`. Pure: parsing and the
//! shapes of what the server sends.

use std::borrow::Cow;

use longin_crds::application::ApplicationStatus;
use longin_store::bus::{Aggregate, ContainerMetrics};
use serde::{Deserialize, Serialize};

use super::outbox::IntoText;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message: an access token (a browser cannot set headers on a
    /// WebSocket, and tokens never go in URLs).
    Auth {
        token: String,
    },
    #[serde(rename_all = "camelCase")]
    Subscribe {
        app: Option<String>,
        container_id: Option<String>,
        /// Logs: lines of history first (default 100).
        tail: Option<usize>,
        /// Logs: with `app`, that revision's build log instead of the app's output.
        revision: Option<i64>,
    },
    #[serde(rename_all = "camelCase")]
    Unsubscribe {
        app: Option<String>,
        container_id: Option<String>,
    },
    Ping,
}

/// What a subscription is about; written as `{"app": …}` or `{"containerId": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Topic {
    #[serde(rename = "app")]
    App(String),
    #[serde(rename = "containerId")]
    Container(String),
}

impl Topic {
    /// Exactly one of `app` and `containerId`.
    ///
    /// # Errors
    /// Neither or both given.
    pub fn from_fields(app: Option<String>, container_id: Option<String>) -> Result<Self, String> {
        match (app, container_id) {
            (Some(app), None) => Ok(Self::App(app)),
            (None, Some(id)) => Ok(Self::Container(id)),
            _ => Err("give exactly one of `app` and `containerId`".to_owned()),
        }
    }
}

/// Parses a client message, with a message saying what is wrong.
///
/// # Errors
/// Not JSON, no known `type`, or fields that do not fit it.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| {
        format!("unreadable message ({e}); expected {{\"type\": \"auth\" | \"subscribe\" | \"unsubscribe\" | \"ping\", …}}")
    })
}

/// What the server sends, each with its `type`. Log lines are not here: they are
/// written by [`LogLine::to_ws_message`](crate::logs::LogLine::to_ws_message), the
/// hot path of a busy stream.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage<'a> {
    /// Authenticated: subscriptions may follow.
    Ready,
    Pong,
    Error {
        code: &'a str,
        message: Cow<'a, str>,
    },
    Subscribed(&'a Topic),
    Unsubscribed(&'a Topic),
    /// Lines dropped for a slow client at this point.
    Lagged {
        dropped: u64,
    },
    /// A container's output ended, and why.
    #[serde(rename_all = "camelCase")]
    End {
        container_id: &'a str,
        reason: &'a str,
    },
    /// An application's status, its fields beside its identity.
    #[serde(rename_all = "camelCase")]
    Status {
        app_id: &'a str,
        app: &'a str,
        #[serde(flatten)]
        status: &'a ApplicationStatus,
    },
    /// An application's metrics cycle.
    #[serde(rename_all = "camelCase")]
    Metrics {
        app_id: &'a str,
        app: &'a str,
        container_metrics: &'a [ContainerMetrics],
        aggregated: &'a Aggregate,
        timestamp: &'a str,
    },
    /// A line of a revision's build log.
    #[serde(rename_all = "camelCase")]
    BuildLog {
        app: &'a str,
        revision: i64,
        line: &'a str,
    },
    /// A revision's build ended (its image is rolling out, or it failed, was
    /// cancelled or superseded): no more lines.
    #[serde(rename_all = "camelCase")]
    BuildEnd {
        app: &'a str,
        revision: i64,
        status: &'a str,
        message: &'a str,
    },
    /// A reconcile failed (the admin stream).
    #[serde(rename_all = "camelCase")]
    ReconcileError {
        app_id: &'a str,
        message: &'a str,
        timestamp: &'a str,
    },
}

impl<'a> ServerMessage<'a> {
    /// An `error` with its code and message.
    #[must_use]
    pub fn error(code: &'a str, message: impl Into<Cow<'a, str>>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}

impl IntoText for ServerMessage<'_> {
    fn into_text(self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string(&self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_by_type() {
        assert_eq!(
            parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientMessage::Auth { token: "t".into() })
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","containerId":"abc","tail":5}"#),
            Ok(ClientMessage::Subscribe {
                app: None,
                container_id: Some("abc".into()),
                tail: Some(5),
                revision: None,
            })
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","app":"web","revision":7}"#),
            Ok(ClientMessage::Subscribe {
                app: Some("web".into()),
                container_id: None,
                tail: None,
                revision: Some(7),
            })
        );
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        for bad in [
            "",
            "[]",
            r#"{"type":"shout"}"#,
            r#"{"type":"auth"}"#,
            r#"{"type":"subscribe","app":1}"#,
            r#"{"type":"subscribe","app":"a","extra":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_topic_is_an_app_or_a_container() {
        assert_eq!(
            Topic::from_fields(Some("a".into()), None),
            Ok(Topic::App("a".into()))
        );
        assert!(Topic::from_fields(None, None).is_err());
        assert!(Topic::from_fields(Some("a".into()), Some("b".into())).is_err());
    }

    fn json(message: ServerMessage<'_>) -> serde_json::Value {
        serde_json::from_str(&message.into_text()).unwrap()
    }

    #[test]
    fn server_messages_carry_their_type_and_keep_their_field_names() {
        use serde_json::json;
        assert_eq!(json(ServerMessage::Ready), json!({"type": "ready"}));
        assert_eq!(json(ServerMessage::Pong), json!({"type": "pong"}));
        assert_eq!(
            json(ServerMessage::Lagged { dropped: 3 }),
            json!({"type": "lagged", "dropped": 3})
        );
        assert_eq!(
            json(ServerMessage::error("not_found", "m")),
            json!({"type": "error", "code": "not_found", "message": "m"})
        );
        let app = Topic::App("web".into());
        let container = Topic::Container("c1".into());
        assert_eq!(
            json(ServerMessage::Subscribed(&app)),
            json!({"type": "subscribed", "app": "web"})
        );
        assert_eq!(
            json(ServerMessage::Unsubscribed(&container)),
            json!({"type": "unsubscribed", "containerId": "c1"})
        );
        assert_eq!(
            json(ServerMessage::End {
                container_id: "c1",
                reason: "stopped"
            }),
            json!({"type": "end", "containerId": "c1", "reason": "stopped"})
        );
        assert_eq!(
            json(ServerMessage::ReconcileError {
                app_id: "a1",
                message: "m",
                timestamp: "t"
            }),
            json!({"type": "reconcileError", "appId": "a1", "message": "m", "timestamp": "t"})
        );
    }

    #[test]
    fn a_status_message_has_the_status_fields_beside_the_app() {
        let status = ApplicationStatus {
            ready_replicas: 2,
            ..ApplicationStatus::default()
        };
        let expected = {
            let mut m = serde_json::json!({"type": "status", "appId": "a1", "app": "web"});
            let serde_json::Value::Object(fields) = serde_json::to_value(&status).unwrap() else {
                panic!("a status is an object");
            };
            m.as_object_mut().unwrap().extend(fields);
            m
        };
        assert_eq!(
            json(ServerMessage::Status {
                app_id: "a1",
                app: "web",
                status: &status
            }),
            expected
        );
    }
}
