//! The listener: a dedicated connection per store that `LISTEN`s on the store's channel and
//! drops the cache entries other processes' writes made stale.
//!
//! Every write sends `NOTIFY provider_config, '<what>'` inside its transaction, so the
//! notification is delivered exactly when the write commits (and never for a rolled-back
//! one). `<what>` is `provider:<name>` (the provider's configuration, and for `replicate`
//! the hardware pricing) or `user:<id>` (a user's permissions).
//!
//! When the connection drops (the server restarted, the backend was terminated, a network
//! failure caught by the heartbeat), notifications may be missed, so the store clears its
//! caches and reads from the database without caching until the listener is back; it
//! reconnects with exponential backoff (0.1 s doubling to 5 s), clears the caches again once
//! it listens, and logs how long the gap was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

use super::connect::ConnectSettings;
use super::{CHANNEL, PgError, wait_for};
use crate::caches::{CacheInvalidator, ConfigCaches, Invalidation};

/// How often the listener checks its connection when nothing arrives.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a heartbeat may take before the connection counts as lost.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first reconnection delay, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long opening a store waits for its listener to listen.
const START_WAIT: Duration = Duration::from_secs(10);

/// The payload naming what a write made stale: `<origin>:provider:<name>` or
/// `<origin>:user:<id>`, where `<origin>` names the store that wrote (its own listener
/// skips it: the writer already dropped its entries after the commit).
pub(crate) fn payload(origin: &str, what: &Invalidation) -> String {
    match what {
        Invalidation::Provider(name) => format!("{origin}:provider:{name}"),
        Invalidation::User(id) => format!("{origin}:user:{id}"),
    }
}

/// The origin and what a payload names; `None` for one this version does not know.
fn parse(payload: &str) -> Option<(&str, Invalidation)> {
    let (origin, rest) = payload.split_once(':')?;
    let what = match rest.split_once(':')? {
        ("provider", name) => Invalidation::Provider(name.to_owned()),
        ("user", id) => Invalidation::User(id.parse().ok()?),
        _ => return None,
    };
    Some((origin, what))
}

/// The state of a store's listener, for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Whether the listener is connected and listening: the caches are in use. While it is
    /// not, reads go to the database.
    pub listening: bool,
    /// How many times the connection was lost and then re-established.
    pub reconnects: u64,
    /// The server process id of the listening connection (`pg_stat_activity.pid`), while
    /// listening.
    pub backend_pid: Option<i32>,
    /// Notifications received.
    pub notifications: u64,
}

#[derive(Debug, Default)]
struct Shared {
    listening: AtomicBool,
    reconnects: AtomicU64,
    backend_pid: AtomicI32,
    notifications: AtomicU64,
}

/// A running listener; stopped when dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    shared: Arc<Shared>,
    task: tokio::task::AbortHandle,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening for `caches` and waits up to [`START_WAIT`] until it does (when the
    /// server is slow to answer, the store starts without: its reads bypass the caches
    /// until the listener is up).
    pub(crate) fn start(
        settings: ConnectSettings,
        origin: String,
        caches: Arc<ConfigCaches>,
    ) -> Result<Self, PgError> {
        let shared = Arc::new(Shared::default());
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let task = super::runtime()?
            .spawn(run(settings, origin, caches, Arc::clone(&shared), ready_tx))
            .abort_handle();
        let _ = wait_for(ready_rx.wait_for(|ready| *ready), START_WAIT);
        Ok(Self { shared, task })
    }

    /// Whether the caches may be used (the listener listens).
    pub(crate) fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::Acquire)
    }

    pub(crate) fn status(&self) -> ListenerStatus {
        let pid = self.shared.backend_pid.load(Ordering::Relaxed);
        let listening = self.is_listening();
        ListenerStatus {
            listening,
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
            backend_pid: (listening && pid != 0).then_some(pid),
            notifications: self.shared.notifications.load(Ordering::Relaxed),
        }
    }
}

/// The listener's life: connect, listen, pump notifications; after a loss, reconnect with
/// backoff.
async fn run(
    settings: ConnectSettings,
    origin: String,
    caches: Arc<ConfigCaches>,
    shared: Arc<Shared>,
    ready: watch::Sender<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut lost_at: Option<Instant> = None;
    loop {
        match connect(&settings).await {
            Ok((client, mut notifications, pid)) => {
                // Listening from here on: whatever was cached before may have missed a
                // notification, whatever is read from now on will not.
                caches.clear();
                shared.backend_pid.store(pid, Ordering::Relaxed);
                shared.listening.store(true, Ordering::Release);
                let _ = ready.send(true);
                if let Some(since) = lost_at.take() {
                    shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        server = %settings.server,
                        gap_ms = since.elapsed().as_millis() as u64,
                        "the invalidation listener is back after {:.1?}; cleared the caches, since notifications sent meanwhile were missed",
                        since.elapsed()
                    );
                }
                backoff = FIRST_BACKOFF;
                let reason = pump(&client, &mut notifications, &origin, &caches, &shared).await;
                shared.listening.store(false, Ordering::Release);
                caches.clear();
                lost_at = Some(Instant::now());
                tracing::warn!(
                    server = %settings.server,
                    "the invalidation listener lost its connection ({reason}); reads go to the database until it is back"
                );
                // Reconnect at once the first time: a terminated backend is no outage.
                continue;
            }
            Err(e) => {
                shared.listening.store(false, Ordering::Release);
                if lost_at.is_none() {
                    lost_at = Some(Instant::now());
                }
                tracing::debug!(
                    server = %settings.server,
                    "the invalidation listener cannot connect ({e}); retrying in {backoff:?}"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A listening connection: the client, the notifications its connection receives (the
/// channel closes when the connection ends), and its backend's pid.
async fn connect(
    settings: &ConnectSettings,
) -> Result<
    (
        tokio_postgres::Client,
        mpsc::UnboundedReceiver<Result<String, String>>,
        i32,
    ),
    String,
> {
    let mut config = settings.config.clone();
    config.application_name("provider-config listener");
    let (client, mut connection) = config
        .connect(settings.tls.clone())
        .await
        .map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if n.channel() == CHANNEL && tx.send(Ok(n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Some(Ok(_notice)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| e.to_string())?;
    Ok((client, rx, pid))
}

/// Applies notifications until the connection is lost; why it was.
async fn pump(
    client: &tokio_postgres::Client,
    notifications: &mut mpsc::UnboundedReceiver<Result<String, String>>,
    origin: &str,
    caches: &ConfigCaches,
    shared: &Shared,
) -> String {
    let invalidator: &dyn CacheInvalidator = caches;
    loop {
        match tokio::time::timeout(HEARTBEAT, notifications.recv()).await {
            Ok(Some(Ok(payload))) => {
                shared.notifications.fetch_add(1, Ordering::Relaxed);
                match parse(&payload) {
                    Some((from, _)) if from == origin => {}
                    Some((_, what)) => invalidator.invalidate(&what),
                    None => {
                        tracing::warn!(
                            payload = %payload.escape_debug(),
                            "an invalidation this version does not know; cleared the caches"
                        );
                        caches.clear();
                    }
                }
            }
            Ok(Some(Err(e))) => return e,
            Ok(None) => return "the connection closed".to_owned(),
            Err(_quiet) => {
                match tokio::time::timeout(HEARTBEAT_TIMEOUT, client.batch_execute("")).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => {
                        return format!("no answer to a heartbeat within {HEARTBEAT_TIMEOUT:?}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for what in [
            Invalidation::Provider("replicate".into()),
            Invalidation::Provider("odd:name with spaces".into()),
            Invalidation::User(-7),
        ] {
            assert_eq!(parse(&payload("0a1b", &what)), Some(("0a1b", what)));
        }
        assert_eq!(parse("0a1b:user:x"), None);
        assert_eq!(parse("provider:replicate"), None);
        assert_eq!(parse("everything"), None);
    }
}
