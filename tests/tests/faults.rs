//! Fault injection against the real servers (moto, OpenBao, PostgreSQL) through the loopback
//! fault proxy (`integration_tests::fault_proxy`): delayed, dropped (black-holed) and reset
//! connections, HTTP 500/503 answered by the proxy, and servers of the test's own killed and
//! started again. For every fault: each lookup ends within the configured timeout, the last
//! copy is served when stale serving is on, other keys fall through to the next provider of
//! the chain, nothing panics, and the new value is seen within one backoff period once the
//! server is back (the backoff is timed on an injectable clock; real network recovery is
//! waited for with a bound).
//!
//! Quick under `cargo xtask test` (short timeouts, one round); full under
//! `cargo xtask reliability faults` (the default timeouts, connect 2 s and total 5 s, and
//! more rounds), reporting faults injected and the worst lookup time against the bound.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use integration_tests::fault_proxy::{Fault, FaultProxy};
use integration_tests::{moto, reliability, vault};
use secrets::aws::{AwsSecretsManagerProvider, AwsSettings};
use secrets::config::{ConfigCaches, ConfigStore, DatabaseUrl, StoreLocation};
use secrets::crypto::CredentialCipher;
use secrets::vault::{VaultProvider, VaultSettings};
use secrets::{ManualClock, MemoryProvider, SecretProvider, SecretsManager};
use serde_json::json;

const TTL: Duration = Duration::from_secs(300);
const BACKOFF: Duration = Duration::from_secs(5);
const KEY: &str = "FAULT_TOKEN";
const ONLY_NEXT: &str = "ONLY_IN_NEXT";
/// Scheduling slack on a loaded 2-core machine on top of a configured timeout.
const SLACK: Duration = Duration::from_millis(750);

/// Connect and total timeouts: short in the quick version, the defaults in the full one.
fn timeouts() -> (Duration, Duration) {
    reliability::scale(
        (Duration::from_millis(500), Duration::from_secs(1)),
        (Duration::from_secs(2), Duration::from_secs(5)),
    )
}

fn rounds() -> usize {
    reliability::scale(1, 5)
}

/// Worst lookup time and faults per fault kind, for the report.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, (u64, Duration)>>);

impl Tally {
    fn record(&self, kind: &str, faults: u64, took: Duration) {
        let mut rows = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let row = rows.entry(kind.to_owned()).or_default();
        row.0 += faults;
        row.1 = row.1.max(took);
    }

    fn figures(&self, bound: Duration) -> String {
        let rows = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let parts: Vec<String> = rows
            .iter()
            .map(|(kind, (faults, worst))| {
                format!(
                    "{kind}: {faults} faults injected, worst lookup {:.2} s",
                    worst.as_secs_f64()
                )
            })
            .collect();
        format!(
            "{}; bound {:.1} s (timeout) held",
            parts.join("; "),
            bound.as_secs_f64()
        )
    }
}

/// A lookup, timed; panics (failing the test) past the bound.
async fn timed<T>(
    bound: Duration,
    what: &str,
    f: impl std::future::Future<Output = T>,
) -> (T, Duration) {
    let started = Instant::now();
    let out = f.await;
    let took = started.elapsed();
    assert!(
        took <= bound + SLACK,
        "{what} took {took:?}, over the bound {bound:?} (+{SLACK:?} slack)"
    );
    (out, took)
}

type Lookup = Option<(String, String)>;

async fn lookup(manager: &SecretsManager, key: &str) -> Result<Lookup, String> {
    manager
        .get_with_source(key)
        .await
        .map(|r| r.map(|r| (r.provider, r.value.expose().to_owned())))
        .map_err(|e| e.to_string())
}

fn chain(provider: Arc<dyn SecretProvider>, clock: &Arc<ManualClock>) -> SecretsManager {
    SecretsManager::builder()
        .provider(provider)
        .provider(Arc::new(
            MemoryProvider::new("next").with(ONLY_NEXT, "from-next"),
        ))
        .cache_ttl(TTL)
        .clock(clock.clone())
        .build()
}

/// A remote backend under test: how to write its value directly (not through the proxy),
/// and how to build its provider against an address.
trait Backend {
    fn name(&self) -> &'static str;
    async fn write(&self, value: &str);
    fn provider(
        &self,
        addr: &str,
        stale: bool,
        clock: &Arc<ManualClock>,
    ) -> Arc<dyn SecretProvider>;
}

struct Aws {
    secret: String,
    /// moto, reached directly.
    endpoint: String,
}

impl Aws {
    async fn on(endpoint: String) -> Self {
        let secret = moto::unique("faults");
        let this = Self { secret, endpoint };
        let provider = AwsSecretsManagerProvider::new(this.direct()).unwrap();
        provider
            .client()
            .await
            .unwrap()
            .create_secret()
            .name(&this.secret)
            .secret_string(json!({ KEY: "v0" }).to_string())
            .send()
            .await
            .expect("create the secret in moto");
        this
    }

    fn direct(&self) -> AwsSettings {
        AwsSettings::new(&self.secret)
            .with_region(moto::REGION)
            .with_endpoint_url(&self.endpoint)
    }
}

impl Backend for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    /// Puts a new version, or creates the secret again (a restarted moto is empty).
    async fn write(&self, value: &str) {
        let provider = AwsSecretsManagerProvider::new(self.direct()).unwrap();
        let client = provider.client().await.unwrap();
        let text = json!({ KEY: value }).to_string();
        let put = client
            .put_secret_value()
            .secret_id(&self.secret)
            .secret_string(&text)
            .send()
            .await;
        if put.is_err() {
            client
                .create_secret()
                .name(&self.secret)
                .secret_string(&text)
                .send()
                .await
                .expect("put or create the secret in moto");
        }
    }

    fn provider(
        &self,
        addr: &str,
        stale: bool,
        clock: &Arc<ManualClock>,
    ) -> Arc<dyn SecretProvider> {
        let (connect, total) = timeouts();
        Arc::new(
            AwsSecretsManagerProvider::builder(
                AwsSettings::new(&self.secret)
                    .with_region(moto::REGION)
                    .with_endpoint_url(addr)
                    .with_ttl(TTL)
                    .with_retry_backoff(BACKOFF)
                    .with_serve_stale(stale)
                    .with_timeouts(connect, total),
            )
            .clock(clock.clone())
            .build()
            .unwrap(),
        )
    }
}

struct Vault {
    admin: vault::Admin,
    path: String,
}

impl Backend for Vault {
    fn name(&self) -> &'static str {
        "vault"
    }

    async fn write(&self, value: &str) {
        let (admin, path, value) = (self.admin.clone(), self.path.clone(), value.to_owned());
        tokio::task::spawn_blocking(move || admin.put_v2("secret", &path, json!({ KEY: value })))
            .await
            .unwrap();
    }

    fn provider(
        &self,
        addr: &str,
        stale: bool,
        clock: &Arc<ManualClock>,
    ) -> Arc<dyn SecretProvider> {
        let (connect, total) = timeouts();
        let mut settings = VaultSettings::new(addr)
            .token(self.admin.root_token.as_str())
            .path(self.path.as_str())
            .cache_ttl(TTL)
            .timeouts(connect, total);
        settings.refresh.serve_stale = stale;
        settings.refresh.retry_backoff = BACKOFF;
        Arc::new(VaultProvider::with_clock(settings, clock.clone()).unwrap())
    }
}

/// The faults the proxy injects into HTTP backends; the delay outlasts the total timeout.
fn http_faults() -> Vec<Fault> {
    let (_, total) = timeouts();
    vec![
        Fault::Delay(total + Duration::from_secs(1)),
        Fault::Drop,
        Fault::Reset,
        Fault::Status(500),
        Fault::Status(503),
    ]
}

/// One fault against one backend through the proxy: a warm chain serves the last copy during
/// the fault (stale on), or fails within the bound and lets other keys through (stale off),
/// then sees the new value within one backoff once the fault is lifted.
async fn fault_round(
    backend: &impl Backend,
    proxy: &FaultProxy,
    fault: Fault,
    round: usize,
    tally: &Tally,
) {
    let (_, total) = timeouts();
    let before = format!("{}-{round}-before", fault.name());
    let after = format!("{}-{round}-after", fault.name());
    proxy.set(Fault::None);
    backend.write(&before).await;

    // Stale serving on.
    let clock = Arc::new(ManualClock::new());
    let manager = chain(backend.provider(&proxy.url(), true, &clock), &clock);
    let name = backend.name().to_owned();
    assert_eq!(
        lookup(&manager, KEY).await,
        Ok(Some((name.clone(), before.clone())))
    );
    let faulted = proxy.faulted();
    proxy.set(fault);
    clock.advance(TTL);
    let what = format!("{name} {fault:?} stale lookup");
    let (got, took) = timed(total, &what, lookup(&manager, KEY)).await;
    assert_eq!(got, Ok(Some((name.clone(), before.clone()))), "{what}");
    tally.record(&fault.name(), proxy.faulted() - faulted, took);
    // During the backoff: no new request, the copy again, other keys from the next provider.
    let (got, _) = timed(total, &what, lookup(&manager, KEY)).await;
    assert_eq!(
        got,
        Ok(Some((name.clone(), before.clone()))),
        "{what} (backoff)"
    );
    let (got, _) = timed(total, &what, lookup(&manager, ONLY_NEXT)).await;
    assert_eq!(got, Ok(Some(("next".into(), "from-next".into()))), "{what}");

    // Stale serving off, no copy: an error within the bound; the chain moves on.
    let cold_clock = Arc::new(ManualClock::new());
    let cold = chain(
        backend.provider(&proxy.url(), false, &cold_clock),
        &cold_clock,
    );
    let what = format!("{name} {fault:?} cold lookup");
    let faulted = proxy.faulted();
    let (got, took) = timed(total, &what, lookup(&cold, KEY)).await;
    let error = got.expect_err(&what);
    assert!(
        error.contains(&name),
        "{what}: the error names the provider: {error}"
    );
    assert!(
        !error.contains(&before),
        "{what}: the error quotes the value: {error}"
    );
    tally.record(&fault.name(), proxy.faulted() - faulted, took);
    let (got, _) = timed(total, &what, lookup(&cold, ONLY_NEXT)).await;
    assert_eq!(got, Ok(Some(("next".into(), "from-next".into()))), "{what}");

    // Back: the new value within one backoff.
    backend.write(&after).await;
    proxy.set(Fault::None);
    clock.advance(BACKOFF);
    let (got, _) = timed(total, "recovery", lookup(&manager, KEY)).await;
    assert_eq!(
        got,
        Ok(Some((name.clone(), after.clone()))),
        "{name} {fault:?}: recovery within one backoff"
    );
    cold_clock.advance(BACKOFF);
    let (got, _) = timed(total, "recovery", lookup(&cold, KEY)).await;
    assert_eq!(
        got,
        Ok(Some((name, after))),
        "cold chain recovers within one backoff"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_through_injected_faults() {
    let backend = Aws::on(moto::endpoint()).await;
    let proxy = FaultProxy::start(&backend.endpoint);
    let tally = Tally::default();
    for round in 0..rounds() {
        for fault in http_faults() {
            fault_round(&backend, &proxy, fault, round, &tally).await;
        }
    }
    // A moto of the test's own, killed and started again (it comes back empty).
    let mut own = OwnMoto::start();
    let backend = Aws::on(own.endpoint()).await;
    let addr = own.endpoint();
    killed_and_restarted(&backend, &tally, &mut own, &addr).await;
    let (_, total) = timeouts();
    reliability::report(
        "faults-aws",
        "AWS Secrets Manager (moto) through injected faults and a killed server",
        &tally.figures(total),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_through_injected_faults() {
    let backend = Vault {
        admin: vault::shared(),
        path: vault::unique("faults"),
    };
    let proxy = FaultProxy::start(&backend.admin.addr);
    let tally = Tally::default();
    for round in 0..rounds() {
        for fault in http_faults() {
            fault_round(&backend, &proxy, fault, round, &tally).await;
        }
    }
    let mut own = vault::OwnBao::start();
    let backend = Vault {
        admin: own.admin(),
        path: "faults".into(),
    };
    let addr = own.addr.clone();
    killed_and_restarted(&backend, &tally, &mut own, &addr).await;
    let (_, total) = timeouts();
    reliability::report(
        "faults-vault",
        "Vault (OpenBao) through injected faults and a killed server",
        &tally.figures(total),
    );
}

/// A server of the test's own that can be killed and started again on the same port.
trait Killable {
    fn kill(&mut self);
    fn start_again(&mut self);
}

impl Killable for vault::OwnBao {
    fn kill(&mut self) {
        self.stop();
    }
    fn start_again(&mut self) {
        self.restart();
    }
}

impl Killable for OwnMoto {
    fn kill(&mut self) {
        self.stop();
    }
    fn start_again(&mut self) {
        OwnMoto::start_again(self);
    }
}

/// The server itself killed (connection refused), then started again on the same port.
async fn killed_and_restarted(
    backend: &impl Backend,
    tally: &Tally,
    server: &mut impl Killable,
    addr: &str,
) {
    let (_, total) = timeouts();
    backend.write("killed-before").await;
    let clock = Arc::new(ManualClock::new());
    let manager = chain(backend.provider(addr, true, &clock), &clock);
    let name = backend.name().to_owned();
    assert_eq!(
        lookup(&manager, KEY).await,
        Ok(Some((name.clone(), "killed-before".into())))
    );
    server.kill();
    clock.advance(TTL);
    let (got, took) = timed(total, "killed server", lookup(&manager, KEY)).await;
    assert_eq!(got, Ok(Some((name.clone(), "killed-before".into()))));
    tally.record("killed", 1, took);
    let (got, _) = timed(total, "killed server", lookup(&manager, ONLY_NEXT)).await;
    assert_eq!(got, Ok(Some(("next".into(), "from-next".into()))));
    server.start_again();
    backend.write("killed-after").await;
    clock.advance(BACKOFF);
    let (got, _) = timed(total, "restarted server", lookup(&manager, KEY)).await;
    assert_eq!(
        got,
        Ok(Some((name, "killed-after".into()))),
        "recovery within one backoff"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() != up {
        assert!(
            Instant::now() < deadline,
            "port {port} never became up={up}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A moto server of the test's own, killed by PID.
struct OwnMoto {
    port: u16,
    child: Option<Child>,
}

impl OwnMoto {
    fn start() -> Self {
        let mut this = Self {
            port: free_port(),
            child: None,
        };
        this.start_again();
        this
    }

    fn start_again(&mut self) {
        let moto = integration_tests::test_python().with_file_name("moto_server");
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
        self.child = Some(child);
        wait_port(self.port, true);
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_port(self.port, false);
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set: run the tests with `cargo xtask test`"))
}

/// A PostgreSQL server of the test's own (the launcher `cargo xtask test` exports).
struct OwnPostgres {
    data: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnPostgres {
    fn start() -> Self {
        let port = free_port();
        let data = PathBuf::from(env("SECRETS_TEST_PG_DIR"))
            .join(format!("faults-{}-{port}", std::process::id()));
        let mut this = Self {
            data,
            port,
            child: None,
        };
        this.launch(false);
        this
    }

    fn launch(&mut self, keep: bool) {
        let mut command = Command::new(env("SECRETS_TEST_PYTHON"));
        command
            .arg(env("SECRETS_TEST_PG_LAUNCHER"))
            .arg(&self.data)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if keep {
            command.arg("--keep");
        }
        self.child = Some(command.spawn().unwrap());
        // The port opens while the server still refuses with "starting up".
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while runtime
            .block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute("SELECT 1").await
            })
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on {} never ready",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fast shutdown (SIGINT) that ends every backend: SIGKILL of the postmaster alone
    /// would leave the backends of open connections serving.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
        wait_port(self.port, false);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

/// Retries `f` until it succeeds or `limit` passes.
fn eventually<T, E: std::fmt::Display>(limit: Duration, mut f: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("not recovered within {limit:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// provider-config on PostgreSQL behind the proxy: a delay below the timeout is only slower;
/// reset connections and a killed server are transient errors within the store's bound; the
/// store recovers once the server is back. Black holes (full version only: the store's
/// operation timeout is a fixed 30 s) end within that timeout.
#[test]
fn postgres_through_injected_faults() {
    // provider-config's fixed operation timeout, and the connect timeout set in the URL.
    const OPERATION: Duration = Duration::from_secs(30);
    let mut server = OwnPostgres::start();
    let proxy = FaultProxy::start(&format!("127.0.0.1:{}", server.port));
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable&connect_timeout=2",
        proxy.port()
    );
    let location = StoreLocation::Postgres(DatabaseUrl::parse(&url).unwrap());
    let caches = Arc::new(ConfigCaches::new());
    let store = ConfigStore::builder_at(location)
        .caches(Arc::clone(&caches))
        .cipher(CredentialCipher::from_passphrase("faults test key").unwrap())
        .open()
        .unwrap();
    store.save("replicate", object(json!({"v": 0}))).unwrap();
    let tally = Tally::default();
    let timed_sync = |what: &str, bound: Duration, f: &dyn Fn() -> Result<(), String>| {
        let started = Instant::now();
        let out = f();
        let took = started.elapsed();
        assert!(
            took <= bound + SLACK,
            "{what} took {took:?} (bound {bound:?})"
        );
        (out, took)
    };
    let mut faults = vec![Fault::Delay(Duration::from_millis(300)), Fault::Reset];
    if reliability::full() {
        faults.push(Fault::Drop);
    }
    for round in 0..rounds() {
        for &fault in &faults {
            proxy.set(Fault::None);
            let v = (round * 10 + faults.iter().position(|f| *f == fault).unwrap()) as i64;
            eventually(Duration::from_secs(30), || {
                store.update("replicate", object(json!({"v": v})))
            });
            let faulted = proxy.faulted();
            proxy.set(fault);
            let (out, took) = timed_sync(&format!("postgres {fault:?}"), OPERATION, &|| {
                store
                    .get_uncached("replicate")
                    .map(|c| assert_eq!(c["v"], v))
                    .map_err(|e| e.to_string())
            });
            // `set` cut every connection of the pool: the store is handed one it has not yet
            // seen closed, whose first statement it sends again on a new connection, which
            // meets the fault.
            match fault {
                Fault::Delay(_) => assert_eq!(out, Ok(()), "a delay below the timeout only slows"),
                _ => {
                    let error = out.expect_err("a reset or black-holed connection fails");
                    assert!(
                        error.contains(&proxy.port().to_string()),
                        "the error names the server: {error}"
                    );
                    assert!(
                        proxy.faulted() > faulted,
                        "the read failed without meeting the {fault:?} fault: {error}"
                    );
                }
            }
            tally.record(&fault.name(), proxy.faulted() - faulted, took);
            proxy.set(Fault::None);
            let back = eventually(Duration::from_secs(30), || store.get_uncached("replicate"));
            assert_eq!(back["v"], v, "recovered after {fault:?}");
        }
    }
    // The server killed, then started again with its data.
    server.stop();
    let (out, took) = timed_sync("postgres killed", OPERATION, &|| {
        store
            .get_uncached("replicate")
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let error = out.expect_err("a killed server fails the read");
    assert!(!error.is_empty());
    tally.record("killed", 1, took);
    server.launch(true);
    let back = eventually(Duration::from_secs(30), || store.get("replicate"));
    assert!(back["v"].is_i64());
    store.update("replicate", object(json!({"v": 99}))).unwrap();
    assert_eq!(store.get("replicate").unwrap()["v"], 99);
    reliability::report(
        "faults-postgres",
        "provider-config on PostgreSQL through injected faults and a killed server",
        &tally.figures(OPERATION),
    );
}

/// The proxy itself: a reset is a reset at once (not a black hole), a status is answered.
#[test]
fn the_proxy_resets_and_answers_at_once() {
    use std::io::{Read, Write};
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = FaultProxy::start(&upstream.local_addr().unwrap().to_string());
    let request = |fault: Fault| {
        proxy.set(fault);
        let mut client = std::net::TcpStream::connect(&proxy.addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let started = Instant::now();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let read = client.read_to_end(&mut answer);
        (
            read,
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )
    };
    let (read, _, took) = request(Fault::Reset);
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    assert!(took < Duration::from_secs(1), "reset took {took:?}");
    let (read, answer, took) = request(Fault::Status(503));
    assert!(
        read.is_ok() && answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(1), "503 took {took:?}");
    assert_eq!(proxy.faulted(), 2);
}
