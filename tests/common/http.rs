//! Helpers for the `--http` tests (tests/http*.rs): a running `zc send
//! --http` or `zc recv --http` and what it printed, curl and wget as a user
//! runs them, and raw requests on a socket with the answer's parts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{send_cmd, zc, Guard};

/// A running `zc send --http --json` or `zc recv --http --json`, the URLs
/// its listening event gave, and every line it wrote on stderr since (JSON
/// events as values, anything else as a string).
pub struct HttpServer {
    pub child: Guard,
    pub addr: SocketAddr,
    /// The browser URL: the file's, the index's or the upload page's
    /// (the last two end with `/`).
    pub url: String,
    pub curl: String,
    pub wget: String,
    pub lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// `zc send --http --json --listen 127.0.0.1:0 EXTRA SOURCES`, listening.
pub fn serve(extra: &[&str], sources: &[&Path]) -> HttpServer {
    let mut cmd = send_cmd(&["--http", "--json", "--listen", "127.0.0.1:0"]);
    cmd.args(extra).args(sources);
    HttpServer::start(cmd)
}

/// `zc recv --http --json --listen 127.0.0.1:0 -o DIR EXTRA`, listening.
pub fn take(dir: &Path, extra: &[&str]) -> HttpServer {
    let mut cmd = zc();
    cmd.args(["recv", "--http", "--json", "--listen", "127.0.0.1:0", "-o"])
        .arg(dir)
        .args(extra);
    HttpServer::start(cmd)
}

impl HttpServer {
    /// Spawns `cmd` (a `--http --json` command line) and waits for its
    /// listening event; a thread keeps what it writes after that.
    pub fn start(mut cmd: Command) -> HttpServer {
        cmd.stderr(Stdio::piped());
        let mut child = Guard(cmd.spawn().expect("zc starts"));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).expect("a listening line");
        let event: serde_json::Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(event["event"], "listening", "{line}");
        let text = |k: &str| event[k].as_str().expect(k).to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                kept.lock().unwrap().push(value);
            }
        });
        HttpServer {
            addr: text("addr").parse().unwrap(),
            url: text("url"),
            curl: text("curl"),
            wget: text("wget"),
            child,
            lines,
        }
    }

    /// The URL's path, for raw requests.
    pub fn path(&self) -> String {
        let rest = self.url.splitn(4, '/').nth(3).unwrap_or("");
        format!("/{rest}")
    }

    /// The token's prefix: `/TOKEN/` (with `--open`, the path's first
    /// component).
    pub fn prefix(&self) -> String {
        let path = self.path();
        let token = path.split('/').nth(1).unwrap();
        format!("/{token}/")
    }

    /// The events named `name` written so far.
    pub fn events(&self, name: &str) -> Vec<serde_json::Value> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l["event"] == name)
            .cloned()
            .collect()
    }

    /// The access events so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.events("request")
    }

    /// The access events once there are at least `n` (they are written
    /// after each response, so they may trail the client a moment).
    pub fn requests_at_least(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..400 {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.requests()
    }

    /// `recv --http` still takes an upload into `dir` (after whatever came
    /// before): a fresh name PUT by curl is a 201.
    pub fn still_serving(&self, dir: &Path) {
        let file = dir.parent().unwrap().join("probe.txt");
        std::fs::write(&file, b"probe").unwrap();
        let url = format!("{}probe-{}", self.url, rand_name());
        let (code, body) = curl_status(&["-T", file.to_str().unwrap(), &url]);
        assert_eq!(code, 201, "{body}");
    }
}

/// Fails (never skips) when a tool the test runs is missing.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "`{tool}` is not installed: scripts/test.sh installs it"
    );
}

/// Runs a shell command line as printed by the server, in `dir`; it must
/// succeed.
pub fn shell(line: &str, dir: &Path) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `curl -sS --max-time 60 ARGS`, whatever its exit status.
pub fn curl(args: &[&str]) -> Output {
    require("curl");
    Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// curl's status code (0 when there was no answer) and body.
pub fn curl_status(args: &[&str]) -> (u16, String) {
    let mut with_code = vec!["-w", "\n%{http_code}"];
    with_code.extend_from_slice(args);
    let out = curl(&with_code);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Sends `bytes` on a fresh connection and returns all the server says
/// until it closes (or twenty seconds pass). Writes that the server
/// refuses to read (it answered and closed) are not an error.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let w = thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let _ = w.join();
    String::from_utf8_lossy(&out).into_owned()
}

/// A response's status code; panics when there is no status line.
pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

/// A response header's value (the first, name in any case).
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A GET of `path` with `extra` header lines (each ending `\r\n`) that
/// closes the connection after the answer.
pub fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

/// Sixteen random hex digits, for a name no other test uses.
pub fn rand_name() -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Standard base64 with padding, as in `Repr-Digest: sha-256=:…:`.
pub fn base64(bytes: &[u8]) -> String {
    let abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                abc[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The base64 of the SHA-256 of `bytes`, as a digest header carries it.
pub fn sha_b64(bytes: &[u8]) -> String {
    base64(&Sha256::digest(bytes))
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
