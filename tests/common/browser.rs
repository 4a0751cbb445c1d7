//! A real headless Chromium for the dashboard's tests, driven over WebDriver: each
//! `Browser` runs its own `chromedriver` (Debian's `chromium-driver`, installed by
//! scripts/test-services) on a free loopback port, in a process group of its own so
//! that dropping it ends the driver and every browser process it started.
//!
//! Every console message of level SEVERE (a script error, a failed request) is kept;
//! `assert_clean` fails the test on any the test did not expect.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for, unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    session: String,
    base: String,
    /// Where screenshots go (kept after the test, printed).
    pub shots: PathBuf,
    /// Console errors seen so far (drained from the browser by `console_errors`).
    seen: std::sync::Mutex<Vec<String>>,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width`×`height` pointed at `base`
    /// (the server's `http://127.0.0.1:port`); `test` names the screenshot directory.
    pub async fn start(base: &str, test: &str, width: u32, height: u32) -> Self {
        let port = free_port();
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let driver = command.spawn().unwrap_or_else(|e| {
            panic!("cannot run chromedriver ({e}): install chromium and chromium-driver (scripts/test-services does)")
        });
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{driver_url}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--metrics-recording-only",
                    format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(mut caps) = caps else {
            unreachable!()
        };
        // A desktop window is never narrower than 500 px: a phone's width is emulated.
        if width < 500 {
            caps["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0},
            });
        }
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("a Chromium session");
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let shots = std::env::temp_dir()
            .join("longin-screenshots")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Self {
            client,
            driver,
            driver_url,
            session,
            base: base.trim_end_matches('/').to_owned(),
            shots,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&self.url(path)).await.expect("navigate");
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        path
    }

    /// The first element matching `css`, waiting up to `WAIT` for it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} within {WAIT:?}: {e}"))
    }

    /// Every element matching `css` now.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns a truthy value; returns it. Panics with `what`.
    pub async fn until(&self, secs: u64, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let value = self.js(script, vec![]).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let text = self
                    .js("return document.body.innerText.slice(0, 3000)", vec![])
                    .await;
                let shot = self.screenshot("timeout").await;
                // A failed request says why only in the console (net::ERR_…).
                let console = self.console_errors().await;
                panic!(
                    "timed out after {secs} s waiting for {what}; page {} shows:\n{}\n(screenshot {})\nconsole errors: {console:#?}",
                    self.path().await,
                    text.as_str().unwrap_or_default(),
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element matching `css`, or "" when there is none.
    pub async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
            vec![json!(css)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Clicks the element `css`, as a person would: once it is shown (a control the
    /// page reveals when its script has run, such as Sign out, is in the DOM before),
    /// and again on the new one when a live page rendered it anew between finding it
    /// and the click (a stale element). Gives up after 5 s.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e)
                    if (e.to_string().contains("stale element")
                        || e.to_string().contains("not interactable"))
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Replaces the value of the field `css` with `text`, as typed.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Sets a (large) field's value at once and tells the page it changed.
    pub async fn set_value(&self, css: &str, text: &str) {
        self.js(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1];
             e.dispatchEvent(new Event('input', {bubbles: true}));",
            vec![json!(css), json!(text)],
        )
        .await;
    }

    /// Signs in through the form and waits for the applications page.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("#sign-in-form button[type=submit]").await;
        self.until(15, "the applications page after signing in", "return document.body.dataset.page === 'applications' && !document.querySelector('#nav').hidden")
            .await;
    }

    /// Saves a PNG of the window as `<name>.png` and prints where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    /// The browser's SEVERE console entries since the last call (script errors, failed
    /// requests), added to those seen before.
    pub async fn console_errors(&self) -> Vec<String> {
        let res: Value = reqwest::Client::new()
            .post(format!(
                "{}/session/{}/se/log",
                self.driver_url, self.session
            ))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("read the browser's log")
            .json()
            .await
            .expect("log JSON");
        let new: Vec<String> = res["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            // The host's addresses change whenever a test beside this one makes or
            // removes a Docker network; Chromium then fails the requests in flight.
            // That is the machine, not the page (which sends such a request again:
            // api.js), and no test here can stop it.
            .filter(|e| {
                !e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("net::ERR_NETWORK_CHANGED"))
            })
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        let mut seen = self.seen.lock().unwrap();
        seen.extend(new);
        seen.clone()
    }

    /// Fails unless every console error so far contains one of `expected`.
    pub async fn assert_clean(&self, expected: &[&str]) {
        let errors = self.console_errors().await;
        let unexpected: Vec<&String> = errors
            .iter()
            .filter(|e| !expected.iter().any(|x| e.contains(x)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "console errors or failed requests: {unexpected:#?}"
        );
    }

    /// Runs a Chrome DevTools command through chromedriver (e.g. media emulation).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let res = reqwest::Client::new()
            .post(format!(
                "{}/session/{}/goog/cdp/execute",
                self.driver_url, self.session
            ))
            .json(&json!({"cmd": cmd, "params": params}))
            .send()
            .await
            .expect("a DevTools command");
        assert!(res.status().is_success(), "{cmd}: {}", res.status());
        res.json().await.expect("its answer")
    }

    /// Forgets the console errors seen so far (after a step that expects some).
    pub async fn forget_errors(&self) {
        self.console_errors().await;
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        let pid = i32::try_from(self.driver.id()).unwrap_or(0);
        if pid > 0 {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.driver.wait();
    }
}

/// A loopback TCP proxy to the server that can drop every connection and refuse new
/// ones for a while: a network blip, as a browser on a flaky link sees it.
pub struct FlakyProxy {
    pub addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
}

impl FlakyProxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let (accept_up, accept_cuts) = (up.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropped at once: the connection is refused
                }
                let mut cut = accept_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cuts }
    }

    /// Drops every open connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
