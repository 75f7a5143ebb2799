//! One shard: a hash table of slot indices over a slab of entries, CLOCK (second chance)
//! recency, a FIFO list of default-TTL entries (which is also their expiry order, since time
//! only moves forward and they share one TTL) and a heap for entries with their own TTL.
//!
//! Recency is CLOCK rather than an exact LRU list because a hit then only sets a flag in the
//! slot it has already read, instead of relinking three list nodes scattered over the slab
//! (three likely cache misses per read). Eviction takes the first entry the hand finds that
//! was not used since the hand last passed it, and never the entry read or written last.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::clock::ClockSource;
use crate::flight::Flight;

const NIL: u32 = u32::MAX;
/// `fifo.prev` of an entry that has its own TTL and lives in the heap instead.
const IN_HEAP: u32 = u32::MAX - 1;

#[derive(Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
}

const UNLINKED: Links = Links {
    prev: NIL,
    next: NIL,
};

/// One cache line per slot (for small keys and values): a lookup touches one line, not two.
struct Slot<K, V> {
    /// `None` for a vacant slot; then `fifo.next` links the free list.
    entry: Option<(K, V)>,
    hash: u64,
    expires_at: u64,
    fifo: Links,
    /// Used since the clock hand last passed.
    referenced: bool,
}

/// Counters of one shard, updated under its lock (no atomics on the read path).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardStats {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    pub(crate) evictions: u64,
    pub(crate) expirations: u64,
}

pub(crate) struct Shard<K, V> {
    table: HashTable<u32>,
    slots: Vec<Slot<K, V>>,
    free_head: u32,
    len: usize,
    capacity: usize,
    /// Next slot the CLOCK hand looks at.
    hand: u32,
    /// The entry read or written last: never the next victim.
    last_touched: u32,
    /// Oldest default-TTL entry, which expires first.
    fifo_head: u32,
    fifo_tail: u32,
    /// Entries with their own TTL: (expires_at, slot). Nodes of removed or re-timed entries
    /// stay until popped or compacted ("lazy deletion").
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    heap_live: usize,
    next_sweep: u64,
    pub(crate) flights: HashTable<Arc<Flight<K, V>>>,
    pub(crate) stats: ShardStats,
}

/// When an inserted entry expires, and the clock reading of the insert.
#[derive(Clone, Copy)]
pub(crate) struct InsertTime {
    pub(crate) expires_at: u64,
    pub(crate) kind: TtlKind,
    pub(crate) now: u64,
    /// Ticks between sweeps of expired entries.
    pub(crate) sweep_interval: u64,
}

/// How an insert's expiry is tracked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TtlKind {
    Default,
    Custom,
}

impl<K, V> Shard<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            table: HashTable::new(),
            slots: Vec::new(),
            free_head: NIL,
            len: 0,
            capacity,
            hand: 0,
            last_touched: NIL,
            fifo_head: NIL,
            fifo_tail: NIL,
            heap: BinaryHeap::new(),
            heap_live: 0,
            next_sweep: 0,
            flights: HashTable::new(),
            stats: ShardStats::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl<K: Eq, V> Shard<K, V> {
    fn slot(&self, idx: u32) -> &Slot<K, V> {
        &self.slots[idx as usize]
    }

    fn slot_mut(&mut self, idx: u32) -> &mut Slot<K, V> {
        &mut self.slots[idx as usize]
    }

    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| {
                slots[i as usize]
                    .entry
                    .as_ref()
                    .is_some_and(|(k, _)| k.borrow() == key)
            })
            .copied()
    }

    /// The live value of a key, refreshing its recency. An expired entry is removed.
    #[inline]
    pub(crate) fn get<Q>(&mut self, hash: u64, key: &Q, clock: &ClockSource) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(idx) = self.find(hash, key) else {
            self.stats.misses += 1;
            return None;
        };
        if self.slot(idx).expires_at <= clock.now() {
            self.remove_index(idx);
            self.stats.expirations += 1;
            self.stats.misses += 1;
            return None;
        }
        self.touch(idx);
        self.stats.hits += 1;
        self.slot(idx).entry.as_ref().map(|(_, v)| v)
    }

    /// The live value, counting a hit and refreshing recency; `None` (counting nothing, and
    /// leaving an expired entry for the caller's next step) otherwise.
    pub(crate) fn get_hit<Q>(&mut self, hash: u64, key: &Q, now: u64) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        if self.slot(idx).expires_at <= now {
            return None;
        }
        self.touch(idx);
        self.stats.hits += 1;
        self.slot(idx).entry.as_ref().map(|(_, v)| v)
    }

    /// The live value without touching recency or counters.
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q, now: u64) -> Option<(&V, u64)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        let slot = self.slot(idx);
        if slot.expires_at <= now {
            return None;
        }
        slot.entry.as_ref().map(|(_, v)| (v, slot.expires_at))
    }

    /// Inserts or replaces. Replacing never evicts another key; a new key at capacity first
    /// evicts an expired entry if there is one, else the CLOCK victim.
    pub(crate) fn insert(&mut self, hash: u64, key: K, value: V, time: InsertTime) {
        let InsertTime {
            expires_at,
            kind,
            now,
            sweep_interval,
        } = time;
        if self.capacity == 0 {
            return;
        }
        self.stats.inserts += 1;
        if let Some(idx) = self.find(hash, &key) {
            self.slot_mut(idx).entry = Some((key, value));
            self.retime(idx, expires_at, kind);
            self.touch(idx);
            return;
        }
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now.saturating_add(sweep_interval);
        }
        if self.len >= self.capacity {
            self.evict_one(now);
        }
        let idx = self.alloc(Slot {
            entry: Some((key, value)),
            hash,
            expires_at,
            fifo: UNLINKED,
            // A new entry must be used again to earn a second chance (scan resistance).
            referenced: false,
        });
        let slots = &self.slots;
        self.table
            .insert_unique(hash, idx, |&i| slots[i as usize].hash);
        self.last_touched = idx;
        self.track_expiry(idx, kind);
        self.len += 1;
    }

    fn alloc(&mut self, slot: Slot<K, V>) -> u32 {
        if self.free_head != NIL {
            let idx = self.free_head;
            self.free_head = self.slot(idx).fifo.next;
            *self.slot_mut(idx) = slot;
            return idx;
        }
        if self.slots.len() == self.slots.capacity() {
            // Grow by doubling, but never past the shard's capacity: memory per entry stays
            // close to the slot size at full capacity.
            let len = self.slots.len();
            let room = self.capacity.saturating_sub(len).max(1);
            self.slots.reserve_exact(len.max(4).min(room));
        }
        let idx = u32::try_from(self.slots.len()).unwrap_or(NIL - 1);
        self.slots.push(slot);
        idx
    }

    /// Removes a key; returns its entry.
    pub(crate) fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        self.remove_index(idx)
    }

    fn remove_index(&mut self, idx: u32) -> Option<(K, V)> {
        let hash = self.slot(idx).hash;
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        self.untrack_expiry(idx);
        let entry = self.slot_mut(idx).entry.take();
        self.slot_mut(idx).fifo = Links {
            prev: NIL,
            next: self.free_head,
        };
        self.free_head = idx;
        self.len -= 1;
        entry
    }

    /// Removes every entry; returns how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let removed = self.len;
        let flights = std::mem::take(&mut self.flights);
        *self = Self {
            flights,
            stats: self.stats,
            ..Self::new(self.capacity)
        };
        removed
    }

    /// Removes the entries whose key matches; returns how many.
    pub(crate) fn remove_matching(&mut self, mut matches: impl FnMut(&K) -> bool) -> usize {
        let doomed: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.as_ref().is_some_and(|(k, _)| matches(k)))
            .map(|(i, _)| u32::try_from(i).unwrap_or(NIL))
            .collect();
        for &idx in &doomed {
            self.remove_index(idx);
        }
        doomed.len()
    }

    /// Entries present but expired.
    pub(crate) fn expired_count(&self, now: u64) -> usize {
        self.slots
            .iter()
            .filter(|s| s.entry.is_some() && s.expires_at <= now)
            .count()
    }

    /// Removes every expired entry; returns how many.
    pub(crate) fn sweep(&mut self, now: u64) -> usize {
        let mut removed = 0;
        while self.fifo_head != NIL && self.slot(self.fifo_head).expires_at <= now {
            self.remove_index(self.fifo_head);
            removed += 1;
        }
        while let Some(idx) = self.expired_heap_top(now) {
            self.remove_index(idx);
            removed += 1;
        }
        self.stats.expirations += removed as u64;
        removed
    }

    /// Pops stale heap nodes; returns the slot of the top node if it is live and expired.
    fn expired_heap_top(&mut self, now: u64) -> Option<u32> {
        while let Some(&Reverse((expires_at, idx))) = self.heap.peek() {
            let slot = self.slot(idx);
            let live =
                slot.entry.is_some() && slot.fifo.prev == IN_HEAP && slot.expires_at == expires_at;
            if !live {
                self.heap.pop();
                continue;
            }
            if expires_at <= now {
                self.heap.pop();
                return Some(idx);
            }
            return None;
        }
        None
    }

    fn evict_one(&mut self, now: u64) {
        let expired = if self.fifo_head != NIL && self.slot(self.fifo_head).expires_at <= now {
            Some(self.fifo_head)
        } else {
            self.expired_heap_top(now)
        };
        match expired {
            Some(idx) => {
                self.remove_index(idx);
                self.stats.expirations += 1;
            }
            None => {
                if let Some(idx) = self.clock_victim() {
                    self.remove_index(idx);
                    self.stats.evictions += 1;
                }
            }
        }
    }

    /// The first entry after the hand not used since the hand last passed it, skipping the
    /// entry touched last unless it is the only one.
    fn clock_victim(&mut self) -> Option<u32> {
        let n = u32::try_from(self.slots.len()).unwrap_or(NIL);
        if self.len == 0 || n == 0 {
            return None;
        }
        let mut fallback = None;
        // Two passes always suffice: the first clears every flag it passes.
        for _ in 0..=2 * u64::from(n) {
            if self.hand >= n {
                self.hand = 0;
            }
            let idx = self.hand;
            self.hand += 1;
            let last = self.last_touched;
            let slot = self.slot_mut(idx);
            if slot.entry.is_none() {
                continue;
            }
            if idx == last {
                fallback = Some(idx);
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                continue;
            }
            return Some(idx);
        }
        fallback
    }

    fn retime(&mut self, idx: u32, expires_at: u64, kind: TtlKind) {
        self.untrack_expiry(idx);
        self.slot_mut(idx).expires_at = expires_at;
        self.track_expiry(idx, kind);
    }

    fn track_expiry(&mut self, idx: u32, kind: TtlKind) {
        match kind {
            TtlKind::Default => self.fifo_push_back(idx),
            TtlKind::Custom => {
                self.slot_mut(idx).fifo = Links {
                    prev: IN_HEAP,
                    next: NIL,
                };
                self.heap.push(Reverse((self.slot(idx).expires_at, idx)));
                self.heap_live += 1;
                if self.heap.len() > 2 * self.heap_live + 64 {
                    self.compact_heap();
                }
            }
        }
    }

    fn untrack_expiry(&mut self, idx: u32) {
        if self.slot(idx).fifo.prev == IN_HEAP {
            self.heap_live -= 1;
            self.slot_mut(idx).fifo = UNLINKED;
        } else {
            self.fifo_unlink(idx);
        }
    }

    fn compact_heap(&mut self) {
        let slots = &self.slots;
        self.heap.retain(|&Reverse((expires_at, idx))| {
            let s = &slots[idx as usize];
            s.entry.is_some() && s.fifo.prev == IN_HEAP && s.expires_at == expires_at
        });
    }

    #[inline]
    fn touch(&mut self, idx: u32) {
        self.last_touched = idx;
        let slot = self.slot_mut(idx);
        if !slot.referenced {
            slot.referenced = true;
        }
    }

    fn fifo_unlink(&mut self, idx: u32) {
        let Links { prev, next } = self.slot(idx).fifo;
        if prev == NIL {
            if self.fifo_head != idx {
                return; // not linked
            }
            self.fifo_head = next;
        } else {
            self.slot_mut(prev).fifo.next = next;
        }
        if next == NIL {
            self.fifo_tail = prev;
        } else {
            self.slot_mut(next).fifo.prev = prev;
        }
        self.slot_mut(idx).fifo = UNLINKED;
    }

    fn fifo_push_back(&mut self, idx: u32) {
        let tail = self.fifo_tail;
        self.slot_mut(idx).fifo = Links {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            self.fifo_head = idx;
        } else {
            self.slot_mut(tail).fifo.next = idx;
        }
        self.fifo_tail = idx;
    }

    /// Visits every present entry (live or expired) with its expiry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V, u64)) {
        for slot in &self.slots {
            if let Some((k, v)) = &slot.entry {
                f(k, v, slot.expires_at);
            }
        }
    }
}
