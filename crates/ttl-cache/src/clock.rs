//! Monotonic time behind a trait, so TTL logic can be tested without sleeping.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic clock: the time elapsed since an arbitrary fixed origin.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time since the clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// The real clock. It reads the CPU's time-stamp counter through `quanta` (about 10 ns here,
/// against about 23 ns for `Instant::now`), which matters on a cache's read path.
#[derive(Clone, Copy, Default)]
pub struct SystemClock;

/// The TSC clock, the raw reading taken as its origin, and its calibration: how many
/// nanoseconds 2^32 ticks last. The cache compares raw ticks, converting only TTLs.
#[derive(Clone)]
pub(crate) struct Tsc {
    clock: quanta::Clock,
    start: u64,
    nanos_per_2_32_ticks: u64,
}

impl Tsc {
    pub(crate) fn shared() -> Self {
        static ORIGIN: OnceLock<Tsc> = OnceLock::new();
        ORIGIN
            .get_or_init(|| {
                let clock = quanta::Clock::new();
                let start = clock.raw();
                let nanos_per_2_32_ticks = clock.delta_as_nanos(0, 1 << 32).max(1);
                Tsc {
                    clock,
                    start,
                    nanos_per_2_32_ticks,
                }
            })
            .clone()
    }

    #[inline]
    fn now_ticks(&self) -> u64 {
        self.clock.raw().saturating_sub(self.start)
    }

    fn ticks(&self, d: Duration) -> u64 {
        let ticks = (d.as_nanos() << 32) / u128::from(self.nanos_per_2_32_ticks);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    fn duration(&self, ticks: u64) -> Duration {
        Duration::from_nanos(self.clock.delta_as_nanos(0, ticks))
    }
}

impl fmt::Debug for Tsc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tsc")
    }
}

impl fmt::Debug for SystemClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemClock")
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        let tsc = Tsc::shared();
        tsc.duration(tsc.now_ticks())
    }
}

/// A clock that moves only when told to; for tests.
///
/// ```
/// use std::time::Duration;
/// use ttl_cache::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Duration::from_secs(5));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(duration_nanos(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Nanoseconds of a duration, saturating (584 years fit in a u64).
#[inline]
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The clock a cache uses: the TSC without a virtual call, or any other clock. Times inside
/// the cache are in this source's ticks (raw TSC ticks, or nanoseconds for other clocks).
#[derive(Debug, Clone)]
pub(crate) enum ClockSource {
    System(Tsc),
    Custom(std::sync::Arc<dyn Clock>),
}

impl ClockSource {
    pub(crate) fn system() -> Self {
        Self::System(Tsc::shared())
    }

    /// Now, in ticks.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Self::System(tsc) => tsc.now_ticks(),
            Self::Custom(clock) => duration_nanos(clock.now()),
        }
    }

    /// A duration in ticks (saturating).
    pub(crate) fn ticks(&self, d: Duration) -> u64 {
        match self {
            Self::System(tsc) => tsc.ticks(d),
            Self::Custom(_) => duration_nanos(d),
        }
    }

    /// Ticks as a duration.
    pub(crate) fn duration(&self, ticks: u64) -> Duration {
        match self {
            Self::System(tsc) => tsc.duration(ticks),
            Self::Custom(_) => Duration::from_nanos(ticks),
        }
    }
}
