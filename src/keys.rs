//! The project's signing keys: fetched from Descope (`GET <base>/v2/keys/<project>`),
//! cached, and re-fetched on an unknown `kid` at most once per cooldown, one
//! fetch at a time.
//!
//! A key set entry without `kid` or `alg`, of an unknown type or algorithm, or
//! that does not decode is skipped: one broken key never hides the others.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use crate::error::{Error, Result};

/// How long a failed first load blocks further attempts, at most. Shorter
/// than the unknown-`kid` cooldown: while no key is known, every request
/// fails, so the next attempt should come soon.
const FIRST_LOAD_RETRY: Duration = Duration::from_secs(1);

/// One public key of the key set, with the algorithm it is published for.
pub struct VerifyKey {
    kid: String,
    alg: Algorithm,
    alg_name: &'static str,
    key: DecodingKey,
}

impl VerifyKey {
    /// Reads one JWK of the key set; `Err` says why the key is unusable.
    ///
    /// # Errors
    /// A reason naming the field at fault, for the skipped-key count.
    pub fn from_jwk(jwk: &Value) -> std::result::Result<Self, &'static str> {
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .filter(|kid| !kid.is_empty())
            .ok_or("missing kid")?;
        let alg_name = jwk
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("missing alg")?;
        if jwk
            .get("use")
            .is_some_and(|usage| usage.as_str() != Some("sig"))
        {
            return Err("not a signing key (use)");
        }

        let (alg, alg_name) = supported_algorithm(alg_name).ok_or("unsupported alg")?;
        let kty = jwk.get("kty").and_then(Value::as_str);
        let key = match (alg, kty) {
            (Algorithm::ES256 | Algorithm::ES384, Some("EC")) => ec_key(jwk, alg)?,
            (_, Some("RSA")) if !matches!(alg, Algorithm::ES256 | Algorithm::ES384) => {
                rsa_key(jwk)?
            }
            _ => return Err("key type does not match alg (kty)"),
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            alg_name,
            key,
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key set publishes this key for.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The algorithm's name as written in a JWT header.
    #[must_use]
    pub const fn algorithm_name(&self) -> &'static str {
        self.alg_name
    }

    /// Checks `signature` (base64url, the third segment) over `message` (the
    /// first two segments with their dot).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the signature is not base64url.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<bool> {
        jsonwebtoken::crypto::verify(signature, message, &self.key, self.alg)
            .map_err(|_| Error::invalid("malformed signature"))
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg_name)
            .finish_non_exhaustive()
    }
}

/// The asymmetric algorithms this product accepts. HMAC and `none` are not
/// among them: a key set never publishes a shared secret.
fn supported_algorithm(name: &str) -> Option<(Algorithm, &'static str)> {
    let alg = match name {
        "RS256" => (Algorithm::RS256, "RS256"),
        "RS384" => (Algorithm::RS384, "RS384"),
        "RS512" => (Algorithm::RS512, "RS512"),
        "PS256" => (Algorithm::PS256, "PS256"),
        "PS384" => (Algorithm::PS384, "PS384"),
        "PS512" => (Algorithm::PS512, "PS512"),
        "ES256" => (Algorithm::ES256, "ES256"),
        "ES384" => (Algorithm::ES384, "ES384"),
        _ => return None,
    };
    Some(alg)
}

fn rsa_key(jwk: &Value) -> std::result::Result<DecodingKey, &'static str> {
    let n = decode_member(jwk, "n").ok_or("bad modulus (n)")?;
    let e = decode_member(jwk, "e").ok_or("bad exponent (e)")?;
    let bits = (n.len() - n.iter().take_while(|byte| **byte == 0).count()) * 8;
    // The verifier accepts 2048 to 8192 bits; anything else could never verify.
    if !(2041..=8192).contains(&bits) {
        return Err("unsupported modulus size (n)");
    }
    if e.is_empty() || e.len() > 8 {
        return Err("bad exponent (e)");
    }
    Ok(DecodingKey::from_rsa_raw_components(&n, &e))
}

fn ec_key(jwk: &Value, alg: Algorithm) -> std::result::Result<DecodingKey, &'static str> {
    let (curve, size) = if alg == Algorithm::ES256 {
        ("P-256", 32)
    } else {
        ("P-384", 48)
    };
    if jwk.get("crv").and_then(Value::as_str) != Some(curve) {
        return Err("curve does not match alg (crv)");
    }
    let x = decode_member(jwk, "x").filter(|x| x.len() == size);
    let y = decode_member(jwk, "y").filter(|y| y.len() == size);
    let (Some(x), Some(y)) = (x, y) else {
        return Err("bad curve point (x, y)");
    };
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(DecodingKey::from_ec_der(&point))
}

fn decode_member(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    let text = jwk.get(name)?.as_str()?;
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .filter(|bytes| !bytes.is_empty())
}

/// The usable keys of one key set, by `kid`.
pub type KeyMap = HashMap<String, Arc<VerifyKey>>;

/// Parses a key set body (`{"keys": [...]}`), skipping unusable keys.
///
/// # Errors
/// [`Error::Unavailable`] when the body is not a key set at all.
pub fn parse_key_set(body: &[u8]) -> Result<(KeyMap, usize)> {
    let document: Value =
        serde_json::from_slice(body).map_err(|_| Error::unavailable("key set is not JSON", 5))?;
    let Some(entries) = document.get("keys").and_then(Value::as_array) else {
        return Err(Error::unavailable("key set has no keys array", 5));
    };
    let mut keys = KeyMap::with_capacity(entries.len());
    let mut skipped = 0;
    for entry in entries {
        match VerifyKey::from_jwk(entry) {
            Ok(key) => {
                keys.insert(key.kid.clone(), Arc::new(key));
            }
            Err(_) => skipped += 1,
        }
    }
    Ok((keys, skipped))
}

/// Where key sets come from: Descope in production, a stub in tests.
pub trait KeySetSource: Send + Sync {
    /// Fetches the raw key set body.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::RateLimited`] when it cannot.
    fn fetch_key_set(&self) -> Result<Vec<u8>>;
}

/// Anything that can hand out the verification key for a `kid`.
pub trait KeyLookup {
    /// The key for `kid`, fetching the key set if allowed and needed.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an unknown `kid`, [`Error::Unavailable`]
    /// when the key set cannot be loaded, [`Error::WouldBlock`] when a fetch
    /// is needed and `blocking` is false.
    fn key(&self, kid: &str, blocking: bool) -> Result<Arc<VerifyKey>>;
}

/// When the last fetch happened, whether any ever succeeded, and whether the
/// last one failed.
#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    loaded: bool,
    last_failed: bool,
}

impl FetchState {
    /// After a failed fetch the next one may come soon (Descope may be back,
    /// and a key rotated in meanwhile must not wait a whole cooldown); after
    /// a successful one, only once per cooldown.
    fn wait(&self, cooldown: Duration) -> Duration {
        if self.loaded && !self.last_failed {
            cooldown
        } else {
            cooldown.min(FIRST_LOAD_RETRY)
        }
    }

    fn may_fetch(&self, now: Instant, cooldown: Duration) -> bool {
        let wait = self.wait(cooldown);
        self.last_attempt
            .is_none_or(|last| now.saturating_duration_since(last) >= wait)
    }
}

/// Counters for tests and `Core.stats()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStats {
    /// Key set fetches attempted.
    pub fetches: u64,
    /// Usable keys now cached.
    pub keys: usize,
    /// Keys skipped as unusable in the last successful fetch.
    pub skipped: usize,
    /// Bumped whenever a fetch drops or changes a cached key.
    pub epoch: u64,
}

/// The cached key set of one project.
pub struct KeyStore {
    source: Arc<dyn KeySetSource>,
    cooldown: Duration,
    keys: RwLock<Arc<KeyMap>>,
    state: Mutex<FetchState>,
    fetches: AtomicU64,
    skipped: AtomicU64,
    epoch: AtomicU64,
}

impl KeyStore {
    /// An empty store; the first lookup (or [`KeyStore::load`]) fetches.
    #[must_use]
    pub fn new(source: Arc<dyn KeySetSource>, cooldown: Duration) -> Self {
        Self {
            source,
            cooldown,
            keys: RwLock::new(Arc::new(KeyMap::new())),
            state: Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// Fetches the key set now, whatever the cooldown; returns the number of
    /// usable keys.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::RateLimited`] when the fetch fails.
    pub fn load(&self) -> Result<usize> {
        let mut state = self.state.lock();
        self.fetch_locked(&mut state)?;
        // A deliberate load does not start the unknown-`kid` cooldown.
        state.last_attempt = None;
        Ok(self.keys.read().len())
    }

    /// Bumped whenever a fetch drops or changes a key: anything verified
    /// with an older epoch must be verified again.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Counters for tests and statistics.
    #[must_use]
    pub fn stats(&self) -> KeyStats {
        KeyStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            keys: self.keys.read().len(),
            skipped: usize::try_from(self.skipped.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            epoch: self.epoch(),
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.keys.read().get(kid).cloned()
    }

    /// The error for an unknown `kid` when no fetch is allowed.
    fn refused(&self, state: &FetchState, now: Instant) -> Error {
        if state.loaded && !state.last_failed {
            return Error::invalid("unknown signing key (kid)");
        }
        // The key set could not be fetched lately: the kid may be a rotated-in
        // key, so this is an outage to retry, not a bad token.
        let waited = state
            .last_attempt
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        let wait = state.wait(self.cooldown).saturating_sub(waited);
        let reason = if state.loaded {
            "key set could not be refreshed"
        } else {
            "key set not loaded"
        };
        Error::unavailable(reason, wait.as_secs().max(1))
    }

    /// Fetches and installs a key set; the caller holds the fetch lock.
    fn fetch_locked(&self, state: &mut FetchState) -> Result<()> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = self
            .source
            .fetch_key_set()
            .and_then(|body| parse_key_set(&body));
        // Stamped when the fetch ends, not when it starts: the threads queued
        // behind a slow fetch then take its outcome instead of each starting
        // another one in turn (a hanging Descope would otherwise hold the last
        // of them for one timeout per thread ahead of it).
        state.last_attempt = Some(Instant::now());
        state.last_failed = fetched.is_err();
        let (fresh, skipped) = fetched?;
        self.install(fresh);
        self.skipped.store(skipped as u64, Ordering::Relaxed);
        state.loaded = true;
        Ok(())
    }

    fn install(&self, fresh: KeyMap) {
        let mut keys = self.keys.write();
        let dropped = keys.iter().any(|(kid, old)| {
            fresh
                .get(kid)
                .is_none_or(|new| !same_key(old.as_ref(), new.as_ref()))
        });
        *keys = Arc::new(fresh);
        if dropped {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn same_key(old: &VerifyKey, new: &VerifyKey) -> bool {
    old.alg == new.alg && key_bytes(old) == key_bytes(new)
}

fn key_bytes(key: &VerifyKey) -> (&[u8], &[u8]) {
    match key.key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => (bytes, &[]),
        DecodingKeyKind::RsaModulusExponent { n, e } => (n, e),
    }
}

impl KeyLookup for KeyStore {
    fn key(&self, kid: &str, blocking: bool) -> Result<Arc<VerifyKey>> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }

        // Without blocking, even waiting for another thread's fetch is too long.
        let now = Instant::now();
        let Some(mut state) = self.state.try_lock() else {
            if !blocking {
                return Err(Error::WouldBlock);
            }
            return self.key_after_wait(kid);
        };
        if !state.may_fetch(now, self.cooldown) {
            return Err(self.refused(&state, now));
        }
        if !blocking {
            return Err(Error::WouldBlock);
        }

        self.fetch_locked(&mut state)?;
        self.found_after_fetch(&mut state, kid)
    }
}

impl KeyStore {
    /// The key for `kid` from the set just fetched. Only a fetch that did not
    /// find its kid starts the cooldown: one that found it was a real rotation
    /// (or the first load), and a forger cannot make a fetch find a kid, since
    /// the kids a fetch finds are cached from then on.
    fn found_after_fetch(&self, state: &mut FetchState, kid: &str) -> Result<Arc<VerifyKey>> {
        let found = self.cached(kid);
        if found.is_some() {
            state.last_attempt = None;
        }
        found.ok_or_else(|| Error::invalid("unknown signing key (kid)"))
    }

    /// Another thread is fetching: wait for it, then look again.
    fn key_after_wait(&self, kid: &str) -> Result<Arc<VerifyKey>> {
        let mut state = self.state.lock();
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let now = Instant::now();
        if !state.may_fetch(now, self.cooldown) {
            return Err(self.refused(&state, now));
        }
        self.fetch_locked(&mut state)?;
        self.found_after_fetch(&mut state, kid)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    pub(crate) const JWKS: &str = include_str!("../tests/keys/jwks.json");

    /// A key set source that serves whatever body it holds and counts calls.
    pub(crate) struct StubSource {
        pub body: Mutex<Result<Vec<u8>>>,
        pub calls: AtomicUsize,
        pub delay: Duration,
    }

    impl StubSource {
        pub(crate) fn serving(body: &str) -> Arc<Self> {
            Arc::new(Self {
                body: Mutex::new(Ok(body.as_bytes().to_vec())),
                calls: AtomicUsize::new(0),
                delay: Duration::ZERO,
            })
        }

        pub(crate) fn set(&self, body: Result<&str>) {
            *self.body.lock() = body.map(|text| text.as_bytes().to_vec());
        }
    }

    impl KeySetSource for StubSource {
        fn fetch_key_set(&self) -> Result<Vec<u8>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.body.lock().clone()
        }
    }

    fn jwks_with(keys: &[Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn test_keys() -> Vec<Value> {
        let document: Value = serde_json::from_str(JWKS).unwrap();
        document["keys"].as_array().unwrap().clone()
    }

    fn down() -> Error {
        Error::unavailable("connection refused", 5)
    }

    #[test]
    fn rsa_and_ec_keys_load() {
        let (keys, skipped) = parse_key_set(JWKS.as_bytes()).unwrap();
        assert_eq!(skipped, 0);
        assert_eq!(keys["test-rsa-1"].algorithm(), Algorithm::RS256);
        assert_eq!(keys["test-ec-256"].algorithm(), Algorithm::ES256);
        assert_eq!(keys["test-ec-384"].algorithm(), Algorithm::ES384);
    }

    #[test]
    fn broken_keys_are_skipped_not_fatal() {
        let good = test_keys()[0].clone();
        let mut no_kid = good.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut no_alg = good.clone();
        no_alg.as_object_mut().unwrap().remove("alg");
        let mut hmac = good.clone();
        hmac["alg"] = "HS256".into();
        let mut bad_n = good.clone();
        bad_n["n"] = "!!!not base64!!!".into();
        let mut short_n = good.clone();
        short_n["n"] = "AQAB".into();
        let mut wrong_kty = good.clone();
        wrong_kty["kty"] = "EC".into();
        let mut wrong_curve = test_keys()[2].clone();
        wrong_curve["crv"] = "P-384".into();
        let mut encryption = good.clone();
        encryption["use"] = "enc".into();
        let body = jwks_with(&[
            no_kid,
            no_alg,
            hmac,
            bad_n,
            short_n,
            wrong_kty,
            wrong_curve,
            encryption,
            "not an object".into(),
            good,
        ]);

        let (keys, skipped) = parse_key_set(body.as_bytes()).unwrap();

        assert_eq!(skipped, 9);
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key("test-rsa-1"));
    }

    #[test]
    fn body_without_keys_array_is_unavailable() {
        for body in ["<html>", "{}", r#"{"keys": {}}"#] {
            let error = parse_key_set(body.as_bytes()).unwrap_err();
            assert!(matches!(error, Error::Unavailable { .. }), "{body}");
        }
    }

    #[test]
    fn first_lookup_fetches_once_and_caches() {
        let source = StubSource::serving(JWKS);
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));

        for _ in 0..5 {
            store.key("test-rsa-1", true).unwrap();
        }

        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn random_kids_in_a_row_fetch_at_most_once_more() {
        let source = StubSource::serving(JWKS);
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));
        store.load().unwrap();

        for i in 0..200 {
            let error = store.key(&format!("random-{i}"), true).unwrap_err();
            assert_eq!(error, Error::invalid("unknown signing key (kid)"));
        }

        assert!(source.calls.load(Ordering::SeqCst) <= 2);
    }

    #[test]
    fn rotated_key_is_picked_up_after_the_cooldown() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::from_millis(50));
        store.load().unwrap();
        assert!(store.key("test-rsa-2", true).is_err());

        source.set(Ok(&jwks_with(&keys[..2])));
        std::thread::sleep(Duration::from_millis(60));

        assert_eq!(store.key("test-rsa-2", true).unwrap().kid(), "test-rsa-2");
    }

    #[test]
    fn key_rotated_in_right_after_a_load_is_fetched_at_once() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));
        store.load().unwrap();

        source.set(Ok(&jwks_with(&keys[..2])));

        assert_eq!(store.key("test-rsa-2", true).unwrap().kid(), "test-rsa-2");
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        // A fetch that finds nothing starts the cooldown.
        for _ in 0..3 {
            assert!(store.key("random", true).is_err());
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn rotation_during_an_outage_is_unavailable_then_heals_without_a_cooldown() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));
        store.load().unwrap();
        source.set(Err(down()));

        // The fetch for the new kid fails: an outage, not a bad token...
        assert!(matches!(
            store.key("test-rsa-2", true),
            Err(Error::Unavailable { .. })
        ));
        // ...and so is the answer while the short retry wait runs.
        assert!(matches!(
            store.key("test-rsa-2", true),
            Err(Error::Unavailable { .. })
        ));
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        // Cached keys keep working meanwhile.
        assert!(store.key("test-rsa-1", true).is_ok());

        source.set(Ok(&jwks_with(&keys[..2])));
        std::thread::sleep(FIRST_LOAD_RETRY + Duration::from_millis(50));
        assert_eq!(store.key("test-rsa-2", true).unwrap().kid(), "test-rsa-2");
        // Back to normal: a random kid costs one fetch, then the cooldown holds.
        for _ in 0..3 {
            assert_eq!(
                store.key("random", true).unwrap_err(),
                Error::invalid("unknown signing key (kid)")
            );
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn key_rotated_in_right_after_the_first_lazy_load_is_fetched_at_once() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));
        assert!(store.key("test-rsa-1", true).is_ok());

        source.set(Ok(&jwks_with(&keys[..2])));

        assert_eq!(store.key("test-rsa-2", true).unwrap().kid(), "test-rsa-2");
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn rotations_in_quick_succession_are_each_fetched() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));
        store.load().unwrap();
        source.set(Ok(&jwks_with(&keys[..2])));
        assert!(store.key("test-rsa-2", true).is_ok());
        source.set(Ok(&jwks_with(&keys[..3])));
        let third = keys[2]["kid"].as_str().unwrap();

        assert_eq!(store.key(third, true).unwrap().kid(), third);
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn failed_load_still_holds_the_next_attempt_briefly() {
        let source = StubSource::serving(JWKS);
        source.set(Err(down()));
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));
        assert!(store.load().is_err());

        assert!(matches!(
            store.key("test-rsa-1", true),
            Err(Error::Unavailable { .. })
        ));
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn dropping_a_key_bumps_the_epoch_and_adding_does_not() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::ZERO);
        store.load().unwrap();
        let first = store.epoch();

        source.set(Ok(&jwks_with(&keys[..2])));
        store.load().unwrap();
        assert_eq!(store.epoch(), first);

        source.set(Ok(&jwks_with(&keys[1..2])));
        store.load().unwrap();
        assert!(store.epoch() > first);
    }

    #[test]
    fn changed_material_under_the_same_kid_bumps_the_epoch() {
        let keys = test_keys();
        let source = StubSource::serving(&jwks_with(&keys[..1]));
        let store = KeyStore::new(source.clone(), Duration::ZERO);
        store.load().unwrap();
        let first = store.epoch();

        let mut impostor = keys[1].clone();
        impostor["kid"] = "test-rsa-1".into();
        source.set(Ok(&jwks_with(&[impostor])));
        store.load().unwrap();

        assert!(store.epoch() > first);
    }

    #[test]
    fn threads_queued_behind_a_slow_failing_fetch_do_not_fetch_again() {
        // The fetch outlasts the first-load retry window, as a hanging
        // Descope cut off by the HTTP timeout does.
        let source = Arc::new(StubSource {
            body: Mutex::new(Err(down())),
            calls: AtomicUsize::new(0),
            delay: FIRST_LOAD_RETRY + Duration::from_millis(200),
        });
        let store = Arc::new(KeyStore::new(source.clone(), Duration::from_secs(30)));
        let started = Instant::now();

        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || store.key("test-rsa-1", true))
            })
            .collect();
        for thread in threads {
            let error = thread.join().unwrap().unwrap_err();
            assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
        }

        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        assert!(
            started.elapsed() < 2 * source.delay,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn first_load_failing_is_unavailable() {
        let source = StubSource::serving(JWKS);
        source.set(Err(down()));
        let store = KeyStore::new(source, Duration::from_secs(30));

        let error = store.key("test-rsa-1", true).unwrap_err();

        assert!(matches!(error, Error::Unavailable { .. }));
    }

    #[test]
    fn cached_keys_keep_working_while_descope_is_down() {
        let source = StubSource::serving(JWKS);
        let store = KeyStore::new(source.clone(), Duration::ZERO);
        store.load().unwrap();
        source.set(Err(down()));

        assert!(store.key("test-rsa-1", true).is_ok());
        let error = store.key("unknown", true).unwrap_err();
        assert!(matches!(error, Error::Unavailable { .. }));
    }

    #[test]
    fn non_blocking_lookup_that_needs_a_fetch_would_block() {
        let source = StubSource::serving(JWKS);
        let store = KeyStore::new(source.clone(), Duration::from_secs(30));

        assert_eq!(
            store.key("test-rsa-1", false).unwrap_err(),
            Error::WouldBlock
        );
        assert_eq!(source.calls.load(Ordering::SeqCst), 0);

        store.load().unwrap();
        assert!(store.key("test-rsa-1", false).is_ok());
        // The first unknown kid after a load is worth a fetch...
        assert_eq!(store.key("unknown", false).unwrap_err(), Error::WouldBlock);
        assert!(store.key("unknown", true).is_err());
        // ...and within the cooldown that follows, the answer comes at once.
        assert!(matches!(
            store.key("unknown", false).unwrap_err(),
            Error::InvalidToken(_)
        ));
    }

    #[test]
    fn concurrent_unknown_kids_share_one_fetch() {
        let source = Arc::new(StubSource {
            body: Mutex::new(Ok(JWKS.as_bytes().to_vec())),
            calls: AtomicUsize::new(0),
            delay: Duration::from_millis(100),
        });
        let store = Arc::new(KeyStore::new(source.clone(), Duration::from_secs(30)));

        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || store.key(&format!("kid-{i}"), true))
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap().is_err());
        }

        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_output_names_the_kid_only() {
        let (keys, _) = parse_key_set(JWKS.as_bytes()).unwrap();
        let text = format!("{:?}", keys["test-rsa-1"]);
        assert!(text.contains("test-rsa-1"));
        assert!(!text.contains(test_keys()[0]["n"].as_str().unwrap()));
    }
}
