//! One local HTTP server standing in for every HTTP destination (Slack, the webhook,
//! PagerDuty, Splunk HEC) and for the SNS HTTP subscription.
//!
//! Plain `std`: a listener thread and one thread per connection. Every request is recorded
//! (method, path, headers, body and the status it was answered with) *before* it is answered,
//! so by the time a client sees the response the request is in [`Receiver::requests`].
//! Answers are scriptable per path ([`Receiver::script`]): a queue of statuses used in order,
//! then 200. Each response closes the connection, which keeps the parser trivial.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Largest request body accepted (alerts are a few KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the receiver answered with.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// If it is not JSON, with the path and the start of the body.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    /// Whether the receiver answered with a 2xx.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    scripts: HashMap<String, VecDeque<u16>>,
    /// `Retry-After` seconds sent with every 429 on a path.
    retry_after: HashMap<String, u64>,
    /// Connections that could not be read as HTTP, for the failure report.
    errors: Vec<String>,
}

/// The running receiver; stopped (and its listener thread joined) on drop.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("receiver: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("receiver: local address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("receiver-accept".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = conn else { continue };
                        let state = state.clone();
                        let _ = std::thread::Builder::new()
                            .name("receiver-conn".into())
                            .spawn(move || serve(stream, &state));
                    }
                })
                .expect("receiver: spawn listener thread")
        };
        Receiver {
            addr,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Answers the next requests to `path` with `statuses`, in order; 200 after that.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.lock()
            .scripts
            .entry(path.to_owned())
            .or_default()
            .extend(statuses);
    }

    /// Sends `Retry-After: <secs>` with every 429 answer to `path`, as Slack's rate limit does.
    pub fn retry_after(&self, path: &str, secs: u64) {
        self.lock().retry_after.insert(path.to_owned(), secs);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The requests to `path`, in arrival order.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits up to `timeout` until `path` has had at least `n` requests; returns them all.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests_to(path);
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connections that were not readable as HTTP requests.
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// One line per request (`METHOD path -> status`), for failure messages.
    pub fn summary(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        for r in &state.requests {
            out.push_str(&format!(
                "  {} {} -> {} ({} bytes)\n",
                r.method,
                r.path,
                r.status,
                r.body.len()
            ));
        }
        for e in &state.errors {
            out.push_str(&format!("  error: {e}\n"));
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not hide what was recorded.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- receiver at {}: requests ---\n{}",
                self.addr,
                self.summary()
            );
        }
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let parsed = match read_request(&mut reader) {
        Ok(Some(p)) => p,
        // The listener's own wake-up connection, or a client that gave up.
        Ok(None) => return,
        Err(e) => {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.errors.push(format!("{peer}: {e}"));
            let _ = respond(&stream, 400, r#"{"error":"bad request"}"#);
            return;
        }
    };
    let (method, target, headers, body) = parsed;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target, None),
    };
    let (status, retry_after) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let status = s
            .scripts
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or(200);
        let retry_after = s.retry_after.get(&path).copied().filter(|_| status == 429);
        s.requests.push(Request {
            method,
            path,
            query,
            headers,
            body,
            status,
            at: Instant::now(),
        });
        (status, retry_after)
    };
    let body = if (200..300).contains(&status) {
        // Splunk HEC's success answer; the other clients only look at the status.
        r#"{"text":"Success","code":0}"#
    } else {
        r#"{"text":"scripted failure","code":8}"#
    };
    let _ = respond_with(&stream, status, retry_after, body);
}

type Parsed = (String, String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.x request: request line, headers, and a body framed by `Content-Length`
/// or chunked encoding. `Ok(None)` when the connection closed before a request line.
fn read_request(reader: &mut impl BufRead) -> Result<Option<Parsed>, String> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .map_err(|e| format!("reading request line: {e}"))?;
    if n == 0 || line.trim().is_empty() {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad request line {line:?}"));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader
            .read_line(&mut h)
            .map_err(|e| format!("reading headers: {e}"))?;
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("bad header line {h:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
        if headers.len() > 200 {
            return Err("too many headers".into());
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let len: usize = match get("content-length") {
            Some(v) => v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?,
            None => 0,
        };
        if len > MAX_BODY {
            return Err(format!("body of {len} bytes is too large"));
        }
        let mut body = vec![0; len];
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("reading {len} body bytes: {e}"))?;
        body
    };
    Ok(Some((method, target, headers, body)))
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader
            .read_line(&mut size)
            .map_err(|e| format!("reading chunk size: {e}"))?;
        let hex = size.trim().split(';').next().unwrap_or_default();
        let n = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        if body.len() + n > MAX_BODY {
            return Err("chunked body too large".into());
        }
        let start = body.len();
        body.resize(start + n, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| format!("reading chunk: {e}"))?;
        let mut crlf = String::new();
        reader
            .read_line(&mut crlf)
            .map_err(|e| format!("reading chunk end: {e}"))?;
        if n == 0 {
            // Trailers, if any, end with an empty line; crlf already consumed the first one.
            let mut t = crlf;
            while !t.trim().is_empty() {
                t.clear();
                if reader.read_line(&mut t).unwrap_or(0) == 0 {
                    break;
                }
            }
            return Ok(body);
        }
    }
}

fn respond(stream: &TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    respond_with(stream, status, None, body)
}

fn respond_with(
    mut stream: &TcpStream,
    status: u16,
    retry_after: Option<u64>,
    body: &str,
) -> std::io::Result<()> {
    let extra = retry_after
        .map(|s| format!("Retry-After: {s}\r\n"))
        .unwrap_or_default();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn send(url_addr: &str, raw: &str) -> String {
        let mut s = TcpStream::connect(url_addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn records_and_scripts() {
        let r = Receiver::start();
        r.script("/hook", &[500, 503]);
        let addr = r.base_url().trim_start_matches("http://").to_owned();
        let req = "POST /hook?x=1 HTTP/1.1\r\nHost: x\r\nX-Sig: abc\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert!(send(&addr, req).starts_with("HTTP/1.1 500 "));
        assert!(send(&addr, req).starts_with("HTTP/1.1 503 "));
        assert!(send(&addr, req).starts_with("HTTP/1.1 200 "));
        let chunked = "POST /other HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n4\r\n\":2}\r\n0\r\n\r\n";
        assert!(send(&addr, chunked).starts_with("HTTP/1.1 200 "));
        let got = r.requests_to("/hook");
        assert_eq!(
            got.iter().map(|r| r.status).collect::<Vec<_>>(),
            [500, 503, 200]
        );
        assert_eq!(got[0].header("x-sig"), Some("abc"));
        assert_eq!(got[0].query.as_deref(), Some("x=1"));
        assert_eq!(got[0].json()["a"], 1);
        assert_eq!(r.requests_to("/other")[0].json()["b"], 2);
        assert!(r.errors().is_empty());
    }
}
