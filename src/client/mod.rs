//! The `longin` CLI's client side: talks to a Longin server over its REST API with a
//! saved session, refreshing the access token by itself.

pub mod answers;
pub mod commands;
pub mod credentials;
pub mod kubeconfig;
pub mod observe;
pub mod output;
pub mod rollout;
pub mod source;
pub mod tokens;

use anyhow::{Context as _, anyhow, bail};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use answers::{ErrorAnswer, Tokens};
use credentials::Credentials;

/// A signed-in connection to a server. A clone shares the session: only one copy
/// should go on using it, or their token refreshes would spend each other's token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    credentials: Credentials,
    /// The user whose applications the commands act on (admins), else the caller's.
    owner: Option<String>,
}

/// The HTTP client every command uses.
///
/// # Errors
/// Only if the TLS-less client cannot be built.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("longin-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

/// Turns an error answer into a readable error: the server's message, each bad field on
/// its own line, and where a document is malformed.
///
/// # Errors
/// Always, when `res` is not a success.
pub async fn check(res: Response) -> anyhow::Result<Response> {
    if res.status().is_success() {
        return Ok(res);
    }
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let Ok(answer) = serde_json::from_str::<ErrorAnswer>(&text) else {
        bail!("server answered {status}: {}", text.trim());
    };
    let error = answer.error;
    let mut message = error.message.unwrap_or_else(|| "request failed".to_owned());
    for (field, why) in error.fields {
        message.push_str(&format!("\n  {field}: {why}"));
    }
    Err(anyhow!(message).context(format!("server answered {status}")))
}

/// A success answer's JSON body as `T`; an error answer as [`check`] words it.
///
/// # Errors
/// The answer is an error, or its body is not a `T`.
pub async fn read_json<T: DeserializeOwned>(res: Response) -> anyhow::Result<T> {
    let url = res.url().path().to_owned();
    check(res)
        .await?
        .json()
        .await
        .with_context(|| format!("reading the server's answer to {url}"))
}

impl ApiClient {
    /// The saved session, pointed at `server` when given.
    ///
    /// # Errors
    /// Nobody is logged in.
    pub fn from_saved(server: Option<&str>) -> anyhow::Result<Self> {
        let credentials = credentials::load()?
            .context("not logged in; run `longin login --server URL --username NAME`")?;
        // Tokens go only to the server that issued them: another server (a typo, a
        // hostile one) would otherwise receive a working refresh token.
        if let Some(server) = server.map(|s| s.trim_end_matches('/'))
            && server != credentials.server
        {
            bail!(
                "the saved session is for {}, not {server}; run `longin login --server {server} --username NAME` first",
                credentials.server
            );
        }
        Ok(Self {
            http: http_client()?,
            credentials,
            owner: None,
        })
    }

    /// Acts on `owner`'s applications (an admin's `--owner`) instead of the caller's.
    #[must_use]
    pub fn acting_for(mut self, owner: Option<String>) -> Self {
        self.owner = owner;
        self
    }

    /// [`send`](Self::send) to `/api/applications{path}`, for the owner acted for.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_applications(
        &mut self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let owner = self.owner.clone();
        let path = format!("/api/applications{path}");
        self.send(method, &path, move |r| match &owner {
            Some(owner) => build(r.query(&[("owner", owner)])),
            None => build(r),
        })
        .await
    }

    /// A `GET` of `/api/applications{path}` (for the owner acted for), its answer as `T`.
    ///
    /// # Errors
    /// The server cannot be reached or refuses, or the answer is not a `T`.
    pub async fn get_applications<T: DeserializeOwned>(&mut self, path: &str) -> anyhow::Result<T> {
        read_json(self.send_applications(Method::GET, path, |r| r).await?).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.credentials.server)
    }

    /// Sends a request built by `build`, with the access token. On 401 the token is
    /// refreshed once and the request sent again.
    ///
    /// # Errors
    /// The server cannot be reached, or the session cannot be refreshed.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let url = self.url(path);
        let http = self.http.clone();
        let request = |token: &str| build(http.request(method.clone(), &url).bearer_auth(token));
        let res = request(&self.credentials.access_token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.credentials.server))?;
        if res.status() != StatusCode::UNAUTHORIZED {
            return Ok(res);
        }
        self.refresh().await?;
        request(&self.credentials.access_token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.credentials.server))
    }

    /// Trades the refresh token for a new pair and saves it.
    async fn refresh(&mut self) -> anyhow::Result<()> {
        let res = self
            .http
            .post(self.url("/api/auth/refresh"))
            .json(&serde_json::json!({"refresh_token": self.credentials.refresh_token}))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.credentials.server))?;
        if res.status() == StatusCode::UNAUTHORIZED {
            bail!("the session has expired or was revoked; run `longin login` again");
        }
        let tokens: Tokens = check(res)
            .await?
            .json()
            .await
            .context("the server's refresh answer has no tokens")?;
        self.credentials.access_token = tokens.access_token;
        self.credentials.refresh_token = tokens.refresh_token;
        credentials::save(&self.credentials)
    }

    #[must_use]
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
}
