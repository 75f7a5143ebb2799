//! PostgreSQL: the test databases, raw access for planting rows, and the behaviour only a
//! shared server has: replicas invalidating each other, a listener that loses its
//! connection, replicas appending to one audit chain, a server restarted mid-run, TLS.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_postgres::types::{ToSql, Type};

use super::{P, audit_key, cipher, object};
use crate::caches::provider_config_key;
use crate::{
    AuditEvent, AuditTrail, ConfigCaches, ConfigStore, CredentialStore, DatabaseUrl, Secret,
    StoreError, StoreLocation,
};

/// The variable `cargo xtask test` sets to the shared test server's URL.
const URL_VAR: &str = "SECRETS_TEST_DATABASE_URL";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the PostgreSQL tests need the server `cargo xtask test` starts; run them with `cargo xtask test`")
    })
}

/// The URL `base` with another database.
fn with_database(base: &str, database: &str) -> String {
    let (before, query) = base.split_once('?').unwrap_or((base, ""));
    let (scheme, rest) = before.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}/{database}?{query}")
}

/// A database of its own on the shared test server, dropped at the end.
pub(super) struct TestDatabase {
    pub(super) name: String,
    admin_url: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDatabase {
    pub(super) fn create() -> Self {
        Self::create_on(&env(URL_VAR))
    }

    fn create_on(admin_url: &str) -> Self {
        let name = format!(
            "pc_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        RawPg::connect(admin_url).batch(&format!("CREATE DATABASE {name}"));
        Self {
            name,
            admin_url: admin_url.to_owned(),
        }
    }

    pub(super) fn url_text(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    pub(super) fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url_text()).unwrap()
    }

    pub(super) fn connect(&self) -> RawPg {
        RawPg::connect(&self.url_text())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(admin) = RawPg::try_connect(&self.admin_url) {
            let _ = admin.try_batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A plain tokio-postgres connection on a runtime of its own, for the tests' statements.
pub(crate) struct RawPg {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl RawPg {
    pub(super) fn connect(url: &str) -> Self {
        Self::try_connect(url).unwrap_or_else(|e| panic!("connecting to the test server: {e}"))
    }

    fn try_connect(url: &str) -> Result<Self, tokio_postgres::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(Self { runtime, client })
    }

    fn try_batch(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    pub(super) fn batch(&self, sql: &str) {
        self.try_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `?N` placeholders become `$N`; parameters take the type the statement expects.
    fn prepare(
        &self,
        sql: &str,
        params: &[P],
    ) -> (tokio_postgres::Statement, Vec<Box<dyn ToSql + Sync + Send>>) {
        let sql = sql.replace('?', "$");
        let statement = self
            .runtime
            .block_on(self.client.prepare(&sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let values = params
            .iter()
            .zip(statement.params())
            .map(|(p, ty)| -> Box<dyn ToSql + Sync + Send> {
                match (p, ty) {
                    (P::I(i), &Type::INT4) => Box::new(i32::try_from(*i).unwrap()),
                    (P::I(i), _) => Box::new(*i),
                    (P::T(s), _) => Box::new(s.clone()),
                    (P::Null, &Type::INT8) => Box::new(None::<i64>),
                    (P::Null, &Type::INT4) => Box::new(None::<i32>),
                    (P::Null, _) => Box::new(None::<String>),
                }
            })
            .collect();
        (statement, values)
    }

    pub(super) fn execute(&self, sql: &str, params: &[P]) -> u64 {
        let (statement, values) = self.prepare(sql, params);
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as _).collect();
        self.runtime
            .block_on(self.client.execute(&statement, &refs))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub(super) fn rows(&self, sql: &str, params: &[P]) -> Vec<Vec<Option<String>>> {
        let (statement, values) = self.prepare(sql, params);
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as _).collect();
        let rows = self
            .runtime
            .block_on(self.client.query(&statement, &refs))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| match *row.columns()[i].type_() {
                        Type::INT8 => row.get::<_, Option<i64>>(i).map(|v| v.to_string()),
                        Type::INT4 => row.get::<_, Option<i32>>(i).map(|v| v.to_string()),
                        Type::BOOL => row.get::<_, Option<bool>>(i).map(|v| v.to_string()),
                        _ => row.get::<_, Option<String>>(i),
                    })
                    .collect()
            })
            .collect()
    }

    /// The tables with a live row whose text holds `needle`.
    pub(super) fn tables_holding(&self, needle: &str) -> Vec<String> {
        [
            "provider_config",
            "provider_credentials",
            "audit_log",
            "audit_row_mac",
        ]
        .into_iter()
        .filter(|table| {
            let found = self.rows(
                &format!("SELECT count(*) FROM {table} t WHERE strpos(t::text, ?1) > 0"),
                &[P::T(needle.to_owned())],
            );
            found[0][0].as_deref() != Some("0")
        })
        .map(str::to_owned)
        .collect()
    }
}

impl super::Raw {
    /// The tables with a live row holding `needle` (PostgreSQL).
    pub(super) fn tables_holding(&self, needle: &str) -> Vec<String> {
        match self {
            super::Raw::Postgres(pg) => pg.tables_holding(needle),
            super::Raw::Sqlite(_) => unreachable!("SQLite is searched in its files"),
        }
    }
}

/// Polls `condition` every millisecond until it holds; how long that took, or `None` after
/// `limit`.
fn within(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn replica(location: &StoreLocation) -> (ConfigStore, Arc<ConfigCaches>) {
    let caches = Arc::new(ConfigCaches::new());
    let store = ConfigStore::builder_at(location.clone())
        .caches(Arc::clone(&caches))
        .cipher(cipher())
        .open()
        .unwrap();
    (store, caches)
}

#[test]
fn a_write_on_one_replica_drops_the_others_cached_copy_within_a_second() {
    let db = TestDatabase::create();
    let location = StoreLocation::Postgres(db.url());
    let (a, _) = replica(&location);
    let (b, b_caches) = replica(&location);
    let key = provider_config_key("replicate");
    a.save("replicate", object(json!({"v": 1}))).unwrap();
    // The save's own notification must reach B before B caches: arriving later, it would
    // (rightly) drop the copy the loop below expects to find.
    within(Duration::from_secs(1), || {
        b.listener_status().unwrap().notifications >= 1
    })
    .expect("the save's notification reaches B");
    let mut latencies = Vec::new();
    for v in 2..=20 {
        assert_eq!(b.get("replicate").unwrap()["v"], v - 1);
        assert!(b_caches.provider_config().contains_key(&key));
        a.update("replicate", object(json!({ "v": v }))).unwrap();
        let gone = within(Duration::from_secs(1), || {
            !b_caches.provider_config().contains_key(&key)
        });
        latencies.push(gone.expect("B still caches the old configuration 1 s after A's commit"));
        assert_eq!(b.get("replicate").unwrap()["v"], v);
    }
    // Deletes, credentials re-encrypted elsewhere and the hardware pricing too.
    b.hardware_pricing().unwrap();
    a.delete("replicate").unwrap();
    within(Duration::from_secs(1), || {
        !b_caches.provider_config().contains_key(&key)
    })
    .expect("a delete reaches B");
    assert!(b.get("replicate").unwrap().is_empty());
    assert_eq!(b_caches.hardware_info().len(), 0);
    // The global invalidation functions' broadcaster reaches B: a user's permissions.
    b_caches.user_permissions().insert(
        "user:7:permissions".into(),
        Arc::new(["job.submit".to_owned()].into()),
    );
    a.broadcaster().invalidate(&crate::Invalidation::User(7));
    within(Duration::from_secs(1), || {
        b_caches.user_permissions().is_empty()
    })
    .expect("a user's invalidation reaches B");
    // A's own writes do not bounce back to A through its listener.
    let status = a.listener_status().unwrap();
    assert!(status.listening && status.backend_pid.is_some());
    assert_eq!(status.reconnects, 0);
    assert!(b.listener_status().unwrap().notifications >= 20);
    latencies.sort();
    eprintln!(
        "cross-replica invalidation: p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies.last()
    );
}

#[test]
fn a_terminated_listener_reconnects_clears_the_caches_and_sees_later_writes() {
    let db = TestDatabase::create();
    let location = StoreLocation::Postgres(db.url());
    let (a, _) = replica(&location);
    let (b, b_caches) = replica(&location);
    a.save("replicate", object(json!({"v": 1}))).unwrap();
    a.save("modal", object(json!({"v": 1}))).unwrap();
    // The saves' notifications must reach B before B caches (arriving later, they would
    // rightly drop the copies counted below).
    within(Duration::from_secs(1), || {
        b.listener_status().unwrap().notifications >= 2
    })
    .expect("the saves' notifications reach B");
    b.get("replicate").unwrap();
    b.get("modal").unwrap();
    assert_eq!(b_caches.provider_config().len(), 2);
    let pid = b.listener_status().unwrap().backend_pid.unwrap();
    let admin = db.connect();
    let terminated = admin.rows("SELECT pg_terminate_backend(?1)", &[P::I(pid.into())]);
    assert_eq!(terminated[0][0].as_deref(), Some("true"));
    // Reads keep working while the listener is away (from the database, uncached).
    for _ in 0..50 {
        assert_eq!(b.get("modal").unwrap()["v"], 1);
    }
    within(Duration::from_secs(10), || {
        let status = b.listener_status().unwrap();
        status.listening && status.reconnects == 1
    })
    .expect("B's listener reconnects");
    let new_pid = b.listener_status().unwrap().backend_pid.unwrap();
    assert_ne!(new_pid, pid);
    // It cleared the caches: entries cached before may be stale. (`modal`, read meanwhile,
    // may be cached again; `replicate` was not read since.)
    assert!(
        !b_caches
            .provider_config()
            .contains_key(&provider_config_key("replicate"))
    );
    // And it hears later writes.
    assert_eq!(b.get("replicate").unwrap()["v"], 1);
    a.update("replicate", object(json!({"v": 2}))).unwrap();
    within(Duration::from_secs(1), || {
        !b_caches
            .provider_config()
            .contains_key(&provider_config_key("replicate"))
    })
    .expect("B hears writes after reconnecting");
    assert_eq!(b.get("replicate").unwrap()["v"], 2);
}

/// Pooled connections the server closed while they sat idle (`pg_terminate_backend`, as
/// a restart, a failover or a proxy's idle timeout does): the pool's check cannot see it
/// until the connection's task has read the close, so the store is handed a dead
/// connection; its first statement, which never ran, is sent again on another one.
#[test]
fn idle_pooled_connections_the_server_closed_cost_no_failed_call() {
    let db = TestDatabase::create();
    let location = StoreLocation::Postgres(db.url());
    let (store, _) = replica(&location);
    store.save("replicate", object(json!({"v": 1}))).unwrap();
    let listener = store.listener_status().unwrap().backend_pid.unwrap();
    let admin = db.connect();
    let mut terminated = 0;
    for round in 0..30 {
        // Several connections in the pool: reads from threads at once.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| store.get_uncached("replicate").unwrap());
            }
        });
        let rows = admin.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> ?1",
            &[P::I(listener.into())],
        );
        terminated += rows.len();
        // At once, before the pool could notice: reads and a write.
        assert_eq!(
            store.get_uncached("replicate").unwrap()["v"],
            1,
            "round {round}"
        );
        store
            .update("replicate", object(json!({"round": round})))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert!(terminated >= 30, "{terminated} connections terminated");
    assert_eq!(store.get_uncached("replicate").unwrap()["round"], 29);
}

/// A loopback proxy whose connections, once [`cut_all`](Self::cut_all) ran, are closed
/// on the client's next request: exactly a pooled connection that died while idle and
/// whose task has not noticed yet.
struct SilentCutProxy {
    port: u16,
    generation: Arc<AtomicU64>,
}

impl SilentCutProxy {
    fn start(upstream: String) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let generation = Arc::new(AtomicU64::new(0));
        let current = Arc::clone(&generation);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let (client, server) = (Arc::new(client), Arc::new(server));
                let (to_server, from_client, current) = (
                    Arc::clone(&server),
                    Arc::clone(&client),
                    Arc::clone(&current),
                );
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = (&*from_client).read(&mut buf) {
                        if current.load(Ordering::SeqCst) != born {
                            break;
                        }
                        if (&*to_server).write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = from_client.shutdown(Shutdown::Both);
                    let _ = to_server.shutdown(Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = (&*server).read(&mut buf) {
                        if (&*client).write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                });
            }
        });
        Self { port, generation }
    }

    fn cut_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// As many calls at once as the pool holds, each handed a pooled connection that died
/// while idle: each gives its dead connection up before asking the pool for another (a
/// held one keeps its slot: they would wait for each other until the 30 s timeout).
#[test]
fn a_pool_of_dead_connections_met_by_as_many_calls_at_once_costs_no_failed_call() {
    let db = TestDatabase::create();
    // The test database's URL, through the proxy.
    let direct = db.url_text();
    let (scheme, rest) = direct.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, upstream) = authority.rsplit_once('@').unwrap();
    let proxy = SilentCutProxy::start(upstream.to_owned());
    let url = format!("{scheme}://{user}@127.0.0.1:{}/{path}", proxy.port);
    let location = StoreLocation::Postgres(DatabaseUrl::parse(&url).unwrap());
    let (store, _) = replica(&location);
    store.save("replicate", object(json!({"v": 1}))).unwrap();
    // Fill the pool: more callers than connections, at once.
    for _ in 0..5 {
        let barrier = std::sync::Barrier::new(16);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..10 {
                        store.get_uncached("replicate").unwrap();
                    }
                });
            }
        });
    }
    proxy.cut_all();
    let barrier = std::sync::Barrier::new(8);
    let results: Vec<(Duration, Result<(), String>)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let started = Instant::now();
                    let result = store
                        .get_uncached("replicate")
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    (started.elapsed(), result)
                })
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    for (took, result) in &results {
        assert!(result.is_ok(), "{result:?} after {took:?}");
        assert!(*took < Duration::from_secs(5), "took {took:?}");
    }
}

/// A panic inside a transaction (a bug) closes its connection: given back to the pool
/// still in the transaction, the next caller's `COMMIT` would commit the half-done writes.
#[test]
fn a_panic_inside_a_transaction_never_leaves_its_writes_to_the_next_caller() {
    use crate::backend::{Backend, Tables};
    use crate::rows::TxError;
    let db = TestDatabase::create();
    let backend = Backend::open(&StoreLocation::Postgres(db.url()), Tables::Jobs).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backend.write("writing half", |rows| -> Result<(), TxError> {
            rows.config_put("half-done", "{}", "now")?;
            panic!("injected");
        })
    }));
    assert!(panicked.is_err());
    backend
        .write("writing", |rows| rows.config_put("next", "{}", "now"))
        .unwrap();
    let stored = backend.read("listing", |rows| rows.config_list()).unwrap();
    assert_eq!(stored, ["next"]);
}

#[test]
fn four_replicas_appending_at_once_keep_one_chain() {
    let db = TestDatabase::create();
    let location = StoreLocation::Postgres(db.url());
    let trails: Vec<AuditTrail> = (0..4)
        .map(|_| AuditTrail::open_at(&location, audit_key()).unwrap())
        .collect();
    std::thread::scope(|s| {
        for (t, trail) in trails.iter().enumerate() {
            s.spawn(move || {
                for i in 0..50 {
                    trail
                        .append(&AuditEvent::new("provider.configured", format!("{t}/{i}")))
                        .unwrap();
                }
            });
        }
    });
    let report = trails[3].verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(
        (report.entries_checked, report.row_macs_checked),
        (200, 200)
    );
    // Every row links to the one before it by id: one linear chain.
    let rows = db.connect().rows(
        "SELECT id, previous_hash, entry_hash FROM audit_log ORDER BY id",
        &[],
    );
    for pair in rows.windows(2) {
        assert_eq!(pair[1][1], pair[0][2]);
    }
    // A cleanup by one replica while the others append keeps it one chain.
    std::thread::scope(|s| {
        for trail in &trails[1..] {
            s.spawn(move || {
                for i in 0..10 {
                    trail
                        .append(&AuditEvent::new("provider.configured", format!("late {i}")))
                        .unwrap();
                }
            });
        }
        s.spawn(|| trails[0].cleanup_before(crate::Timestamp::now()).unwrap());
    });
    let report = trails[0].verify().unwrap();
    assert!(report.valid, "{report:?}");
}

/// A PostgreSQL server of the test's own (so it can be stopped and started again), from the
/// launcher `cargo xtask test` provides.
struct PrivateServer {
    data: PathBuf,
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl PrivateServer {
    fn start(name: &str, extra: &[&str]) -> Self {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let data = PathBuf::from(env("SECRETS_TEST_PG_DIR"))
            .join(format!("{name}-{}-{port}", std::process::id()));
        let mut server = Self {
            data,
            port,
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.launch(false);
        server
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{query}",
            self.port
        )
    }

    fn launch(&mut self, keep: bool) {
        let mut command = Command::new(env("SECRETS_TEST_PYTHON"));
        command
            .arg(env("SECRETS_TEST_PG_LAUNCHER"))
            .arg(&self.data)
            .arg(self.port.to_string())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if keep {
            command.arg("--keep");
        }
        self.child = Some(command.spawn().unwrap());
        let url = self.url("sslmode=disable");
        within(Duration::from_secs(60), || {
            RawPg::try_connect(&url).is_ok_and(|c| c.try_batch("SELECT 1").is_ok())
        })
        .expect("the private PostgreSQL server started");
    }

    /// A clean, fast shutdown (SIGINT), waited for.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

#[test]
fn reads_fail_transiently_while_the_server_is_down_and_recover_after() {
    let mut server = PrivateServer::start("restart", &[]);
    let location =
        StoreLocation::Postgres(DatabaseUrl::parse(&server.url("sslmode=disable")).unwrap());
    let (store, caches) = replica(&location);
    let trail = AuditTrail::open_at(&location, audit_key()).unwrap();
    let creds = CredentialStore::open_at(&location, cipher(), Some(trail.clone())).unwrap();
    store.save("replicate", object(json!({"v": 1}))).unwrap();
    creds
        .set(1, "replicate", "api_token", &Secret::new("token"))
        .unwrap();
    assert_eq!(store.get("replicate").unwrap()["v"], 1);
    assert_eq!(caches.provider_config().len(), 1);

    server.stop();
    within(Duration::from_secs(15), || {
        !store.listener_status().unwrap().listening
    })
    .expect("the listener notices the server is gone");
    // The cached copy is not served while invalidations cannot arrive.
    assert_eq!(caches.provider_config().len(), 0);
    let started = Instant::now();
    for e in [
        store.get("replicate").unwrap_err(),
        store.get_uncached("replicate").unwrap_err(),
        store
            .update("replicate", object(json!({"v": 2})))
            .unwrap_err(),
        creds.get(1, "replicate", "api_token").unwrap_err(),
        trail.verify().unwrap_err(),
    ] {
        assert!(e.is_transient(), "not transient: {e}");
        assert!(matches!(e, StoreError::Server { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains(&format!("127.0.0.1:{}", server.port)),
            "{e}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        started.elapsed()
    );

    server.launch(true);
    within(Duration::from_secs(30), || store.get("replicate").is_ok())
        .expect("reads recover once the server is back");
    assert_eq!(store.get("replicate").unwrap()["v"], 1);
    within(Duration::from_secs(15), || {
        let status = store.listener_status().unwrap();
        status.listening && status.reconnects == 1
    })
    .expect("the listener reconnects");
    store.update("replicate", object(json!({"v": 3}))).unwrap();
    assert_eq!(store.get("replicate").unwrap()["v"], 3);
    assert_eq!(
        creds
            .get(1, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        "token"
    );
    assert!(trail.verify().unwrap().valid);
}

#[test]
fn the_sync_api_inside_a_runtime_neither_panics_nor_stalls_it() {
    let db = TestDatabase::create();
    let (store, _) = replica(&StoreLocation::Postgres(db.url()));
    store.save("replicate", object(json!({"v": 1}))).unwrap();
    // A current-thread runtime: a blocking call inside it must still complete (the
    // connections are driven by the backend's own runtime).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(store.get_uncached("replicate").unwrap()["v"], 1);
        store.update("replicate", object(json!({"v": 2}))).unwrap();
        let other = store.clone();
        let task = tokio::spawn(async move { other.get_uncached_async_for_test().await });
        assert_eq!(task.await.unwrap()["v"], 2);
        assert_eq!(
            store
                .update_async("replicate", object(json!({"v": 3})))
                .await
                .unwrap()["v"],
            3
        );
    });
}

impl ConfigStore {
    async fn get_uncached_async_for_test(&self) -> crate::CloudProviderConfig {
        let store = self.clone();
        crate::backend::unblock(move || store.get_uncached("replicate"))
            .await
            .unwrap()
    }
}

#[test]
fn a_bad_or_unreachable_url_is_a_clear_error_without_the_password() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://app:SENTINEL-pw@127.0.0.1:{port}/x?sslmode=disable");
    let e = ConfigStore::builder_at(DatabaseUrl::parse(&url).unwrap())
        .open()
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("SENTINEL"), "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port}/x")), "{shown}");
    let e = ConfigStore::builder_at(
        DatabaseUrl::parse("postgres://app:SENTINEL-pw@h/x?sslmode=sometimes").unwrap(),
    )
    .open()
    .unwrap_err();
    assert!(
        matches!(e, StoreError::InvalidDatabaseUrl { .. }) && !e.is_transient(),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("SENTINEL"));
}

/// A CA and a server certificate for 127.0.0.1 made with Python's `cryptography` (in the
/// test virtualenv), as PEM files in `dir`: `ca.pem`, `server.pem`, `server.key`, and a CA
/// that signed nothing, `other-ca.pem`.
fn make_certificates(dir: &std::path::Path) {
    const SCRIPT: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256()))
    return key, cert
ca_key, ca_cert = ca("provider-config test CA")
_, other = ca("another CA")
key = ec.generate_private_key(ec.SECP256R1())
cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca_cert.subject)
    .public_key(key.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
    .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    .sign(ca_key, hashes.SHA256()))
pem = serialization.Encoding.PEM
open(out + "/ca.pem", "wb").write(ca_cert.public_bytes(pem))
open(out + "/other-ca.pem", "wb").write(other.public_bytes(pem))
open(out + "/server.pem", "wb").write(cert.public_bytes(pem))
open(out + "/server.key", "wb").write(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
"#;
    let status = Command::new(env("SECRETS_TEST_PYTHON"))
        .args(["-c", SCRIPT])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "making the test certificates failed");
}

/// A TLS front for the plain test server (pgserver's PostgreSQL is built without TLS): it
/// answers PostgreSQL's `SSLRequest` with `S`, completes the handshake with the test
/// certificate, and relays the decrypted protocol to the real server; a client that asks
/// for no TLS is relayed as it is. It counts both kinds of session.
struct TlsFront {
    port: u16,
    tls_sessions: Arc<AtomicU64>,
    plain_sessions: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

/// PostgreSQL's `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

impl TlsFront {
    fn start(upstream: u16, cert: &std::path::Path, key: &std::path::Path) -> Self {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tls_sessions, plain_sessions) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (tls_count, plain_count) = (Arc::clone(&tls_sessions), Arc::clone(&plain_sessions));
        runtime.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (tls_count, plain_count) = (Arc::clone(&tls_count), Arc::clone(&plain_count));
                tokio::spawn(async move {
                    let mut first = [0u8; 8];
                    client.read_exact(&mut first).await?;
                    let mut server =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await?;
                    if first == SSL_REQUEST {
                        client.write_all(b"S").await?;
                        let mut tls = acceptor.accept(client).await?;
                        tls_count.fetch_add(1, Ordering::Relaxed);
                        tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
                    } else {
                        plain_count.fetch_add(1, Ordering::Relaxed);
                        server.write_all(&first).await?;
                        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
                    }
                    Ok::<_, std::io::Error>(())
                });
            }
        });
        Self {
            port,
            tls_sessions,
            plain_sessions,
            _runtime: runtime,
        }
    }
}

#[test]
fn tls_is_used_and_verified_as_the_url_asks() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let db = TestDatabase::create();
    let upstream: u16 = {
        let url = env(URL_VAR);
        let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
        authority.rsplit(':').next().unwrap().parse().unwrap()
    };
    let front = TlsFront::start(
        upstream,
        &certs.path().join("server.pem"),
        &certs.path().join("server.key"),
    );
    let ca = certs.path().join("ca.pem");
    let other_ca = certs.path().join("other-ca.pem");
    let open = |query: String| {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/{}?{query}",
            front.port, db.name
        );
        ConfigStore::builder_at(DatabaseUrl::parse(&url).unwrap()).open()
    };
    let sessions = || {
        (
            front.tls_sessions.load(Ordering::Relaxed),
            front.plain_sessions.load(Ordering::Relaxed),
        )
    };
    // verify-full against the CA that signed the certificate for 127.0.0.1: every
    // connection of the store (pool and listener) is TLS.
    let store = open(format!("sslmode=verify-full&sslrootcert={}", ca.display())).unwrap();
    store.save("replicate", object(json!({"v": 1}))).unwrap();
    assert_eq!(store.get_uncached("replicate").unwrap()["v"], 1);
    let (tls, plain) = sessions();
    assert!(tls >= 2 && plain == 0, "{tls} TLS, {plain} plain sessions");
    drop(store);
    // verify-ca and require are TLS too; disable is not.
    open(format!("sslmode=verify-ca&sslrootcert={}", ca.display())).unwrap();
    open("sslmode=require".into()).unwrap();
    assert_eq!(sessions().1, 0);
    let plain = open("sslmode=disable".into()).unwrap();
    assert_eq!(plain.get_uncached("replicate").unwrap()["v"], 1);
    assert!(sessions().1 >= 1);
    // A certificate no trusted root signed is refused, and that is no transient failure.
    let e = open(format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca.display()
    ))
    .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");
}
