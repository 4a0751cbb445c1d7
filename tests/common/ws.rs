//! A WebSocket client for the live streams.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects to `path` (e.g. `/ws/metrics`) without authenticating.
    pub async fn connect(app: &TestApp, path: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{}{path}", app.addr))
            .await
            .expect("websocket connect");
        Self { stream }
    }

    /// Connects with a small receive buffer: a client that stops reading soon makes
    /// the server's writes wait.
    pub async fn connect_small_buffer(app: &TestApp, path: &str, bytes: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        let tcp = socket.connect(app.addr).await.unwrap();
        let (stream, _) = tokio_tungstenite::client_async(
            format!("ws://{}{path}", app.addr),
            MaybeTlsStream::Plain(tcp),
        )
        .await
        .expect("websocket connect");
        Self { stream }
    }

    /// Connects and authenticates, expecting `ready`.
    pub async fn authenticated(app: &TestApp, path: &str, token: &str) -> Self {
        let mut ws = Self::connect(app, path).await;
        ws.send(json!({"type": "auth", "token": token})).await;
        let ready = ws.recv(10).await.expect("an answer to auth");
        assert_eq!(ready, json!({"type": "ready"}));
        ws
    }

    pub async fn send(&mut self, value: Value) {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("websocket send");
    }

    /// The next message; `None` once the server closed the connection. Panics after
    /// `secs` seconds without one.
    pub async fn recv(&mut self, secs: u64) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no websocket message within {secs} s"));
            match next {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next message of type `kind` that satisfies `accept`, within `secs` seconds.
    pub async fn next_matching(
        &mut self,
        kind: &str,
        secs: u64,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no matching {kind} message within {secs} s"
            );
            let m = self.next_of_type(kind, left.as_secs().max(1)).await;
            if accept(&m) {
                return m;
            }
        }
    }

    /// The next message of type `kind`, skipping others, within `secs` seconds.
    pub async fn next_of_type(&mut self, kind: &str, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "no {kind} message within {secs} s");
            let message = self
                .recv(left.as_secs().max(1))
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {kind}"));
            if message["type"] == kind {
                return message;
            }
        }
    }
}
