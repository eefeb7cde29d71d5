//! `cargo lambda watch` as a child process, and its Lambda Invoke API.
//!
//! [`Watch::start`] runs `<venv>/bin/cargo-lambda lambda watch --ignore-changes` at the
//! workspace root on a free port of 127.0.0.1, in its own process group, with exactly the
//! environment the caller gives for the functions (inherited `AWS_*` and `TRIPLINE_*` variables
//! are removed first, so nothing of the developer's shell leaks in). watch compiles and starts
//! each function (`cargo run --bin <name>`) on its first invocation, so the first call can take
//! minutes on a cold target directory; [`Watch::warm_up`] does that with a bounded wait.
//!
//! Functions are invoked through the Invoke API that watch serves, the one the AWS SDK's
//! `Lambda::Invoke` uses: `POST /2015-03-31/functions/<name>/invocations` with the event as
//! the body; a function error comes back with an `X-Amz-Function-Error` header.
//!
//! On drop every process of the tree (watch, `cargo run`, the function binaries) is sent
//! SIGTERM, then SIGKILL after a grace period, by process id: the process group and every
//! descendant found in `/proc` (in case something moved itself to another group).

use std::collections::{BTreeSet, HashMap};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How much of the log a failure message shows.
const TAIL_BYTES: usize = 6000;

/// The answer of one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// HTTP status of the Invoke API response.
    pub status: u16,
    /// `X-Amz-Function-Error` (`Unhandled`), when the function failed.
    pub function_error: Option<String>,
    /// The response payload: the function's result, or its error.
    pub body: String,
}

impl Invocation {
    /// Whether the function ran and returned a result.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status) && self.function_error.is_none()
    }
}

/// A running `cargo lambda watch`; the whole process tree is stopped on drop.
pub struct Watch {
    child: Mutex<Child>,
    port: u16,
    log: PathBuf,
    client: reqwest::Client,
    /// Set once a panic message carried the log's tail, so drop does not print it again.
    tail_shown: AtomicBool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Watch {
    /// Starts watch in `workspace` with `env` for the functions, and waits (up to a minute)
    /// until its server accepts connections.
    ///
    /// # Panics
    /// If `cargo_lambda` does not exist, or watch does not come up (with its log).
    pub fn start(cargo_lambda: &Path, workspace: &Path, env: &[(String, String)]) -> Self {
        Self::start_concurrent(cargo_lambda, workspace, env, 1)
    }

    /// [`Watch::start`], running up to `concurrency` instances (processes) of each function,
    /// so invocations made at the same time run at the same time, as on Lambda.
    pub fn start_concurrent(
        cargo_lambda: &Path,
        workspace: &Path,
        env: &[(String, String)],
        concurrency: u32,
    ) -> Self {
        assert!(
            cargo_lambda.exists(),
            "{} not found: run scripts/test (it installs cargo-lambda from requirements-test.txt \
             into the venv), or `.venv/bin/pip install -r requirements-test.txt`",
            cargo_lambda.display()
        );
        let mut last = String::new();
        // The port is free when we look and bound by watch a moment later; retry if another
        // process took it in between.
        for _ in 0..3 {
            match Self::try_start(cargo_lambda, workspace, env, concurrency) {
                Ok(w) => return w,
                Err(e) => last = e,
            }
        }
        panic!("cargo lambda watch did not start: {last}");
    }

    fn try_start(
        cargo_lambda: &Path,
        workspace: &Path,
        env: &[(String, String)],
        concurrency: u32,
    ) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;

        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "tripline-e2e-watch-{}-{port}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(cargo_lambda);
        cmd.args(["lambda", "watch", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .current_dir(workspace)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .process_group(0);
        for (name, _) in std::env::vars_os() {
            let n = name.to_string_lossy();
            if n.starts_with("AWS_") || n.starts_with("TRIPLINE_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("CARGO_TERM_COLOR", "never");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", cargo_lambda.display()))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let watch = Watch {
            child: Mutex::new(child),
            port,
            log,
            client,
            tail_shown: AtomicBool::new(false),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = watch.exited() {
                return Err(format!("exited with {status}:\n{}", watch.log_tail()));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(watch);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not listening on 127.0.0.1:{port} after {START_TIMEOUT:?}:\n{}",
                    watch.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Invoke API URL of `function`.
    pub fn invoke_url(&self, function: &str) -> String {
        format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint()
        )
    }

    /// Invokes `function` synchronously (`RequestResponse`) with `payload`. `Err` only when no
    /// HTTP answer came (connection refused, timeout).
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        timeout: Duration,
    ) -> Result<Invocation, String> {
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(self.invoke_url(function))
            .header("Content-Type", "application/json")
            .header("X-Amz-Invocation-Type", "RequestResponse")
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("invoking {function}: {e}"))?;
        let status = response.status().as_u16();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading the answer of {function}: {e}"))?;
        Ok(Invocation {
            status,
            function_error,
            body,
        })
    }

    /// Invokes `function` and returns its result as JSON.
    ///
    /// # Panics
    /// If the invocation fails or the function returns an error, with the watch log's tail.
    pub async fn invoke_ok(&self, function: &str, payload: &Value) -> Value {
        let started = Instant::now();
        let inv = match self
            .invoke(function, payload, Duration::from_secs(180))
            .await
        {
            Ok(inv) => inv,
            Err(e) => self.fail(&format!("{e} (payload {payload})")),
        };
        if !inv.succeeded() {
            self.fail(&format!(
                "{function} failed after {:?}: HTTP {}, function error {:?}: {}\npayload: {payload}",
                started.elapsed(),
                inv.status,
                inv.function_error,
                inv.body
            ));
        }
        serde_json::from_str(&inv.body).unwrap_or_else(|e| {
            self.fail(&format!(
                "{function} answered with non-JSON ({e}): {}",
                inv.body
            ))
        })
    }

    /// Invokes each function with `payload` until it answers successfully, so watch compiles
    /// and starts them; returns how long each took. Gives up at `timeout` in total.
    ///
    /// # Panics
    /// If a function is not up by then, or answers with an error, with the watch log's tail.
    pub async fn warm_up(
        &self,
        functions: &[&str],
        payload: &Value,
        timeout: Duration,
    ) -> Vec<(String, Duration)> {
        let deadline = Instant::now() + timeout;
        let mut took = Vec::new();
        for function in functions {
            let started = Instant::now();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    self.fail(&format!(
                        "{function} not up after {timeout:?} (watch compiles it on first invoke)"
                    ));
                }
                match self.invoke(function, payload, left).await {
                    Ok(inv) if inv.succeeded() => break,
                    Ok(inv) => self.fail(&format!(
                        "warm-up of {function}: HTTP {}, function error {:?}: {}",
                        inv.status, inv.function_error, inv.body
                    )),
                    Err(_) => {
                        if let Some(status) = self.exited() {
                            self.fail(&format!("watch exited with {status}"));
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            took.push((function.to_string(), started.elapsed()));
        }
        took
    }

    /// The exit status, once watch has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last few KiB of watch's output (its own log, cargo's and the functions').
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(TAIL_BYTES);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// The whole log.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Panics with `message` and the log's tail.
    pub fn fail(&self, message: &str) -> ! {
        self.tail_shown.store(true, Ordering::SeqCst);
        panic!(
            "{message}\n--- cargo lambda watch log ({}), last {TAIL_BYTES} bytes ---\n{}",
            self.log.display(),
            self.log_tail()
        )
    }

    /// Stops the process tree: SIGTERM, then SIGKILL after a grace period.
    fn stop(&mut self) {
        let root = self.child().id() as i32;
        let mut pids = descendants(root);
        pids.insert(root);
        // SAFETY: plain kill(2) calls on ids we started (the group we created, and its
        // processes); a stale id at worst gets ESRCH.
        unsafe {
            libc::kill(-root, libc::SIGTERM);
            for &p in &pids {
                libc::kill(p, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left, including children that outlived watch.
        pids.extend(descendants(root));
        unsafe {
            libc::kill(-root, libc::SIGKILL);
            for &p in &pids {
                if alive(p) {
                    libc::kill(p, libc::SIGKILL);
                }
            }
        }
        let _ = self.child().wait();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking && !self.tail_shown.load(Ordering::SeqCst) {
            eprintln!(
                "--- cargo lambda watch log ({}), last {TAIL_BYTES} bytes ---\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        self.stop();
        if !panicking {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// `/proc/<pid>/stat` → (pid, ppid, state).
fn stat(pid: i32) -> Option<(i32, i32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((pid, ppid, state))
}

fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, _, state)| state != 'Z' && state != 'X')
}

/// Every live descendant of `root`, from `/proc`.
fn descendants(root: i32) -> BTreeSet<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some((pid, ppid, _)) = stat(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if out.insert(c) {
                todo.push(c);
            }
        }
    }
    out
}
