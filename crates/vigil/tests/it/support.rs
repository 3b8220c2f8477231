//! Starting the real `vigil` binary and talking to it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_vigil");

/// A data directory and the environment every command in a test shares.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub vars: HashMap<String, String>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut vars = HashMap::new();
        vars.insert("VIGIL_DATA".to_owned(), dir.path().join("data").display().to_string());
        vars.insert("VIGIL_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
        vars.insert("VIGIL_LOG".to_owned(), "warn".to_owned());
        Env { dir, vars }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.vars.insert(key.to_owned(), value.into());
        self
    }

    pub fn data(&self) -> PathBuf {
        PathBuf::from(&self.vars["VIGIL_DATA"])
    }

    pub fn db(&self) -> PathBuf {
        self.data().join("vigil.db")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(&self.vars);
        cmd
    }

    /// Runs a CLI command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vigil")
    }

    /// Runs a CLI command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "vigil {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a key through the CLI and returns its secret.
    pub fn key(&self, name: &str, scope: &str) -> String {
        self.ok(&["keys", "create", "--name", name, "--scope", scope]).trim().to_owned()
    }

    pub fn start(&self) -> Server {
        self.try_start().unwrap_or_else(|stderr| panic!("vigil serve did not start: {stderr}"))
    }

    /// Starts `vigil serve`; `Err` carries stderr if it exits before listening.
    pub fn try_start(&self) -> Result<Server, String> {
        let mut child =
            self.command(&["serve"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn vigil serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line).unwrap_or(0);
        if read == 0 {
            let out = child.wait_with_output().expect("wait");
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Ok(Server { child, url, client: reqwest::blocking::Client::new() })
    }
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub client: reqwest::blocking::Client,
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Server {
    pub fn request(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        // A change without a body says it is intended, as scripts are told to (web pages
        // cannot send that header without asking first).
        match body {
            Some(body) => req = req.header("content-type", "application/json").body(body.to_owned()),
            None => req = req.header("x-requested-with", "vigil-tests"),
        }
        reply(req.send().expect("send"))
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.request("GET", path, key, None)
    }

    pub fn post(&self, path: &str, key: Option<&str>, body: &str) -> Reply {
        self.request("POST", path, key, Some(body))
    }

    pub fn put(&self, path: &str, key: Option<&str>, body: &str) -> Reply {
        self.request("PUT", path, key, Some(body))
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        wait_timeout(&mut self.child, Duration::from_secs(15)).expect("vigil exits after SIGTERM")
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn reply(resp: reqwest::blocking::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, headers, body }
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn write_file(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// A request body that arrives in pieces, when the test sends them.
pub struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelReader {
    pub fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader { rx, buf: Vec::new() }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.buf = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.drain(..n);
        Ok(n)
    }
}
