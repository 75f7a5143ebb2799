//! The PostgreSQL backend: one database shared by several server replicas.
//!
//! **Sync and async.** The stores' API is synchronous, with `_async` forms that run it on
//! tokio's blocking pool; that stays so on PostgreSQL. The client is tokio-postgres, whose
//! connection objects (the sockets, TLS, the protocol's I/O) must be driven by a tokio
//! runtime, while its `Client` only talks to them over channels. So:
//!
//! - the connections are driven by a small runtime of this crate's own (two worker threads,
//!   started on first use, shared by every PostgreSQL store of the process), which also
//!   runs the pool's connection set-up and each store's listener;
//! - a store's synchronous method polls the `Client`'s futures on the calling thread with a
//!   minimal executor ([`wait`]: park until woken, with a deadline), never with tokio's
//!   `block_on`: so calling it from inside any runtime does not panic, and never
//!   deadlocks that runtime (its connections are driven elsewhere). Like any blocking
//!   call, it occupies the calling thread: async callers use the `_async` forms, which run
//!   it on the blocking pool and never block a runtime thread;
//! - the calling thread is never one of the backend runtime's own (that would deadlock);
//!   [`wait`] refuses it with an error instead.
//!
//! Every statement has a deadline ([`OPERATION_TIMEOUT`]); a connection whose statement
//! timed out or failed at the connection level is dropped rather than returned to the pool.

mod connect;
mod error;
mod listener;
mod rows;
mod schema;

use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

pub(crate) use connect::ConnectSettings;
pub(crate) use error::PgError;
pub(crate) use listener::Listener;
pub use listener::ListenerStatus;

use self::rows::PgRows;
use crate::caches::{ConfigCaches, Invalidation};
use crate::error::Place;
use crate::rows::{Rows, TxError};
use crate::{DatabaseUrl, StoreError};

/// How long one statement, or getting a connection, may take before the store gives up
/// with a transient error (as SQLite's busy timeout).
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections kept per store.
const POOL_SIZE: usize = 8;
/// The channel every store notifies and listens on.
pub(crate) const CHANNEL: &str = "provider_config";
/// Advisory-lock class of this crate (`pcfg`); the second key says what is locked.
pub(crate) const LOCK_CLASS: i32 = 0x7063_6667;

thread_local! {
    static ON_BACKEND_THREAD: Cell<bool> = const { Cell::new(false) };
}

static RUNTIME: LazyLock<Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("provider-config-postgres")
        .on_thread_start(|| ON_BACKEND_THREAD.with(|flag| flag.set(true)))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
});

fn runtime() -> Result<&'static tokio::runtime::Runtime, PgError> {
    RUNTIME
        .as_ref()
        .map_err(|_| PgError::Unavailable("the PostgreSQL runtime could not be started"))
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready or `timeout` has passed. Not tokio's
/// `block_on`: it works inside or outside any runtime, for futures that need none (a
/// `Client`'s, a `JoinHandle`).
pub(crate) fn wait_for<F: Future>(future: F, timeout: Duration) -> Result<F::Output, PgError> {
    if ON_BACKEND_THREAD.with(Cell::get) {
        return Err(PgError::Unavailable(
            "a blocking store method was called on the PostgreSQL runtime's own thread (from an invalidator?); that would deadlock",
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(PgError::Timeout);
        }
        thread::park_timeout(deadline - now);
    }
}

/// [`wait_for`] with the operation timeout.
pub(crate) fn wait<F: Future>(future: F) -> Result<F::Output, PgError> {
    wait_for(future, OPERATION_TIMEOUT)
}

/// 16 random hex digits.
fn new_origin() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // A failed generator leaves zeros: the only cost is a store skipping another's
    // notification with the same origin, which needs the generator to fail twice.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Drops entries of one process's caches and tells every other process sharing the
/// database (a `NOTIFY` outside any write transaction).
#[derive(Debug)]
pub(crate) struct Broadcaster {
    db: Arc<PgDb>,
    local: Arc<ConfigCaches>,
}

impl Broadcaster {
    pub(crate) fn new(db: Arc<PgDb>, local: Arc<ConfigCaches>) -> Self {
        Self { db, local }
    }
}

impl crate::caches::CacheInvalidator for Broadcaster {
    fn invalidate(&self, what: &Invalidation) {
        self.local.invalidate(what);
        if let Err(e) = self.db.notify_now(what) {
            // The other replicas' entries expire with their TTL (at most 60 s for
            // permissions); the failure is worth an alert.
            tracing::error!(
                server = %self.db.server(),
                "could not tell the other processes to drop {what:?}: {e}"
            );
        }
    }
}

/// Closes the connection of `PgRows` when a panic unwinds through the call that uses it:
/// given back to the pool, it could still be inside that call's transaction, holding its
/// locks, and the next caller's `COMMIT` would commit the panicked call's half-done writes.
struct ClosedOnPanic<'a>(PgRows<'a>);

impl Drop for ClosedOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking()
            && let Some(client) = self.0.take_client()
        {
            drop(Object::take(client));
        }
    }
}

/// One PostgreSQL database: a pool of connections and the settings to open more.
pub(crate) struct PgDb {
    pool: Pool,
    settings: ConnectSettings,
    /// Names this store in its notifications, so that its own listener skips them.
    origin: String,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("server", &self.settings.server)
            .finish_non_exhaustive()
    }
}

impl PgDb {
    /// Connects (checking the server answers) and brings the schema up to date.
    pub(crate) fn open(url: &DatabaseUrl) -> Result<Arc<Self>, StoreError> {
        let db = Self::connect_pool(url)?;
        schema::migrate(&db)?;
        Ok(db)
    }

    /// Connects without migrating anything (a newer schema is still refused): for reading,
    /// with a role that may only read.
    pub(crate) fn open_read_only(url: &DatabaseUrl) -> Result<Arc<Self>, StoreError> {
        let db = Self::connect_pool(url)?;
        schema::check_version(&db)?;
        Ok(db)
    }

    fn connect_pool(url: &DatabaseUrl) -> Result<Arc<Self>, StoreError> {
        let settings = ConnectSettings::parse(url)?;
        let server = settings.server.clone();
        let fail = |operation, e: PgError| {
            TxError::Postgres(e).in_database(Place::Server(&server), operation)
        };
        let manager = Manager::from_config(
            settings.config.clone(),
            settings.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_TIMEOUT))
            // The URL's `connect_timeout` bounds the whole set-up (TCP, TLS, start-up), not
            // only the TCP connect tokio-postgres applies it to: a server that accepts and
            // then never answers must fail as fast as one that refuses.
            .create_timeout(Some(
                settings
                    .config
                    .get_connect_timeout()
                    .copied()
                    .unwrap_or(connect::CONNECT_TIMEOUT),
            ))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|_| {
                fail(
                    "creating the connection pool",
                    PgError::Unavailable("the pool could not be built"),
                )
            })?;
        Ok(Arc::new(Self {
            pool,
            settings,
            origin: new_origin(),
        }))
    }

    /// `host:port/dbname`.
    pub(crate) fn server(&self) -> &str {
        &self.settings.server
    }

    /// A pooled connection (a closed one is replaced). Polled on this thread inside the
    /// backend runtime's context, so the pool's timers and a new connection's task belong
    /// to that runtime (no thread hop for an idle connection).
    fn client(&self) -> Result<Object, PgError> {
        let _context = runtime()?.enter();
        wait(self.pool.get())?.map_err(PgError::from)
    }

    pub(crate) fn error(&self, operation: &'static str, e: TxError) -> StoreError {
        e.in_database(Place::Server(self.server()), operation)
    }

    /// Gives a connection back to the pool, or closes it when it may be broken.
    fn release(client: Option<Object>, broken: bool) {
        if let Some(client) = client
            && broken
        {
            drop(Object::take(client));
        }
    }

    /// Runs `f` with a pooled connection; a connection `f` found broken is closed rather
    /// than given back.
    pub(crate) fn with_rows<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&PgRows<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let client = self
            .client()
            .map_err(|e| self.error(operation, TxError::Postgres(e)))?;
        let rows = ClosedOnPanic(PgRows::new(client, &self.pool, &self.origin));
        let result = f(&rows.0);
        let broken = rows.0.is_broken();
        Self::release(rows.0.take_client(), broken);
        result.map_err(|e| self.error(operation, e))
    }

    /// Runs `f` on a pooled connection, each statement on its own.
    pub(crate) fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        self.with_rows(operation, |rows| f(rows))
    }

    /// Runs `f` between `begin` and `COMMIT`; rolls back when it fails.
    fn transaction<T>(
        &self,
        operation: &'static str,
        begin: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        self.with_rows(operation, |rows| {
            rows.batch(begin)?;
            let result = f(rows).and_then(|value| {
                rows.batch("COMMIT")?;
                Ok(value)
            });
            if result.is_err() && !rows.is_broken() && rows.batch("ROLLBACK").is_err() {
                rows.mark_broken();
            }
            result
        })
    }

    /// Runs `f` in one read-committed write transaction; the row operations that read
    /// before writing take their locks.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        self.transaction(operation, "BEGIN", f)
    }

    /// Runs `f` in one read-only snapshot (several statements that must agree).
    pub(crate) fn read_snapshot<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        self.transaction(
            operation,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f,
        )
    }

    /// Runs `f` in a write transaction, then rewrites both tables (`VACUUM FULL`) so that
    /// their files hold no old row version; whether that succeeded (it waits at most
    /// `lock_timeout` for other sessions' locks).
    pub(crate) fn rewrite_scrubbing<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<(T, bool), StoreError> {
        let value = self.write(operation, f)?;
        let scrubbed = self.with_rows("rewriting the tables (VACUUM FULL)", |rows| {
            rows.batch("SET lock_timeout = '30s'")?;
            let done = rows.batch("VACUUM FULL provider_credentials, provider_config");
            rows.batch("RESET lock_timeout")?;
            match done {
                Ok(()) => Ok(true),
                Err(TxError::Postgres(e)) if e.is_lock_timeout() => {
                    tracing::warn!(
                        server = %self.server(),
                        "VACUUM FULL waited too long for other sessions' locks; old row versions may remain in the table files until the next vacuum"
                    );
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })?;
        Ok((value, scrubbed))
    }

    /// Sends a notification now, outside any transaction (for invalidations that do not
    /// come from a write of this crate, such as a user's permissions).
    pub(crate) fn notify_now(&self, what: &Invalidation) -> Result<(), StoreError> {
        self.read("notifying the other processes", |rows| rows.notify(what))
    }

    /// Starts the listener that drops the entries of `caches` that other processes' writes
    /// made stale, and waits (a few seconds at most) until it listens.
    pub(crate) fn listen(&self, caches: Arc<ConfigCaches>) -> Result<Listener, StoreError> {
        Listener::start(self.settings.clone(), self.origin.clone(), caches)
            .map_err(|e| self.error("starting the invalidation listener", TxError::Postgres(e)))
    }
}
