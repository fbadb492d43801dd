//! `Core`: one project's settings, key store, caches and Descope client, and
//! the operations the bindings expose.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::cache::{digest, Memo, SessionCache};
use crate::claims::Claims;
use crate::descope::{Descope, TokenResponse};
use crate::error::{Error, Result};
use crate::keys::{KeyLookup, KeySetSource, KeyStats, KeyStore};
use crate::levels::{Level, Policy};
use crate::routes::{Requirement, RouteTable};
use crate::token::{self, Rules, TokenKind};

/// How long before its `exp` a cached access-key session is exchanged anew.
const ACCESS_KEY_MARGIN_SECONDS: i64 = 30;

/// How long a failed Descope call is shared with the callers queued behind it.
const FAILURE_MEMORY: Duration = Duration::from_secs(1);

/// Longest access key accepted, in bytes.
const MAX_ACCESS_KEY_BYTES: usize = 1024;

/// Keys remembered by the access-key and refresh memos.
const MEMO_ENTRIES: usize = 4096;

/// Everything a `Core` is built from. The Python `Config` validates the
/// user-facing settings; `Core::new` checks them again, by parameter name.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Descope project id.
    pub project_id: String,
    /// Descope's API base URL.
    pub base_url: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: i64,
    /// Bound on every call to Descope.
    pub http_timeout: Duration,
    /// Roles that give MANAGE.
    pub admin_roles: Vec<String>,
    /// The level of a user none of whose grants match.
    pub default_permission: Level,
    /// The claim used as username.
    pub username_claim: String,
    /// When set, only this tenant's grants count.
    pub tenant: Option<String>,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Least time between two key set fetches caused by unknown `kid`s.
    pub key_refetch_cooldown: Duration,
    /// Verified-session cache bound, in entries (0 turns it off).
    pub session_cache_entries: usize,
    /// Verified-session cache bound, in approximate bytes.
    pub session_cache_bytes: usize,
    /// How long a refused access key stays refused without asking Descope.
    pub access_key_refusal: Duration,
}

impl Settings {
    /// Settings with the documented defaults.
    #[must_use]
    pub fn new(project_id: &str, base_url: &str) -> Self {
        Self {
            project_id: project_id.to_owned(),
            base_url: base_url.to_owned(),
            leeway_seconds: 5,
            http_timeout: Duration::from_secs(5),
            admin_roles: vec!["admin".to_owned(), "mlflow-admin".to_owned()],
            default_permission: Level::Read,
            username_claim: "sub".to_owned(),
            tenant: None,
            max_token_bytes: 16384,
            key_refetch_cooldown: Duration::from_secs(30),
            session_cache_entries: 65536,
            session_cache_bytes: 64 << 20,
            access_key_refusal: Duration::from_secs(30),
        }
    }

    fn check(&self) -> Result<()> {
        let id_ok = !self.project_id.is_empty()
            && self.project_id.len() <= 128
            && self
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(Error::Config(
                "project_id must be a non-empty Descope project id (letters, digits, '-', '_')"
                    .to_owned(),
            ));
        }
        let url = &self.base_url;
        let url_ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.contains(['?', '#', ' ']);
        if !url_ok {
            return Err(Error::Config(
                "base_url must be an http:// or https:// URL".to_owned(),
            ));
        }
        if !(0..=3600).contains(&self.leeway_seconds) {
            return Err(Error::Config(
                "leeway_seconds must be between 0 and 3600".to_owned(),
            ));
        }
        if self.http_timeout.is_zero() || self.http_timeout > Duration::from_secs(600) {
            return Err(Error::Config(
                "http_timeout_seconds must be more than 0 and at most 600".to_owned(),
            ));
        }
        let day = Duration::from_secs(86_400);
        if self.key_refetch_cooldown > day || self.access_key_refusal > day {
            return Err(Error::Config(
                "key_refetch_cooldown_seconds and access_key_refusal_seconds must be at most 86400"
                    .to_owned(),
            ));
        }
        if self.username_claim.is_empty() {
            return Err(Error::Config("username_claim must not be empty".to_owned()));
        }
        if !(1024..=1 << 20).contains(&self.max_token_bytes) {
            return Err(Error::Config(
                "max_token_bytes must be between 1024 and 1048576".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The identity of one verified session token. Holds no raw token.
pub struct Session {
    /// What the token says.
    pub claims: Claims,
    /// The MLflow level its grants earn.
    pub level: Level,
    /// The project it was issued for.
    pub project_id: String,
    /// True when it came from an access-key exchange.
    pub is_access_key: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.claims.user_id)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// A refresh (or tenant select) that Descope answered, already verified.
#[derive(Debug)]
pub struct Refreshed {
    /// The new session JWT.
    pub session_jwt: String,
    /// The new refresh token when Descope rotated it.
    pub refresh_jwt: Option<String>,
    /// The new session.
    pub session: Arc<Session>,
    /// Claims of the refresh token in force after the call (the rotated one,
    /// else the one presented).
    pub refresh_claims: Map<String, Value>,
    /// `exp` of that refresh token.
    pub refresh_expires_at: Option<i64>,
    /// The rest of Descope's answer (cookie settings, `user`, `firstSeen`).
    pub extra: Map<String, Value>,
    epoch: u64,
}

/// An access-key exchange that Descope answered, already verified.
#[derive(Debug)]
pub struct Exchanged {
    /// The access key's id.
    pub key_id: String,
    /// The session JWT.
    pub session_jwt: String,
    /// Descope's `expiration` for it.
    pub expiration: i64,
    /// The session.
    pub session: Arc<Session>,
    epoch: u64,
}

#[cfg(test)]
impl Refreshed {
    pub(crate) fn for_tests(
        session: Arc<Session>,
        session_jwt: &str,
        refresh_jwt: Option<&str>,
        extra: &Value,
    ) -> Self {
        Self {
            session_jwt: session_jwt.to_owned(),
            refresh_jwt: refresh_jwt.map(str::to_owned),
            refresh_claims: session.claims.raw.clone(),
            refresh_expires_at: None,
            extra: extra.as_object().cloned().unwrap_or_default(),
            session,
            epoch: 0,
        }
    }
}

#[cfg(test)]
impl Exchanged {
    pub(crate) fn for_tests(session: Arc<Session>, session_jwt: &str) -> Self {
        Self {
            key_id: session.claims.user_id.clone(),
            session_jwt: session_jwt.to_owned(),
            expiration: session.claims.expires_at,
            session,
            epoch: 0,
        }
    }
}

/// Counters for tests and monitoring.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Key store counters.
    pub keys: KeyStats,
    /// Verified-session cache counters.
    pub sessions: crate::cache::CacheStats,
    /// Access-key exchanges started by `authenticate`.
    pub access_key_exchanges: u64,
    /// Refresh calls started by `refresh`.
    pub refresh_calls: u64,
}

/// One project's verifier and Descope client.
pub struct Core {
    settings: Settings,
    rules: Rules,
    policy: Policy,
    descope: Arc<Descope>,
    keys: KeyStore,
    sessions: SessionCache<Arc<Session>>,
    access_keys: Memo<Arc<Exchanged>>,
    refreshes: Memo<Arc<Refreshed>>,
    routes: parking_lot::RwLock<Option<Arc<RouteTable>>>,
}

/// The route name `authorize` reports while no route table is installed.
pub const NO_ROUTE_TABLE: &str = "<no route table>";

/// Whether one session may make one request, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// True when the session's level meets the route's requirement.
    pub allowed: bool,
    /// What the route needs.
    pub required: Requirement,
    /// What the session has.
    pub level: Level,
    /// The route's name (an RPC or handler name), for messages and logs.
    pub route: String,
}

/// Unix time in whole seconds.
#[must_use]
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Longest time anything is remembered, whatever a token's `exp` says.
const MAX_MEMORY: Duration = Duration::from_secs(86_400);

/// The monotonic instant at which unix time `at` arrives (at most a day on).
fn instant_at(at: i64) -> Instant {
    let ahead = u64::try_from(at.saturating_sub(now_unix())).unwrap_or(0);
    later(Duration::from_secs(ahead))
}

/// Now plus `wait`, capped at [`MAX_MEMORY`] so it cannot overflow.
fn later(wait: Duration) -> Instant {
    Instant::now() + wait.min(MAX_MEMORY)
}

impl Core {
    /// Builds a core; nothing is fetched until needed (or [`Core::load_keys`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first invalid setting.
    pub fn new(settings: Settings) -> Result<Self> {
        Self::with_key_source(settings, None)
    }

    /// Builds a core whose key sets come from `source` instead of Descope
    /// (benchmarks, tests); every other call still goes to `base_url`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first invalid setting.
    pub fn with_key_source(
        settings: Settings,
        source: Option<Arc<dyn KeySetSource>>,
    ) -> Result<Self> {
        settings.check()?;
        let descope = Arc::new(Descope::new(
            &settings.base_url,
            &settings.project_id,
            settings.http_timeout,
        ));
        let source: Arc<dyn KeySetSource> = source.unwrap_or_else(|| descope.clone());
        Ok(Self {
            rules: Rules {
                project_id: settings.project_id.clone(),
                leeway: settings.leeway_seconds,
                max_token_bytes: settings.max_token_bytes,
            },
            policy: Policy {
                admin_roles: settings.admin_roles.clone(),
                default: settings.default_permission,
                tenant: settings.tenant.clone(),
            },
            keys: KeyStore::new(source, settings.key_refetch_cooldown),
            sessions: SessionCache::new(
                settings.session_cache_entries,
                settings.session_cache_bytes,
            ),
            access_keys: Memo::new(MEMO_ENTRIES),
            refreshes: Memo::new(MEMO_ENTRIES),
            routes: parking_lot::RwLock::new(None),
            descope,
            settings,
        })
    }

    /// The settings this core was built from.
    #[must_use]
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Fetches the key set now; returns the number of usable keys.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::RateLimited`].
    pub fn load_keys(&self) -> Result<usize> {
        self.keys.load()
    }

    /// The session for `token` if the verified-session cache holds it. Never
    /// blocks and never allocates beyond the returned `Arc`.
    #[must_use]
    pub fn cached_session(&self, token: &str) -> Option<Arc<Session>> {
        self.sessions.get(token, now_unix(), self.keys.epoch())
    }

    /// Verifies a session token strictly (contract §3), using the cache.
    ///
    /// # Errors
    /// See [`token::verify`].
    pub fn validate_session(&self, token: &str, blocking: bool) -> Result<Arc<Session>> {
        if let Some(session) = self.cached_session(token) {
            return Ok(session);
        }
        self.verify_session(token, blocking, false)
    }

    /// Verifies a session token without looking at or filling the cache.
    ///
    /// # Errors
    /// See [`token::verify`].
    pub fn verify_uncached(&self, token: &str, blocking: bool) -> Result<Arc<Session>> {
        let verified = self.verify(token, TokenKind::Session, blocking)?;
        self.session_from(verified.claims, verified.expires_at, false)
    }

    fn verify_session(
        &self,
        token: &str,
        blocking: bool,
        access_key: bool,
    ) -> Result<Arc<Session>> {
        let epoch = self.keys.epoch();
        let verified = self.verify(token, TokenKind::Session, blocking)?;
        let session = self.session_from(verified.claims, verified.expires_at, access_key)?;
        if !access_key {
            // The claims estimate counts payload bytes; what the process
            // really holds per entry (map nodes, allocator rounding, the
            // session and cache slot) measured about 2.4 times that
            // (scripts/bench_memory.py), so the byte bound charges 2.5 times.
            let cost = session.claims.approximate_size().saturating_mul(5) / 2;
            self.sessions.insert(
                token,
                session.clone(),
                verified.expires_at,
                epoch,
                cost,
                now_unix(),
            );
        }
        Ok(session)
    }

    /// [`token::verify`] under this core's rules and key store, now.
    fn verify(&self, token: &str, kind: TokenKind, blocking: bool) -> Result<token::Verified> {
        token::verify(token, kind, &self.rules, &self.keys, now_unix(), blocking)
    }

    fn session_from(
        &self,
        raw: Map<String, Value>,
        expires_at: i64,
        access_key: bool,
    ) -> Result<Arc<Session>> {
        let claims = Claims::from_payload(raw, expires_at, &self.settings.username_claim)?;
        Ok(Arc::new(Session {
            level: self.policy.level_for(&claims),
            claims,
            project_id: self.settings.project_id.clone(),
            is_access_key: access_key,
        }))
    }

    /// Verifies a refresh token strictly (`drn` must be `DSR`). Not cached.
    ///
    /// # Errors
    /// See [`token::verify`].
    pub fn validate_refresh(&self, token: &str, blocking: bool) -> Result<Arc<Session>> {
        let verified = self.verify(token, TokenKind::Refresh, blocking)?;
        self.session_from(verified.claims, verified.expires_at, false)
    }

    /// A session JWT (anything with a `.`: JWT-shaped or broken, it is
    /// verified, and refused, locally) is verified as a session; anything
    /// else is taken as a Descope access key, exchanged once and cached until
    /// shortly before its session expires. A refused key stays refused for
    /// `access_key_refusal` without another call to Descope.
    ///
    /// # Errors
    /// [`Error::InvalidToken`], [`Error::Expired`], [`Error::AccessKeyRefused`],
    /// [`Error::Unavailable`], [`Error::RateLimited`] or [`Error::WouldBlock`].
    pub fn authenticate(&self, credential: &str, blocking: bool) -> Result<Arc<Session>> {
        if credential.contains('.') {
            return self.validate_session(credential, blocking);
        }
        check_access_key(credential)?;

        let key = digest(credential);
        let epoch = self.keys.epoch();
        let fresh = |exchanged: &Arc<Exchanged>| exchanged.epoch == epoch;
        if !blocking {
            return match self.access_keys.peek(&key, fresh) {
                Some(outcome) => outcome.map(|exchanged| exchanged.session.clone()),
                None => Err(Error::WouldBlock),
            };
        }
        let refusal = self.settings.access_key_refusal;
        let exchanged = self.access_keys.get_or_run(key, fresh, || {
            let outcome = self.exchange(credential, None);
            let keep = match &outcome {
                Ok(exchanged) => {
                    let exp = exchanged.session.claims.expires_at;
                    let lifetime = exp - now_unix();
                    Some(instant_at(
                        exp - ACCESS_KEY_MARGIN_SECONDS.min(lifetime / 2),
                    ))
                }
                Err(Error::AccessKeyRefused) => Some(later(refusal)),
                Err(_) => Some(later(FAILURE_MEMORY)),
            };
            (outcome, keep)
        })?;
        Ok(exchanged.session.clone())
    }

    /// Exchanges an access key at Descope now (no cache), and verifies the
    /// session it yields.
    ///
    /// # Errors
    /// [`Error::AccessKeyRefused`], [`Error::Unavailable`], [`Error::RateLimited`].
    pub fn exchange_access_key(
        &self,
        access_key: &str,
        login_options: Option<&Map<String, Value>>,
    ) -> Result<Arc<Exchanged>> {
        check_access_key(access_key)?;
        self.exchange(access_key, login_options)
    }

    fn exchange(
        &self,
        access_key: &str,
        login_options: Option<&Map<String, Value>>,
    ) -> Result<Arc<Exchanged>> {
        let epoch = self.keys.epoch();
        let answer = self
            .descope
            .exchange_access_key(access_key, login_options)?;
        let session = self
            .verify_session(&answer.session_jwt, true, true)
            .map_err(|error| issued_token_error(&error))?;
        Ok(Arc::new(Exchanged {
            key_id: answer.key_id,
            session_jwt: answer.session_jwt,
            expiration: answer.expiration,
            session,
            epoch,
        }))
    }

    /// Refreshes a session: the refresh token is verified here first, then
    /// one call per refresh token per process at a time goes to Descope; its
    /// answer is remembered until the new session expires, so requests still
    /// carrying the old pair get the same new pair.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] or [`Error::Expired`] for the refresh token,
    /// [`Error::RefreshRefused`], [`Error::Unavailable`], [`Error::RateLimited`].
    pub fn refresh(&self, refresh_token: &str) -> Result<Arc<Refreshed>> {
        let presented = self.validate_refresh(refresh_token, true)?;
        let epoch = self.keys.epoch();
        let now = now_unix();
        let fresh = |refreshed: &Arc<Refreshed>| {
            refreshed.epoch == epoch && now < refreshed.session.claims.expires_at
        };
        self.refreshes.get_or_run(digest(refresh_token), fresh, || {
            let outcome = self
                .descope
                .refresh(refresh_token)
                .and_then(|answer| self.refreshed(answer, refresh_token, &presented));
            let keep = match &outcome {
                Ok(refreshed) => Some(instant_at(refreshed.session.claims.expires_at)),
                Err(_) => Some(later(FAILURE_MEMORY)),
            };
            (outcome, keep)
        })
    }

    /// Selects a tenant for the session (`dct`), as Descope's SDK does.
    ///
    /// # Errors
    /// As [`Core::refresh`].
    pub fn select_tenant(&self, tenant_id: &str, refresh_token: &str) -> Result<Arc<Refreshed>> {
        let presented = self.validate_refresh(refresh_token, true)?;
        let answer = self.descope.select_tenant(tenant_id, refresh_token)?;
        self.refreshed(answer, refresh_token, &presented)
    }

    fn refreshed(
        &self,
        answer: TokenResponse,
        presented_token: &str,
        presented: &Session,
    ) -> Result<Arc<Refreshed>> {
        let epoch = self.keys.epoch();
        let session = self
            .validate_session(&answer.session_jwt, true)
            .map_err(|error| issued_token_error(&error))?;
        let rotated = answer.refresh_jwt.filter(|new| new != presented_token);
        let (refresh_claims, refresh_expires_at) = match &rotated {
            Some(new) => {
                let fresh = self
                    .validate_refresh(new, true)
                    .map_err(|error| issued_token_error(&error))?;
                (fresh.claims.raw.clone(), fresh.claims.expires_at)
            }
            None => (presented.claims.raw.clone(), presented.claims.expires_at),
        };
        Ok(Arc::new(Refreshed {
            session_jwt: answer.session_jwt,
            refresh_jwt: rotated,
            session,
            refresh_claims,
            refresh_expires_at: Some(refresh_expires_at),
            extra: answer.extra,
            epoch,
        }))
    }

    /// Revokes the refresh token at Descope, and forgets any refresh
    /// remembered for it.
    ///
    /// # Errors
    /// As [`Core::refresh`].
    pub fn logout(&self, refresh_token: &str) -> Result<()> {
        self.validate_refresh(refresh_token, true)?;
        self.forget_refresh_chain(refresh_token);
        self.descope.logout(refresh_token)
    }

    /// Revokes every session of the user at Descope.
    ///
    /// # Errors
    /// As [`Core::refresh`].
    pub fn logout_all(&self, refresh_token: &str) -> Result<()> {
        self.validate_refresh(refresh_token, true)?;
        self.forget_refresh_chain(refresh_token);
        self.descope.logout_all(refresh_token)
    }

    /// The user's details from Descope.
    ///
    /// # Errors
    /// As [`Core::refresh`].
    pub fn me(&self, refresh_token: &str) -> Result<Value> {
        self.validate_refresh(refresh_token, true)?;
        self.descope.me(refresh_token)
    }

    /// Checks a session's `aud` (see [`token::check_audience`]).
    ///
    /// # Errors
    /// [`Error::InvalidToken`] naming `aud`.
    pub fn check_audience(&self, session: &Session, audience: Option<&[String]>) -> Result<()> {
        token::check_audience(&session.claims.raw, audience, &self.settings.project_id)
    }

    /// Forgets the remembered refreshes of `refresh_token` and of every token
    /// it was rotated from: once the newest token of a rotation chain is
    /// logged out, an older one must not keep yielding sessions from memory.
    fn forget_refresh_chain(&self, refresh_token: &str) {
        let mut pending = vec![digest(refresh_token)];
        while let Some(key) = pending.pop() {
            self.refreshes.forget(&key);
            pending.extend(self.refreshes.forget_matching(|refreshed| {
                refreshed
                    .refresh_jwt
                    .as_deref()
                    .is_some_and(|rotated| digest(rotated) == key)
            }));
        }
    }

    /// Installs the route table that [`Core::authorize`] decides with.
    pub fn set_routes(&self, table: Arc<RouteTable>) {
        *self.routes.write() = Some(table);
    }

    /// Whether `session` may send `method` to `path`, by the installed route
    /// table. Until a table is installed every route needs MANAGE (fail
    /// closed).
    #[must_use]
    pub fn authorize(&self, session: &Session, method: &str, path: &str) -> Decision {
        let (required, route) = match self.routes.read().as_deref() {
            Some(table) => {
                let found = table.lookup(method, path);
                (found.requirement, found.name.to_owned())
            }
            None => (Requirement::Level(Level::Manage), NO_ROUTE_TABLE.to_owned()),
        };
        Decision {
            allowed: required.is_met_by(session.level),
            required,
            level: session.level,
            route,
        }
    }

    /// Counters for tests and monitoring.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            keys: self.keys.stats(),
            sessions: self.sessions.stats(),
            access_key_exchanges: self.access_keys.runs(),
            refresh_calls: self.refreshes.runs(),
        }
    }

    /// The key lookup, for benchmarks and tests.
    #[must_use]
    pub fn key_lookup(&self) -> &dyn KeyLookup {
        &self.keys
    }
}

/// A token Descope itself just issued failed verification: that is Descope
/// (or the key set) misbehaving, not the client's fault.
fn issued_token_error(error: &Error) -> Error {
    match error {
        Error::InvalidToken(reason) => Error::unavailable(
            format!("Descope issued a token that does not verify: {reason}"),
            crate::descope::DEFAULT_RETRY_AFTER,
        ),
        Error::Expired => Error::unavailable(
            "Descope issued an expired token",
            crate::descope::DEFAULT_RETRY_AFTER,
        ),
        other => other.clone(),
    }
}

/// Sanity limits on something offered as an access key.
fn check_access_key(credential: &str) -> Result<()> {
    let plausible = !credential.is_empty()
        && credential.len() <= MAX_ACCESS_KEY_BYTES
        && credential.bytes().all(|byte| byte.is_ascii_graphic());
    if plausible {
        Ok(())
    } else {
        Err(Error::invalid("malformed credential"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, jwks, payload, Reply, StubServer, PROJECT};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn core_for(server: &StubServer, tweak: impl FnOnce(&mut Settings)) -> Core {
        let mut settings = Settings::new(PROJECT, &server.base_url());
        settings.http_timeout = Duration::from_millis(1500);
        tweak(&mut settings);
        Core::new(settings).unwrap()
    }

    /// A stub Descope: the key set, and scripted answers for the rest.
    fn descope(
        keys: &'static [&'static str],
        other: impl Fn(&testkit::Request) -> Reply + Send + Sync + 'static,
    ) -> StubServer {
        StubServer::start_with(move |request| {
            if request.path.starts_with("/v2/keys/") {
                Reply::json(200, &jwks(keys))
            } else {
                other(request)
            }
        })
    }

    fn session_token(overrides: &Value) -> String {
        testkit::rs256(&payload(now_unix(), overrides))
    }

    fn refresh_token(overrides: &Value) -> String {
        let mut claims = payload(now_unix(), overrides);
        claims["drn"] = "DSR".into();
        claims["exp"] = (now_unix() + 86400).into();
        testkit::rs256(&claims)
    }

    #[test]
    fn far_future_exp_is_remembered_for_at_most_a_day() {
        let until = instant_at(i64::MAX);
        assert!(until <= Instant::now() + MAX_MEMORY);
        assert!(instant_at(0) <= Instant::now());
    }

    #[test]
    fn invalid_settings_name_the_parameter() {
        type Tweak = fn(&mut Settings);
        let cases: [(Tweak, &str); 5] = [
            (|s| s.project_id = "P2 bad".to_owned(), "project_id"),
            (|s| s.base_url = "ftp://x".to_owned(), "base_url"),
            (|s| s.leeway_seconds = -1, "leeway_seconds"),
            (|s| s.http_timeout = Duration::ZERO, "http_timeout_seconds"),
            (|s| s.max_token_bytes = 10, "max_token_bytes"),
        ];
        for (tweak, name) in cases {
            let mut settings = Settings::new(PROJECT, "https://api.descope.com");
            tweak(&mut settings);
            match Core::new(settings) {
                Err(Error::Config(message)) => assert!(message.starts_with(name), "{message}"),
                other => panic!("expected a config error, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn valid_session_is_verified_then_served_from_the_cache() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(404, "{}"));
        let core = core_for(&server, |_| {});
        let token = session_token(&json!({"roles": ["mlflow-editor"]}));

        let session = core.validate_session(&token, true).unwrap();
        assert_eq!(session.level, Level::Edit);
        assert_eq!(session.claims.user_id, "U2alice");

        let again = core.cached_session(&token).unwrap();
        assert!(Arc::ptr_eq(&session, &again));
        assert_eq!(core.stats().keys.fetches, 1);
    }

    fn table(routes: &[(&str, &str, &str)]) -> Arc<RouteTable> {
        let specs: Vec<_> = routes
            .iter()
            .map(|(method, pattern, level)| {
                crate::routes::RouteSpec::parse(method, pattern, level, pattern).unwrap()
            })
            .collect();
        Arc::new(RouteTable::new(&[], &specs, "").unwrap())
    }

    #[test]
    fn authorize_compares_the_route_requirement_with_the_session_level() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(404, "{}"));
        let core = core_for(&server, |_| {});
        core.set_routes(table(&[
            ("POST", "/api/2.0/mlflow/experiments/search", "READ"),
            ("POST", "/api/2.0/mlflow/runs/create", "EDIT"),
            ("POST", "/api/2.0/mlflow/runs/delete", "MANAGE"),
            ("GET", "/health", "PUBLIC"),
        ]));
        let editor = core
            .validate_session(&session_token(&json!({"roles": ["mlflow-editor"]})), true)
            .unwrap();

        let search = core.authorize(&editor, "POST", "/api/2.0/mlflow/experiments/search");
        assert!(search.allowed);
        assert_eq!(search.required, Requirement::Level(Level::Read));
        assert_eq!(search.level, Level::Edit);

        assert!(
            core.authorize(&editor, "POST", "/api/2.0/mlflow/runs/create")
                .allowed
        );
        let delete = core.authorize(&editor, "POST", "/api/2.0/mlflow/runs/delete");
        assert!(!delete.allowed);
        assert_eq!(delete.route, "/api/2.0/mlflow/runs/delete");
        assert!(core.authorize(&editor, "GET", "/health").allowed);
    }

    #[test]
    fn authorize_fails_closed_on_unknown_routes_and_without_a_table() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(404, "{}"));
        let core = core_for(&server, |_| {});
        let editor = core
            .validate_session(&session_token(&json!({"roles": ["mlflow-editor"]})), true)
            .unwrap();

        let untabled = core.authorize(&editor, "GET", "/health");
        assert!(!untabled.allowed);
        assert_eq!(untabled.required, Requirement::Level(Level::Manage));
        assert_eq!(untabled.route, NO_ROUTE_TABLE);

        core.set_routes(table(&[("GET", "/health", "PUBLIC")]));
        let unknown = core.authorize(&editor, "GET", "/api/2.0/mlflow/new-thing");
        assert!(!unknown.allowed);
        assert_eq!(unknown.required, Requirement::Level(Level::Manage));
    }

    #[test]
    fn key_rotation_that_drops_a_kid_voids_cached_sessions() {
        let serving = Arc::new(parking_lot::Mutex::new(jwks(&["test-rsa-1"])));
        let body = serving.clone();
        let server = StubServer::start_with(move |_| Reply::json(200, &body.lock()));
        let core = core_for(&server, |s| s.key_refetch_cooldown = Duration::ZERO);
        let token = session_token(&json!({}));
        core.validate_session(&token, true).unwrap();

        *serving.lock() = jwks(&["test-rsa-2"]);
        core.load_keys().unwrap();

        assert!(core.cached_session(&token).is_none());
        let error = core.validate_session(&token, true).unwrap_err();
        assert_eq!(error, Error::invalid("unknown signing key (kid)"));
    }

    #[test]
    fn rotated_key_is_picked_up_on_an_unknown_kid() {
        let serving = Arc::new(parking_lot::Mutex::new(jwks(&["test-rsa-1"])));
        let body = serving.clone();
        let server = StubServer::start_with(move |_| Reply::json(200, &body.lock()));
        let core = core_for(&server, |s| s.key_refetch_cooldown = Duration::ZERO);
        core.load_keys().unwrap();

        *serving.lock() = jwks(&["test-rsa-1", "test-rsa-2"]);
        let token = testkit::rs256_b(&payload(now_unix(), &json!({})));

        assert!(core.validate_session(&token, true).is_ok());
    }

    #[test]
    fn two_hundred_random_kids_cause_at_most_two_fetches() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(404, "{}"));
        let core = core_for(&server, |_| {});
        let claims = payload(now_unix(), &json!({}));

        for i in 0..200 {
            let header = json!({"alg": "RS256", "kid": format!("kid-{i}")});
            let token = testkit::sign_raw(
                &header,
                &claims,
                &testkit::rsa_key(),
                jsonwebtoken::Algorithm::RS256,
            );
            assert!(core.validate_session(&token, true).is_err());
        }

        assert!(server.count("/v2/keys/") <= 2);
    }

    #[test]
    fn key_set_outage_at_first_load_is_unavailable_in_bounded_time() {
        let server = StubServer::start(vec![Reply::Hang(Duration::from_secs(5))]);
        let core = core_for(&server, |s| s.http_timeout = Duration::from_millis(300));
        let started = Instant::now();

        let error = core
            .validate_session(&session_token(&json!({})), true)
            .unwrap_err();

        assert!(matches!(error, Error::Unavailable { .. }));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn non_blocking_validation_would_block_only_when_a_fetch_is_needed() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(404, "{}"));
        let core = core_for(&server, |_| {});
        let token = session_token(&json!({}));

        assert_eq!(
            core.validate_session(&token, false).unwrap_err(),
            Error::WouldBlock
        );
        core.load_keys().unwrap();
        assert!(core.validate_session(&token, false).is_ok());
    }

    #[test]
    fn access_key_is_exchanged_once_and_cached() {
        let exchanges = Arc::new(AtomicUsize::new(0));
        let counter = exchanges.clone();
        let jwt = session_token(&json!({"sub": "K2key", "roles": ["mlflow-viewer"]}));
        let server = descope(&["test-rsa-1"], move |request| {
            assert_eq!(request.path, "/v1/auth/accesskey/exchange");
            counter.fetch_add(1, Ordering::SeqCst);
            let body = json!({"keyId": "K2key", "sessionJwt": jwt, "expiration": now_unix() + 600});
            Reply::json(200, &body.to_string())
        });
        let core = core_for(&server, |_| {});

        assert_eq!(
            core.authenticate("K2secret", false).unwrap_err(),
            Error::WouldBlock
        );
        let session = core.authenticate("K2secret", true).unwrap();
        assert!(session.is_access_key);
        assert_eq!(session.level, Level::Read);
        assert!(core.authenticate("K2secret", true).is_ok());
        assert!(core.authenticate("K2secret", false).is_ok());

        assert_eq!(exchanges.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn refused_access_key_is_remembered() {
        let server = descope(&["test-rsa-1"], |_| {
            Reply::json(401, r#"{"errorCode": "E1"}"#)
        });
        let core = core_for(&server, |_| {});

        for _ in 0..5 {
            assert_eq!(
                core.authenticate("K2wrong", true).unwrap_err(),
                Error::AccessKeyRefused
            );
        }
        assert_eq!(
            core.authenticate("K2wrong", false).unwrap_err(),
            Error::AccessKeyRefused
        );

        assert_eq!(server.count("/v1/auth/accesskey"), 1);
    }

    #[test]
    fn implausible_access_keys_never_reach_descope() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(500, "{}"));
        let core = core_for(&server, |_| {});
        for bad in [
            "",
            "has space",
            "tab\tkey",
            &"k".repeat(2000),
            "ключ",
            "x.y.z=",
            "...",
        ] {
            assert!(matches!(
                core.authenticate(bad, true),
                Err(Error::InvalidToken(_))
            ));
        }
        assert_eq!(server.count("/v1/"), 0);
    }

    #[test]
    fn refresh_verifies_locally_first() {
        let server = descope(&["test-rsa-1"], |_| Reply::json(500, "{}"));
        let core = core_for(&server, |_| {});

        assert!(core.refresh("garbage").is_err());
        assert!(core.refresh(&session_token(&json!({}))).is_err());

        assert_eq!(server.count("/v1/auth/refresh"), 0);
    }

    #[test]
    fn refresh_with_rotation_is_shared_and_remembered() {
        let new_session = session_token(&json!({"roles": ["mlflow-manager"]}));
        let new_refresh = refresh_token(&json!({"sub": "U2alice", "jti": "second"}));
        let rotated = new_refresh.clone();
        let server = descope(&["test-rsa-1"], move |_| {
            std::thread::sleep(Duration::from_millis(100));
            let body =
                json!({"sessionJwt": new_session, "refreshJwt": rotated, "cookieMaxAge": 60});
            Reply::json(200, &body.to_string())
        });
        let core = Arc::new(core_for(&server, |_| {}));
        let old = refresh_token(&json!({}));

        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (core, old) = (core.clone(), old.clone());
                std::thread::spawn(move || core.refresh(&old).unwrap())
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();

        assert_eq!(server.count("/v1/auth/refresh"), 1);
        for result in &results {
            assert_eq!(result.refresh_jwt.as_deref(), Some(new_refresh.as_str()));
            assert_eq!(result.session.level, Level::Manage);
        }
        core.refresh(&old).unwrap();
        assert_eq!(server.count("/v1/auth/refresh"), 1);
    }

    #[test]
    fn refresh_refused_unavailable_and_rate_limited_map_by_status() {
        let old = refresh_token(&json!({}));
        for (reply, check) in [
            (
                Reply::json(401, "{}"),
                (|e: &Error| matches!(e, Error::RefreshRefused(_))) as fn(&Error) -> bool,
            ),
            (Reply::json(503, "{}"), |e| {
                matches!(e, Error::Unavailable { .. })
            }),
            (
                Reply::json(429, "{}").with_header("Retry-After", "9"),
                |e| *e == Error::RateLimited { retry_after: 9 },
            ),
            (Reply::Hang(Duration::from_secs(3)), |e| {
                matches!(e, Error::Unavailable { .. })
            }),
        ] {
            let server = descope(&["test-rsa-1"], move |_| reply.clone());
            let core = core_for(&server, |s| s.http_timeout = Duration::from_millis(400));
            core.load_keys().unwrap();
            let started = Instant::now();
            let error = core.refresh(&old).unwrap_err();
            assert!(check(&error), "{error:?}");
            assert!(started.elapsed() < Duration::from_secs(2));
        }
    }

    #[test]
    fn refreshed_session_that_does_not_verify_is_unavailable() {
        let forged = testkit::rs256_b(&payload(now_unix(), &json!({})));
        let server = descope(&["test-rsa-1"], move |_| {
            Reply::json(200, &json!({ "sessionJwt": forged }).to_string())
        });
        let core = core_for(&server, |_| {});
        let error = core.refresh(&refresh_token(&json!({}))).unwrap_err();
        assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    }

    #[test]
    fn logout_forgets_the_remembered_refresh() {
        let new_session = session_token(&json!({}));
        let server = descope(&["test-rsa-1"], move |request| {
            match request.path.as_str() {
                "/v1/auth/refresh" => {
                    Reply::json(200, &json!({ "sessionJwt": new_session }).to_string())
                }
                _ => Reply::json(200, "{}"),
            }
        });
        let core = core_for(&server, |_| {});
        let old = refresh_token(&json!({}));
        core.refresh(&old).unwrap();

        core.logout(&old).unwrap();
        core.refresh(&old).unwrap();

        assert_eq!(server.count("/v1/auth/refresh"), 2);
        assert_eq!(server.count("/v1/auth/logout"), 1);
    }
}
