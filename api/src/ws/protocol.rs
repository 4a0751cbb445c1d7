//! The WebSocket messages. Clients send `auth` first, then `subscribe` /
//! `unsubscribe` / `ping`; every server message has a `type`. Pure: parsing and the
//! shapes of what the server sends.

use serde::Deserialize;
use serde_json::{Value, json};

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
    },
    #[serde(rename_all = "camelCase")]
    Unsubscribe {
        app: Option<String>,
        container_id: Option<String>,
    },
    Ping,
}

/// What a subscription is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    App(String),
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

#[must_use]
pub fn ready() -> Value {
    json!({"type": "ready"})
}

#[must_use]
pub fn pong() -> Value {
    json!({"type": "pong"})
}

#[must_use]
pub fn error(code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message})
}

#[must_use]
pub fn subscribed(topic: &Topic) -> Value {
    match topic {
        Topic::App(app) => json!({"type": "subscribed", "app": app}),
        Topic::Container(id) => json!({"type": "subscribed", "containerId": id}),
    }
}

#[must_use]
pub fn unsubscribed(topic: &Topic) -> Value {
    match topic {
        Topic::App(app) => json!({"type": "unsubscribed", "app": app}),
        Topic::Container(id) => json!({"type": "unsubscribed", "containerId": id}),
    }
}

#[must_use]
pub fn lagged(dropped: u64) -> Value {
    json!({"type": "lagged", "dropped": dropped})
}

#[must_use]
pub fn end(container_id: &str, reason: &str) -> Value {
    json!({"type": "end", "containerId": container_id, "reason": reason})
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
                tail: Some(5)
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

    #[test]
    fn server_messages_carry_their_type() {
        assert_eq!(lagged(3), json!({"type":"lagged","dropped":3}));
        assert_eq!(error("not_found", "m")["type"], "error");
    }
}
