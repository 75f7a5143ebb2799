//! Single-flight loading: the first caller that misses a key becomes its leader and runs the
//! loader; later callers for the same key wait for the leader's value. Sync waiters block on a
//! condition variable (only that key's), async waiters (feature `async`) await a `Notify`, so
//! they never block a runtime thread. A leader that fails, panics or is cancelled marks the flight abandoned and
//! the waiters retry, one of them becoming the next leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

pub(crate) enum FlightState<V> {
    Pending,
    Done(V),
    Abandoned,
}

pub(crate) struct Flight<K, V> {
    pub(crate) key: K,
    pub(crate) hash: u64,
    state: Mutex<FlightState<V>>,
    cond: Condvar,
    #[cfg(feature = "async")]
    notify: tokio::sync::Notify,
    /// Set when the key is removed or the cache cleared while the load runs: the value is
    /// still handed to the waiters but not stored, since it may predate the removal.
    stale: AtomicBool,
}

impl<K, V: Clone> Flight<K, V> {
    pub(crate) fn new(key: K, hash: u64) -> Self {
        Self {
            key,
            hash,
            state: Mutex::new(FlightState::Pending),
            cond: Condvar::new(),
            #[cfg(feature = "async")]
            notify: tokio::sync::Notify::new(),
            stale: AtomicBool::new(false),
        }
    }

    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stale(&self) -> bool {
        self.stale.load(Ordering::SeqCst)
    }

    pub(crate) fn finish(&self, state: FlightState<V>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
        self.cond.notify_all();
        #[cfg(feature = "async")]
        self.notify.notify_waiters();
    }

    /// The leader's value, or `None` when the leader gave up (then retry).
    pub(crate) fn wait_blocking(&self) -> Option<V> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match &*state {
                FlightState::Pending => {
                    state = self
                        .cond
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                FlightState::Done(v) => return Some(v.clone()),
                FlightState::Abandoned => return None,
            }
        }
    }

    /// The leader's value, or `None` when the leader gave up (then retry).
    #[cfg(feature = "async")]
    pub(crate) async fn wait_async(&self) -> Option<V> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so a `finish` between the look and the await is seen.
            notified.as_mut().enable();
            match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
                FlightState::Pending => {}
                FlightState::Done(v) => return Some(v.clone()),
                FlightState::Abandoned => return None,
            }
            notified.await;
        }
    }
}
