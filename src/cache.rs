//! Caches of the core: verified sessions (keyed on the whole token), and a
//! single-flight memo for the calls to Descope (access-key exchanges and
//! refreshes, keyed on the SHA-256 of the credential).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use foldhash::fast::RandomState;
use parking_lot::{Mutex, RwLock};

use crate::error::Result;

const SHARDS: usize = 16;

/// SHA-256 of a credential: what the memo keys on, so no raw access key or
/// refresh token is kept as a key.
#[must_use]
pub fn digest(credential: &str) -> [u8; 32] {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, credential.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

struct Entry<V> {
    value: V,
    expires_at: i64,
    epoch: u64,
    cost: usize,
}

struct Shard<V> {
    map: HashMap<Box<str>, Entry<V>, RandomState>,
    bytes: usize,
}

/// Verified sessions by their whole token: a token that verified once is
/// accepted again by a lookup until its `exp`, never after, and never across
/// a key set change that dropped a key (the epoch). Bounded in entries and in
/// (approximate) bytes; when full, expired entries go first, then arbitrary
/// ones.
pub struct SessionCache<V> {
    shards: Vec<RwLock<Shard<V>>>,
    hasher: RandomState,
    max_entries: usize,
    max_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters of a [`SessionCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries held.
    pub entries: usize,
    /// Approximate bytes held.
    pub bytes: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups not answered from the cache.
    pub misses: u64,
}

impl<V: Clone> SessionCache<V> {
    /// A cache of at most `max_entries` entries and `max_bytes` bytes; zero
    /// entries turns it off.
    #[must_use]
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                RwLock::new(Shard {
                    map: HashMap::with_hasher(RandomState::default()),
                    bytes: 0,
                })
            })
            .collect();
        Self {
            shards,
            hasher: RandomState::default(),
            max_entries: max_entries.div_ceil(SHARDS),
            max_bytes: max_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, token: &str) -> &RwLock<Shard<V>> {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "only the low bits pick a shard"
        )]
        let index = self.hasher.hash_one(token) as usize % SHARDS;
        &self.shards[index]
    }

    /// The cached value for `token`, if it is still valid at `now` under key
    /// set `epoch`.
    pub fn get(&self, token: &str, now: i64, epoch: u64) -> Option<V> {
        let found = self
            .shard(token)
            .read()
            .map
            .get(token)
            .filter(|entry| now < entry.expires_at && entry.epoch == epoch)
            .map(|entry| entry.value.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers `value` for `token` until `expires_at`.
    pub fn insert(
        &self,
        token: &str,
        value: V,
        expires_at: i64,
        epoch: u64,
        cost: usize,
        now: i64,
    ) {
        let cost = cost + token.len();
        if self.max_entries == 0 || cost > self.max_bytes || expires_at <= now {
            return;
        }
        let mut shard = self.shard(token).write();
        if shard.map.len() >= self.max_entries || shard.bytes + cost > self.max_bytes {
            shard.evict(
                now,
                epoch,
                self.max_entries,
                self.max_bytes.saturating_sub(cost),
            );
        }
        let entry = Entry {
            value,
            expires_at,
            epoch,
            cost,
        };
        if let Some(old) = shard.map.insert(token.into(), entry) {
            shard.bytes = shard.bytes.saturating_sub(old.cost);
        }
        shard.bytes += cost;
    }

    /// Counters for statistics.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = self.shards.iter().fold((0, 0), |(entries, bytes), shard| {
            let shard = shard.read();
            (entries + shard.map.len(), bytes + shard.bytes)
        });
        CacheStats {
            entries,
            bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

impl<V> Shard<V> {
    /// Makes room for one more entry of the given budget.
    fn evict(&mut self, now: i64, epoch: u64, max_entries: usize, byte_budget: usize) {
        let mut freed = 0;
        self.map.retain(|_, entry| {
            let keep = now < entry.expires_at && entry.epoch == epoch;
            if !keep {
                freed += entry.cost;
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        // Still full: drop arbitrary entries (the hasher is randomly seeded).
        while self.map.len() >= max_entries.max(1) || self.bytes > byte_budget {
            let Some(token) = self.map.keys().next().cloned() else {
                break;
            };
            if let Some(entry) = self.map.remove(&token) {
                self.bytes = self.bytes.saturating_sub(entry.cost);
            }
        }
    }
}

type Remembered<V> = Option<(Result<V>, Instant)>;
type Slot<V> = Arc<Mutex<Remembered<V>>>;

/// Single-flight with memory: concurrent callers with the same key share one
/// run, and its outcome is remembered for as long as the run says.
pub struct Memo<V> {
    slots: Mutex<HashMap<[u8; 32], Slot<V>>>,
    max_entries: usize,
    runs: AtomicU64,
}

impl<V: Clone> Memo<V> {
    /// A memo of at most about `max_entries` keys.
    #[must_use]
    pub fn new(max_entries: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
            runs: AtomicU64::new(0),
        }
    }

    /// The remembered outcome for `key`, without waiting. `None` when there
    /// is none, it is stale (by time, or a success `fresh` rejects), or a run
    /// is in flight.
    pub fn peek(&self, key: &[u8; 32], fresh: impl Fn(&V) -> bool) -> Option<Result<V>> {
        let slot = self.slots.lock().get(key).cloned()?;
        let state = slot.try_lock()?;
        remembered(state.as_ref(), &fresh)
    }

    /// The remembered outcome for `key`, or the outcome of `run` (shared with
    /// every caller that arrives while it runs). `run` returns the outcome and
    /// until when to remember it (`None`: not at all). A remembered success
    /// that `fresh` rejects counts as stale.
    ///
    /// # Errors
    /// The (remembered) error of `run`.
    pub fn get_or_run(
        &self,
        key: [u8; 32],
        fresh: impl Fn(&V) -> bool,
        run: impl FnOnce() -> (Result<V>, Option<Instant>),
    ) -> Result<V> {
        let slot = self.slot(key);
        let mut state = slot.lock();
        if let Some(outcome) = remembered(state.as_ref(), &fresh) {
            return outcome;
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        let (outcome, keep_until) = run();
        *state = keep_until.map(|until| (outcome.clone(), until));
        outcome
    }

    /// Forgets what is remembered for `key` (a run in flight finishes).
    pub fn forget(&self, key: &[u8; 32]) {
        self.slots.lock().remove(key);
    }

    /// Forgets every remembered success that `stale` picks (runs in flight
    /// finish as they are) and returns their keys.
    pub fn forget_matching(&self, stale: impl Fn(&V) -> bool) -> Vec<[u8; 32]> {
        let mut forgotten = Vec::new();
        self.slots.lock().retain(|key, slot| {
            let picked = slot.try_lock().is_some_and(
                |state| matches!(state.as_ref(), Some((Ok(value), _)) if stale(value)),
            );
            if picked {
                forgotten.push(*key);
            }
            !picked
        });
        forgotten
    }

    /// How many times a run was started.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Keys remembered or in flight.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, key: [u8; 32]) -> Slot<V> {
        let mut slots = self.slots.lock();
        if !slots.contains_key(&key) && slots.len() >= self.max_entries {
            let now = Instant::now();
            // Idle slots whose memory has run out go first; busy ones stay.
            slots.retain(|_, slot| {
                slot.try_lock()
                    .is_none_or(|state| state.as_ref().is_some_and(|(_, until)| now < *until))
            });
            // Then remembered failures: a flood of distinct refused keys must
            // not push out the successes of the keys that work.
            if slots.len() >= self.max_entries {
                slots.retain(|_, slot| {
                    slot.try_lock()
                        .is_none_or(|state| !matches!(state.as_ref(), Some((Err(_), _))))
                });
            }
            while slots.len() >= self.max_entries {
                let Some(victim) = slots.keys().next().copied() else {
                    break;
                };
                slots.remove(&victim);
            }
        }
        slots.entry(key).or_default().clone()
    }
}

fn remembered<V: Clone>(
    state: Option<&(Result<V>, Instant)>,
    fresh: &impl Fn(&V) -> bool,
) -> Option<Result<V>> {
    let (outcome, until) = state?;
    let usable = Instant::now() < *until && outcome.as_ref().map_or(true, fresh);
    usable.then(|| outcome.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn cached_entry_is_returned_until_exp_and_never_after() {
        let cache = SessionCache::new(100, 1 << 20);
        cache.insert("a.b.c", 1, 1000, 0, 10, 900);

        assert_eq!(cache.get("a.b.c", 999, 0), Some(1));
        assert_eq!(cache.get("a.b.c", 1000, 0), None);
        assert_eq!(cache.get("a.b.c", 5000, 0), None);
    }

    #[test]
    fn lookup_needs_the_whole_token() {
        let cache = SessionCache::new(100, 1 << 20);
        cache.insert("header.payload.signature", 1, 1000, 0, 10, 900);

        assert_eq!(cache.get("header.payload.signaturX", 900, 0), None);
        assert_eq!(cache.get("header.payload.", 900, 0), None);
        assert_eq!(cache.get("header.payload.signature", 900, 0), Some(1));
    }

    #[test]
    fn a_new_key_set_epoch_hides_old_entries() {
        let cache = SessionCache::new(100, 1 << 20);
        cache.insert("t", 1, 1000, 3, 10, 900);
        assert_eq!(cache.get("t", 900, 4), None);
    }

    #[test]
    fn entries_are_bounded() {
        let cache = SessionCache::new(32, 1 << 20);
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), i, 1000, 0, 10, 900);
        }
        assert!(cache.stats().entries <= 32 + SHARDS);
    }

    #[test]
    fn bytes_are_bounded() {
        let cache = SessionCache::new(100_000, 16 * 1000);
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), i, 1000, 0, 90, 900);
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 16 * 1000, "{stats:?}");
        assert!(stats.entries > 0);
    }

    #[test]
    fn zero_entries_turns_the_cache_off() {
        let cache = SessionCache::new(0, 1 << 20);
        cache.insert("t", 1, 1000, 0, 10, 900);
        assert_eq!(cache.get("t", 900, 0), None);
    }

    #[test]
    fn concurrent_readers_and_writers_agree() {
        let cache = Arc::new(SessionCache::new(10_000, 1 << 24));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let token = format!("t{t}-{i}");
                        cache.insert(&token, i, 1000, 0, 10, 900);
                        assert_eq!(cache.get(&token, 900, 0), Some(i));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    #[test]
    fn concurrent_callers_share_one_run() {
        let memo = Arc::new(Memo::new(16));
        let runs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (memo, runs) = (memo.clone(), runs.clone());
                std::thread::spawn(move || {
                    memo.get_or_run(
                        digest("refresh"),
                        |_| true,
                        || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(100));
                            (Ok(42), Some(Instant::now() + Duration::from_secs(60)))
                        },
                    )
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), Ok(42));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn remembered_errors_expire_and_unremembered_ones_rerun() {
        let memo: Memo<u8> = Memo::new(16);
        let key = digest("key");
        let refused = || {
            (
                Err(Error::AccessKeyRefused),
                Some(Instant::now() + Duration::from_millis(50)),
            )
        };
        assert_eq!(
            memo.get_or_run(key, |_| true, refused),
            Err(Error::AccessKeyRefused)
        );
        assert_eq!(
            memo.get_or_run(key, |_| true, || (Ok(1), None)),
            Err(Error::AccessKeyRefused)
        );
        assert_eq!(
            memo.peek(&key, |_| true),
            Some(Err(Error::AccessKeyRefused))
        );

        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(memo.peek(&key, |_| true), None);
        assert_eq!(memo.get_or_run(key, |_| true, || (Ok(1), None)), Ok(1));
        assert_eq!(memo.get_or_run(key, |_| true, || (Ok(2), None)), Ok(2));
        assert_eq!(memo.runs(), 3);
    }

    #[test]
    fn a_success_that_is_no_longer_fresh_reruns() {
        let memo: Memo<u8> = Memo::new(16);
        let key = digest("key");
        let later = || Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(memo.get_or_run(key, |_| true, || (Ok(1), later())), Ok(1));
        assert_eq!(memo.peek(&key, |value| *value != 1), None);
        assert_eq!(
            memo.get_or_run(key, |value| *value != 1, || (Ok(2), later())),
            Ok(2)
        );
    }

    #[test]
    fn memo_is_bounded() {
        let memo: Memo<u8> = Memo::new(8);
        let later = || Some(Instant::now() + Duration::from_secs(60));
        for i in 0..100 {
            memo.get_or_run(digest(&i.to_string()), |_| true, || (Ok(1), later()))
                .unwrap();
        }
        assert!(memo.len() <= 8);
    }

    #[test]
    fn a_flood_of_failures_does_not_push_out_successes() {
        let memo: Memo<u8> = Memo::new(8);
        let later = || Some(Instant::now() + Duration::from_secs(60));
        for i in 0..4 {
            memo.get_or_run(digest(&format!("good{i}")), |_| true, || (Ok(1), later()))
                .unwrap();
        }
        for i in 0..1000 {
            let refused = memo.get_or_run(
                digest(&format!("bad{i}")),
                |_| true,
                || (Err(Error::AccessKeyRefused), later()),
            );
            assert_eq!(refused, Err(Error::AccessKeyRefused));
        }
        assert!(memo.len() <= 8);
        for i in 0..4 {
            assert_eq!(
                memo.peek(&digest(&format!("good{i}")), |_| true),
                Some(Ok(1)),
                "success {i} was evicted by failures"
            );
        }
    }

    #[test]
    fn digest_is_sha256() {
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&expected[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(digest("abc").to_vec(), bytes);
    }
}
