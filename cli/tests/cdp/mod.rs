//! A headless Chromium driven over the DevTools protocol (CDP): the system's `chromium`
//! (Debian's package; `scripts/test` installs it when missing), started with a throwaway
//! profile and a DevTools port of its own, and spoken to as JSON over its WebSocket. The
//! messages stay `serde_json::Value`s, so no protocol version is baked in.
//!
//! Console messages, uncaught exceptions and the browser's own log entries (a refused
//! resource, a Content-Security-Policy violation) are collected as they arrive.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long any one step (start, a command, a page load) may take.
const STEP: Duration = Duration::from_secs(20);

/// The browser binary: `$CHROMIUM`, or Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "{} not found: the report's browser test needs Chromium. Run scripts/test (it installs \
         Debian's chromium package when missing) or `apt-get install -y chromium`, or set \
         CHROMIUM to a Chromium binary",
        path.display()
    );
    path
}

/// Something the page said that a clean page does not.
#[derive(Debug, Clone)]
pub struct Complaint {
    pub source: String,
    pub text: String,
}

pub struct Browser {
    child: Child,
    profile: PathBuf,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Events read while waiting for something else.
    events: Vec<Value>,
    pub complaints: Vec<Complaint>,
}

impl Browser {
    /// Starts Chromium headless with a page open, and attaches to the page.
    pub fn launch(width: u32, height: u32) -> Browser {
        static LAUNCHED: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "tripline-chromium-{}-{}",
            std::process::id(),
            LAUNCHED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).expect("chromium profile dir");
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                // The test may run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromium().display()));
        // Chromium names its DevTools endpoint on stderr; the rest of stderr is drained on
        // the same thread so the browser never blocks on a full pipe.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.trim().to_string());
                    }
                }
            }
        });
        let url = match rx.recv_timeout(STEP) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("chromium did not open its DevTools port within {STEP:?}");
            }
        };
        let (ws, _) = tungstenite::connect(url.as_str()).expect("connecting to DevTools");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(250)))
                .expect("read timeout");
        }
        let mut browser = Browser {
            child,
            profile,
            ws,
            next_id: 0,
            session: None,
            events: Vec::new(),
            complaints: Vec::new(),
        };
        let targets = browser.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .map(|t| t["targetId"].clone())
            .unwrap_or_else(|| {
                browser.call("Target.createTarget", json!({"url": "about:blank"}))["targetId"]
                    .clone()
            });
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session id")
                .to_string(),
        );
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("sending {method}: {e}"));
        self.next_id
    }

    /// The next message, or `None` after a read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(text)) => {
                Some(serde_json::from_str(text.as_str()).expect("DevTools sends JSON"))
            }
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("reading from DevTools: {e}"),
        }
    }

    /// Keeps an event, noting what a clean page would not say.
    fn event(&mut self, event: Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.complaints.push(Complaint {
                source: "exception".into(),
                text: params["exceptionDetails"].to_string(),
            }),
            Some("Runtime.consoleAPICalled")
                if matches!(
                    params["type"].as_str(),
                    Some("error" | "warning" | "assert")
                ) =>
            {
                self.complaints.push(Complaint {
                    source: format!("console.{}", params["type"].as_str().unwrap_or("")),
                    text: params["args"].to_string(),
                })
            }
            Some("Log.entryAdded")
                if matches!(params["entry"]["level"].as_str(), Some("error" | "warning")) =>
            {
                self.complaints.push(Complaint {
                    source: format!("log {}", params["entry"]["source"]),
                    text: params["entry"]["text"].to_string(),
                })
            }
            _ => {}
        }
        self.events.push(event);
    }

    /// Sends a command (to the page once attached) and waits for its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            let Some(message) = self.read() else { continue };
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method}: {error}");
                }
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.event(message);
            }
        }
        panic!("{method}: no answer within {STEP:?}");
    }

    /// Waits until an event `method` has arrived (or had arrived), then drains what is
    /// left for a moment, so late console messages are in.
    pub fn wait_for(&mut self, method: &str) {
        let deadline = Instant::now() + STEP;
        while !self.events.iter().any(|e| e["method"] == method) {
            assert!(Instant::now() < deadline, "no {method} within {STEP:?}");
            if let Some(message) = self.read() {
                if message.get("method").is_some() {
                    self.event(message);
                }
            }
        }
        let settle = Instant::now() + Duration::from_millis(300);
        while Instant::now() < settle {
            if let Some(message) = self.read() {
                if message.get("method").is_some() {
                    self.event(message);
                }
            }
        }
    }

    /// Opens a local file and waits for its load event.
    pub fn open(&mut self, path: &Path) {
        let path = path.canonicalize().expect("page path");
        self.events.clear();
        let url = format!("file://{}", path.display());
        let nav = self.call("Page.navigate", json!({"url": url}));
        assert!(nav.get("errorText").is_none(), "navigating: {nav}");
        self.wait_for("Page.loadEventFired");
    }

    /// Evaluates `expression` in the page; its value, returned as JSON. An exception fails
    /// the test.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// A PNG of the whole page, `width` pixels wide.
    pub fn screenshot(&mut self, width: u32) -> Vec<u8> {
        let height = self
            .eval("Math.ceil(document.documentElement.scrollHeight)")
            .as_f64()
            .unwrap_or(1000.0);
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session = None;
        // A polite close first; the kill covers a browser that does not listen.
        if self
            .ws
            .send(Message::text(
                json!({"id": 0, "method": "Browser.close"}).to_string(),
            ))
            .is_ok()
        {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
