//! Helpers for the tests against moto's real Secrets Manager server: its address (exported
//! by `cargo xtask test`), unique secret names, an SDK client to seed secrets, a call counter
//! (an SDK interceptor), a TRACE log capture, a moto process of a test's own (to stop and
//! restart it), and a loopback proxy in front of moto that counts requests and injects
//! faults moto cannot produce (throttling, 5xx, a hung or cut answer).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use secrets_aws::AwsSettings;
use secrets_aws::sdk::config::interceptors::BeforeTransmitInterceptorContextRef;
use secrets_aws::sdk::config::{ConfigBag, Intercept, RuntimeComponents};
use secrets_aws::sdk::error::BoxError;
use tracing_subscriber::fmt::MakeWriter;

pub const REGION: &str = "us-east-1";

/// The moto endpoint `cargo xtask test` started.
pub fn endpoint() -> String {
    match std::env::var("SECRETS_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SECRETS_TEST_AWS_ENDPOINT is not set: these tests need moto's Secrets Manager \
             server; run them with `cargo xtask test`, which starts it"
        ),
    }
}

/// Checks that the SDK's default chains will find the dummy credentials xtask exports.
pub fn require_test_credentials() {
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            std::env::var_os(name).is_some_and(|v| !v.is_empty()),
            "{name} is not set: run the tests with `cargo xtask test`, which exports moto's \
             dummy credentials"
        );
    }
}

/// A secret name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "test/{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Settings for a secret on the given endpoint, with the test region.
pub fn settings_at(endpoint: &str, name: &str) -> AwsSettings {
    require_test_credentials();
    AwsSettings::new(name)
        .with_region(REGION)
        .with_endpoint_url(endpoint)
}

/// Settings for a secret on the shared moto.
pub fn settings(name: &str) -> AwsSettings {
    settings_at(&endpoint(), name)
}

/// An SDK client for setting secrets up, independent of the provider under test.
pub async fn admin_at(endpoint: &str) -> secrets_aws::sdk::Client {
    let config = secrets_aws::sdk::Config::builder()
        .behavior_version(secrets_aws::sdk::config::BehaviorVersion::latest())
        .region(secrets_aws::sdk::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(secrets_aws::sdk::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .http_client(https())
        .build();
    secrets_aws::sdk::Client::from_conf(config)
}

fn https() -> secrets_aws::sdk::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

pub async fn admin() -> secrets_aws::sdk::Client {
    admin_at(&endpoint()).await
}

/// Creates a secret holding `text`; returns its version id.
pub async fn create(admin: &secrets_aws::sdk::Client, name: &str, text: &str) -> String {
    admin
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .expect("create the test secret in moto")
        .version_id
        .unwrap()
}

/// Puts a new current version; returns its id.
pub async fn put(admin: &secrets_aws::sdk::Client, name: &str, text: &str) -> String {
    admin
        .put_secret_value()
        .secret_id(name)
        .secret_string(text)
        .send()
        .await
        .expect("put a test secret value in moto")
        .version_id
        .unwrap()
}

/// The current text of a secret (explicit stage: see moto's gaps).
pub async fn current_text(admin: &secrets_aws::sdk::Client, name: &str) -> String {
    admin
        .get_secret_value()
        .secret_id(name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap_or_default()
}

/// The current object of a secret.
pub async fn current_json(admin: &secrets_aws::sdk::Client, name: &str) -> serde_json::Value {
    serde_json::from_str(&current_text(admin, name).await).unwrap()
}

/// How many versions the secret has.
pub async fn version_count(admin: &secrets_aws::sdk::Client, name: &str) -> usize {
    admin
        .list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap()
        .versions
        .unwrap_or_default()
        .len()
}

/// Counts HTTP attempts per operation (`GetSecretValue`, ...), read from each request's
/// `X-Amz-Target` header just before it is sent.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<HashMap<String, usize>>>);

impl CallCounter {
    pub fn count(&self, operation: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "tests::CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(operation)
            .or_default() += 1;
        Ok(())
    }
}

/// Every log line, at TRACE level.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish()
    }
}

pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(Arc::clone(&self.0))
    }
}

/// `moto_server` of the test virtualenv: next to `SECRETS_TEST_PYTHON` (exported by
/// `cargo xtask test`), else in `target/test-venv/bin`.
pub fn moto_server_program() -> PathBuf {
    let bin_dir = match std::env::var_os("SECRETS_TEST_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) => PathBuf::from(python)
            .parent()
            .expect("the test Python lives in a directory")
            .to_owned(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin"),
    };
    let program = bin_dir.join("moto_server");
    assert!(
        program.exists(),
        "{} does not exist: run the tests with `cargo xtask test`, which installs moto",
        program.display()
    );
    program
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto server of this test's own, killed (by PID) on drop.
pub struct OwnMoto {
    pub port: u16,
    child: Child,
}

impl OwnMoto {
    /// Starts moto on `port` and waits until it answers.
    pub fn start(port: u16) -> Self {
        let child = Command::new(moto_server_program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get_status(port, "/moto-api/data.json") == Some(200) {
                return moto;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not answer on 127.0.0.1:{port} within 60 s");
    }

    /// Starts moto serving HTTPS on `port` with a certificate it makes up (`--ssl`), which
    /// no trust store knows, and waits until the port takes connections.
    pub fn start_tls(port: u16) -> Self {
        let child = Command::new(moto_server_program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string(), "--ssl"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server --ssl");
        let moto = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("moto --ssl did not listen on 127.0.0.1:{port} within 60 s");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process and waits until the port refuses connections.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// What the proxy does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward to moto and back.
    None,
    /// Answer 400 ThrottlingException.
    Throttle,
    /// Answer 400 AccessDeniedException.
    Deny,
    /// Answer 503 with an HTML body (a load balancer in trouble).
    ServerError,
    /// Forward, then return moto's answer cut in the middle of its body.
    CutBody,
    /// Forward, then replace the body by non-JSON text containing moto's body.
    GarbleBody,
    /// Read the request and never answer.
    Hang,
}

/// A loopback HTTP/1.1 proxy in front of a real moto: counts requests per operation and
/// injects faults. One request per connection (moto closes each connection too).
#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("moto's endpoint is http://127.0.0.1:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            fault: Arc::new(Mutex::new(Fault::None)),
            counts: Arc::default(),
            total: Arc::default(),
        };
        let shared = proxy.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let proxy = shared.clone();
                thread::spawn(move || {
                    let _ = proxy.serve(client, upstream);
                });
            }
        });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    pub fn count(&self, operation: &str) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    fn serve(&self, mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
        client.set_read_timeout(Some(Duration::from_secs(30)))?;
        let request = read_message(&mut client, true)?;
        let head =
            String::from_utf8_lossy(&request[..header_end(&request).unwrap_or(0)]).into_owned();
        let operation = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-amz-target")
                    .then(|| value.trim().rsplit('.').next().unwrap_or("").to_owned())
            })
            .unwrap_or_default();
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(operation)
            .or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        let fault = *self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = |status: &str, content_type: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        match fault {
            Fault::Throttle => client.write_all(
                answer(
                    "400 Bad Request",
                    "application/x-amz-json-1.1",
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                )
                .as_bytes(),
            )?,
            Fault::Deny => client.write_all(
                answer(
                    "400 Bad Request",
                    "application/x-amz-json-1.1",
                    r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: secretsmanager:GetSecretValue"}"#,
                )
                .as_bytes(),
            )?,
            Fault::ServerError => client.write_all(
                answer(
                    "503 Service Unavailable",
                    "text/html",
                    "<html><body>503 Service Temporarily Unavailable</body></html>",
                )
                .as_bytes(),
            )?,
            Fault::Hang => {
                thread::sleep(Duration::from_secs(30));
            }
            Fault::None | Fault::CutBody | Fault::GarbleBody => {
                let mut moto = TcpStream::connect(upstream)?;
                moto.write_all(&request)?;
                let response = read_message(&mut moto, false)?;
                match fault {
                    Fault::CutBody => {
                        // The head (with the full Content-Length) and half the body, then EOF.
                        let end = header_end(&response).unwrap_or(response.len());
                        let body_len = response.len() - end;
                        client.write_all(&response[..end + body_len / 2])?;
                    }
                    Fault::GarbleBody => {
                        let end = header_end(&response).unwrap_or(response.len());
                        let body = String::from_utf8_lossy(&response[end..]).into_owned();
                        let garbled = format!("<<not json>> {body}");
                        client.write_all(
                            answer("200 OK", "application/x-amz-json-1.1", &garbled).as_bytes(),
                        )?;
                    }
                    _ => client.write_all(&response)?,
                }
            }
        }
        client.flush()?;
        let _ = client.shutdown(Shutdown::Both);
        Ok(())
    }
}

fn header_end(message: &[u8]) -> Option<usize> {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// Reads one HTTP message: the head, then `Content-Length` bytes (requests), or until EOF
/// when the length is missing (moto's answers close the connection).
fn read_message(stream: &mut TcpStream, is_request: bool) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = header_end(&data) {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            match length {
                Some(length) if data.len() >= end + length => {
                    data.truncate(end + length);
                    return Ok(data);
                }
                None if is_request => return Ok(data),
                _ => {}
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(data);
        }
        data.extend_from_slice(&buf[..n]);
    }
}

/// What a [`HostileServer`] answers every request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// `200 OK`, chunked, 64 KiB chunks without end.
    EndlessChunked,
    /// `200 OK` declaring a 100 GB `Content-Length`, then bytes without end.
    HugeContentLength,
    /// Accepts the connection, reads the request and never answers.
    Silent,
    /// `403 Forbidden` with a small JSON body.
    Forbidden,
    /// `503 Service Unavailable` with a small JSON body.
    Unavailable,
    /// `200 OK` with container credentials (`AccessKeyId` testing, as moto accepts).
    Credentials,
    /// Instance metadata that answers a token and the region `us-east-1`, each after
    /// [`SLOW_METADATA_DELAY`].
    SlowMetadata,
}

/// How long [`Hostile::SlowMetadata`] takes to answer each request.
pub const SLOW_METADATA_DELAY: Duration = Duration::from_millis(500);

/// A loopback HTTP server that answers every request the same hostile (or plain) way, and
/// counts the connections it accepted and the body bytes it managed to send.
#[derive(Clone)]
pub struct HostileServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    sent: Arc<AtomicU64>,
}

impl HostileServer {
    pub fn start(behaviour: Hostile) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Self {
            port: listener.local_addr().unwrap().port(),
            connections: Arc::default(),
            sent: Arc::default(),
        };
        let shared = server.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let sent = Arc::clone(&shared.sent);
                thread::spawn(move || {
                    let _ = answer(client, behaviour, &sent);
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Body bytes written into the connections (some may still sit in socket buffers).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

fn answer(mut client: TcpStream, behaviour: Hostile, sent: &AtomicU64) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while header_end(&request).is_none() {
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let small = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let chunk = vec![b'a'; 64 * 1024];
    match behaviour {
        Hostile::EndlessChunked => {
            client.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            )?;
            loop {
                client.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                client.write_all(&chunk)?;
                client.write_all(b"\r\n")?;
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
        Hostile::HugeContentLength => {
            client.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100000000000\r\n\r\n",
            )?;
            loop {
                client.write_all(&chunk)?;
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
        Hostile::Silent => {
            // Hold the connection open without a byte until the client gives up.
            client.set_read_timeout(Some(Duration::from_secs(60)))?;
            while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
            return Ok(());
        }
        Hostile::Forbidden => client.write_all(
            small("403 Forbidden", r#"{"message": "forbidden"}"#).as_bytes(),
        )?,
        Hostile::Unavailable => client.write_all(
            small("503 Service Unavailable", r#"{"message": "try later"}"#).as_bytes(),
        )?,
        Hostile::SlowMetadata => {
            thread::sleep(SLOW_METADATA_DELAY);
            let head = String::from_utf8_lossy(&request).into_owned();
            let answer = if head.starts_with("PUT /latest/api/token") {
                "HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 5\r\nConnection: close\r\n\r\ntoken".to_owned()
            } else if head.starts_with("GET /latest/meta-data/placement/region") {
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nus-east-1".to_owned()
            } else {
                small("404 Not Found", "{}")
            };
            client.write_all(answer.as_bytes())?;
        }
        Hostile::Credentials => client.write_all(
            small(
                "200 OK",
                r#"{"AccessKeyId": "testing", "SecretAccessKey": "testing", "Token": "testing", "Expiration": "2099-01-01T00:00:00Z"}"#,
            )
            .as_bytes(),
        )?,
    }
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}
