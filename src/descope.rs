//! Calls to Descope's HTTP API (`ureq`): key set, refresh, tenant select,
//! logout, logout-all, me and access-key exchange.
//!
//! Every call is bounded by one global timeout. Descope's answers are mapped
//! to the core's errors by who is at fault: 400/401/403 refuse the credential,
//! 429 is a rate limit (with `Retry-After`), anything else that is not 2xx,
//! and any transport failure, means Descope is unavailable. Error messages
//! carry at most Descope's short error code, never a token or key.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use ureq::http::{HeaderMap, Response};
use ureq::{Agent, Body};

use crate::error::{Error, Result};
use crate::keys::KeySetSource;

/// Seconds a client is told to wait when Descope gives no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: u64 = 5;

/// Largest response body read from Descope.
const MAX_BODY_BYTES: u64 = 1 << 20;
/// Longest we hold off after a 429, whatever its `Retry-After` says.
const MAX_HOLD_OFF: Duration = Duration::from_secs(300);

/// A session-issuing answer (refresh, tenant select).
#[derive(Debug, Clone, Default)]
pub struct TokenResponse {
    /// The new session JWT (not yet verified).
    pub session_jwt: String,
    /// The refresh token Descope sent back: body `refreshJwt`, else the `DSR`
    /// cookie, else none.
    pub refresh_jwt: Option<String>,
    /// The rest of the body (`cookieDomain`, `cookiePath`, `cookieMaxAge`,
    /// `cookieExpiration`, `user`, `firstSeen`, ...), tokens removed.
    pub extra: Map<String, Value>,
}

/// The answer to an access-key exchange.
#[derive(Debug, Clone)]
pub struct ExchangeResponse {
    /// The access key's id.
    pub key_id: String,
    /// The session JWT (not yet verified).
    pub session_jwt: String,
    /// When the session expires, unix seconds.
    pub expiration: i64,
}

/// A client for one project's Descope API.
pub struct Descope {
    agent: Agent,
    base_url: String,
    project_id: String,
    /// Until when Descope's last 429 asked this project to wait.
    rate_limited_until: parking_lot::Mutex<Option<Instant>>,
}

/// What a refused credential turns into, per call.
#[derive(Clone, Copy)]
enum Refusal {
    Refresh,
    AccessKey,
    KeySet,
}

impl Descope {
    /// A client whose every call is bounded by `timeout`.
    #[must_use]
    pub fn new(base_url: &str, project_id: &str, timeout: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("mlflow-descope-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            project_id: project_id.to_owned(),
            rate_limited_until: parking_lot::Mutex::new(None),
        }
    }

    /// `POST /v1/auth/refresh` with the refresh token.
    ///
    /// # Errors
    /// [`Error::RefreshRefused`], [`Error::RateLimited`] or [`Error::Unavailable`].
    pub fn refresh(&self, refresh_token: &str) -> Result<TokenResponse> {
        let reply = self.post(
            "/v1/auth/refresh",
            refresh_token,
            &json!({}),
            Refusal::Refresh,
        )?;
        token_response(reply)
    }

    /// `POST /v1/auth/tenant/select` with the refresh token.
    ///
    /// # Errors
    /// As [`Descope::refresh`].
    pub fn select_tenant(&self, tenant_id: &str, refresh_token: &str) -> Result<TokenResponse> {
        let body = json!({ "tenant": tenant_id });
        let reply = self.post(
            "/v1/auth/tenant/select",
            refresh_token,
            &body,
            Refusal::Refresh,
        )?;
        token_response(reply)
    }

    /// `POST /v1/auth/logout`: revokes the refresh token.
    ///
    /// # Errors
    /// As [`Descope::refresh`].
    pub fn logout(&self, refresh_token: &str) -> Result<()> {
        self.post(
            "/v1/auth/logout",
            refresh_token,
            &json!({}),
            Refusal::Refresh,
        )
        .map(drop)
    }

    /// `POST /v1/auth/logoutall`: revokes every session of the user.
    ///
    /// # Errors
    /// As [`Descope::refresh`].
    pub fn logout_all(&self, refresh_token: &str) -> Result<()> {
        self.post(
            "/v1/auth/logoutall",
            refresh_token,
            &json!({}),
            Refusal::Refresh,
        )
        .map(drop)
    }

    /// `GET /v1/auth/me`: the user's details.
    ///
    /// # Errors
    /// As [`Descope::refresh`].
    pub fn me(&self, refresh_token: &str) -> Result<Value> {
        let request = self
            .agent
            .get(format!("{}/v1/auth/me", self.base_url))
            .header("Authorization", self.bearer(refresh_token));
        let reply = finish(request.call(), Refusal::Refresh)?;
        read_json(reply)
    }

    /// `POST /v1/auth/accesskey/exchange` with the access key, and the SDK's
    /// login options (`customClaims`, `selectedTenant`) when given.
    ///
    /// # Errors
    /// [`Error::AccessKeyRefused`], [`Error::RateLimited`] or [`Error::Unavailable`].
    pub fn exchange_access_key(
        &self,
        access_key: &str,
        login_options: Option<&Map<String, Value>>,
    ) -> Result<ExchangeResponse> {
        let body = json!({ "loginOptions": login_options.cloned().unwrap_or_default() });
        let path = "/v1/auth/accesskey/exchange";
        let reply = self.post(path, access_key, &body, Refusal::AccessKey)?;
        let mut document = read_object(reply)?;
        let session_jwt = take_string(&mut document, "sessionJwt")
            .ok_or_else(|| malformed("exchange answer has no sessionJwt"))?;
        Ok(ExchangeResponse {
            key_id: take_string(&mut document, "keyId").unwrap_or_default(),
            expiration: document
                .get("expiration")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            session_jwt,
        })
    }

    fn bearer(&self, credential: &str) -> String {
        format!("Bearer {}:{credential}", self.project_id)
    }

    fn post(
        &self,
        path: &str,
        credential: &str,
        body: &Value,
        refusal: Refusal,
    ) -> Result<Response<Body>> {
        self.hold_off()?;
        let request = self
            .agent
            .post(format!("{}{path}", self.base_url))
            .header("Authorization", self.bearer(credential));
        self.noting_rate_limit(finish(request.send_json(body), refusal))
    }

    /// While Descope's last 429 asks this project to wait, every call is
    /// answered `RateLimited` without reaching Descope: a flood of distinct
    /// unknown access keys must not keep the project rate-limited for the
    /// users whose refreshes and exchanges are real.
    fn hold_off(&self) -> Result<()> {
        let until = *self.rate_limited_until.lock();
        let Some(left) = until.and_then(|until| until.checked_duration_since(Instant::now()))
        else {
            return Ok(());
        };
        if left.is_zero() {
            return Ok(());
        }
        Err(Error::RateLimited {
            retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        })
    }

    fn noting_rate_limit<T>(&self, outcome: Result<T>) -> Result<T> {
        if let Err(Error::RateLimited { retry_after }) = &outcome {
            let wait = Duration::from_secs(*retry_after).min(MAX_HOLD_OFF);
            *self.rate_limited_until.lock() = Some(Instant::now() + wait);
        }
        outcome
    }
}

impl KeySetSource for Descope {
    fn fetch_key_set(&self) -> Result<Vec<u8>> {
        self.hold_off()?;
        let url = format!("{}/v2/keys/{}", self.base_url, self.project_id);
        let request = self
            .agent
            .get(url)
            .header("Authorization", format!("Bearer {}", self.project_id));
        let mut reply = self.noting_rate_limit(finish(request.call(), Refusal::KeySet))?;
        reply
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|error| transport(&error))
    }
}

/// Maps a finished call to the reply, or to the error its status means.
fn finish(
    outcome: std::result::Result<Response<Body>, ureq::Error>,
    refusal: Refusal,
) -> Result<Response<Body>> {
    let mut reply = outcome.map_err(|error| transport(&error))?;
    let status = reply.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(reply);
    }

    let retry_after = retry_after(reply.headers());
    let code = error_code(&mut reply);
    let what = code.map_or_else(String::new, |code| format!(" ({code})"));
    Err(match (status, refusal) {
        (429, _) => Error::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        },
        (400 | 401 | 403, Refusal::Refresh) => {
            Error::RefreshRefused(format!("Descope answered {status}{what}"))
        }
        (400 | 401 | 403, Refusal::AccessKey) => Error::AccessKeyRefused,
        // Descope answers 4xx for a project it does not know: say where to look,
        // it is the operator's setting, not an outage.
        (400 | 401 | 403 | 404, Refusal::KeySet) => Error::unavailable(
            format!(
                "Descope refused the key set with {status}{what}; check DESCOPE_PROJECT_ID \
                 and DESCOPE_BASE_URL"
            ),
            retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        ),
        _ => Error::unavailable(
            format!("Descope answered {status}{what}"),
            retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        ),
    })
}

fn transport(error: &ureq::Error) -> Error {
    let reason = match error {
        ureq::Error::Timeout(_) => "Descope did not answer in time",
        ureq::Error::BodyExceedsLimit(_) => "Descope answer too large",
        ureq::Error::Json(_) => "Descope answer is not JSON",
        _ => "Descope could not be reached",
    };
    Error::unavailable(reason, DEFAULT_RETRY_AFTER)
}

fn malformed(reason: &str) -> Error {
    Error::unavailable(reason, DEFAULT_RETRY_AFTER)
}

/// `Retry-After` as whole seconds (1 to 3600); an HTTP date is not parsed.
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let seconds: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(seconds.clamp(1, 3600))
}

/// Descope's `errorCode` (e.g. `E061103`), when it looks like one. The
/// description is not used: it is free text that could quote a credential.
fn error_code(reply: &mut Response<Body>) -> Option<String> {
    let document: Value = reply
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_json()
        .ok()?;
    let code = document.get("errorCode")?.as_str()?;
    let plain =
        !code.is_empty() && code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    plain.then(|| code.to_owned())
}

fn read_json(mut reply: Response<Body>) -> Result<Value> {
    reply
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_json()
        .map_err(|error| transport(&error))
}

fn read_object(reply: Response<Body>) -> Result<Map<String, Value>> {
    match read_json(reply)? {
        Value::Object(document) => Ok(document),
        _ => Err(malformed("Descope answer is not a JSON object")),
    }
}

fn take_string(document: &mut Map<String, Value>, name: &str) -> Option<String> {
    match document.remove(name) {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        _ => None,
    }
}

/// The value of the `DSR` cookie among the `Set-Cookie` headers.
fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|header| header.to_str().ok())
        .find_map(|cookie| {
            let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
            let value = pair.trim().strip_prefix("DSR=")?.trim().trim_matches('"');
            (!value.is_empty()).then(|| value.to_owned())
        })
}

fn token_response(reply: Response<Body>) -> Result<TokenResponse> {
    let cookie = refresh_cookie(reply.headers());
    let mut extra = read_object(reply)?;
    let session_jwt = take_string(&mut extra, "sessionJwt")
        .ok_or_else(|| malformed("refresh answer has no sessionJwt"))?;
    let refresh_jwt = take_string(&mut extra, "refreshJwt").or(cookie);
    Ok(TokenResponse {
        session_jwt,
        refresh_jwt,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Reply, StubServer};
    use std::time::Instant;

    fn client(server: &StubServer, timeout_ms: u64) -> Descope {
        Descope::new(
            &server.base_url(),
            "P2Test",
            Duration::from_millis(timeout_ms),
        )
    }

    #[test]
    fn key_set_fetch_sends_the_project_and_returns_the_body() {
        let server = StubServer::start(vec![Reply::json(200, r#"{"keys": []}"#)]);

        let body = client(&server, 2000).fetch_key_set().unwrap();

        assert_eq!(body, br#"{"keys": []}"#);
        let request = &server.requests()[0];
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v2/keys/P2Test");
        assert_eq!(request.authorization.as_deref(), Some("Bearer P2Test"));
    }

    #[test]
    fn key_set_refused_for_the_project_names_the_settings_to_check() {
        let server = StubServer::start(vec![Reply::json(
            400,
            r#"{"errorCode": "E011002", "errorDescription": "bad project"}"#,
        )]);

        let error = client(&server, 2000).fetch_key_set().unwrap_err();

        let Error::Unavailable { reason, .. } = error else {
            panic!("expected Unavailable, got {error:?}");
        };
        assert!(reason.contains("400 (E011002)"), "{reason}");
        assert!(reason.contains("DESCOPE_PROJECT_ID"), "{reason}");
    }

    #[test]
    fn refresh_sends_bearer_project_and_token_and_reads_the_body() {
        let body = r#"{"sessionJwt": "s.j.t", "refreshJwt": "r.j.t", "cookieMaxAge": 60}"#;
        let server = StubServer::start(vec![Reply::json(200, body)]);

        let answer = client(&server, 2000).refresh("old.refresh.token").unwrap();

        assert_eq!(answer.session_jwt, "s.j.t");
        assert_eq!(answer.refresh_jwt.as_deref(), Some("r.j.t"));
        assert_eq!(answer.extra["cookieMaxAge"], 60);
        assert!(!answer.extra.contains_key("sessionJwt"));
        let request = &server.requests()[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/v1/auth/refresh")
        );
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer P2Test:old.refresh.token")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&request.body).unwrap(),
            json!({})
        );
    }

    #[test]
    fn rotated_refresh_token_is_taken_from_set_cookie() {
        let reply = Reply::json(200, r#"{"sessionJwt": "s.j.t"}"#)
            .with_header("Set-Cookie", "DS=s.j.t; Path=/")
            .with_header("Set-Cookie", "DSR=new.refresh.jwt; Path=/; HttpOnly");
        let server = StubServer::start(vec![reply]);

        let answer = client(&server, 2000).refresh("old").unwrap();

        assert_eq!(answer.refresh_jwt.as_deref(), Some("new.refresh.jwt"));
    }

    #[test]
    fn refresh_without_a_new_refresh_token_has_none() {
        let server = StubServer::start(vec![Reply::json(200, r#"{"sessionJwt": "s.j.t"}"#)]);
        assert_eq!(
            client(&server, 2000).refresh("old").unwrap().refresh_jwt,
            None
        );
    }

    #[test]
    fn refused_refresh_is_refresh_refused_with_the_error_code_only() {
        let body = r#"{"errorCode": "E061103", "errorDescription": "token old.refresh.token bad"}"#;
        let server = StubServer::start(vec![Reply::json(401, body)]);

        let error = client(&server, 2000)
            .refresh("old.refresh.token")
            .unwrap_err();

        assert_eq!(
            error,
            Error::RefreshRefused("Descope answered 401 (E061103)".to_owned())
        );
    }

    #[test]
    fn refused_access_key_is_access_key_refused() {
        let server = StubServer::start(vec![Reply::json(401, "{}")]);
        let error = client(&server, 2000)
            .exchange_access_key("K2secret", None)
            .unwrap_err();
        assert_eq!(error, Error::AccessKeyRefused);
        let request = &server.requests()[0];
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer P2Test:K2secret")
        );
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body, json!({"loginOptions": {}}));
    }

    #[test]
    fn exchange_reads_key_id_jwt_and_expiration() {
        let body = r#"{"keyId": "K2id", "sessionJwt": "a.b.c", "expiration": 1900000000}"#;
        let server = StubServer::start(vec![Reply::json(200, body)]);
        let answer = client(&server, 2000)
            .exchange_access_key("K2secret", None)
            .unwrap();
        assert_eq!(
            (answer.key_id.as_str(), answer.expiration),
            ("K2id", 1_900_000_000)
        );
    }

    #[test]
    fn status_500_is_unavailable_in_bounded_time() {
        let server = StubServer::start(vec![Reply::json(500, "{}")]);
        let started = Instant::now();

        let error = client(&server, 2000).refresh("old").unwrap_err();

        assert!(matches!(error, Error::Unavailable { retry_after: 5, .. }));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn status_429_is_rate_limited_with_retry_after() {
        let reply = Reply::json(429, r#"{"errorCode": "E130429"}"#).with_header("Retry-After", "7");
        let server = StubServer::start(vec![reply]);

        let error = client(&server, 2000)
            .exchange_access_key("K2secret", None)
            .unwrap_err();

        assert_eq!(error, Error::RateLimited { retry_after: 7 });
    }

    #[test]
    fn after_a_429_calls_wait_out_retry_after_without_reaching_descope() {
        let limited =
            Reply::json(429, r#"{"errorCode": "E130429"}"#).with_header("Retry-After", "30");
        let server = StubServer::start(vec![limited, Reply::json(200, "{}")]);
        let descope = client(&server, 2000);

        let first = descope.exchange_access_key("K2one", None).unwrap_err();
        let second = descope.exchange_access_key("K2two", None).unwrap_err();
        let refresh = descope.refresh("old").unwrap_err();

        assert_eq!(first, Error::RateLimited { retry_after: 30 });
        assert!(
            matches!(second, Error::RateLimited { retry_after } if (29..=30).contains(&retry_after))
        );
        assert!(matches!(refresh, Error::RateLimited { .. }));
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn status_429_without_retry_after_uses_the_default() {
        let server = StubServer::start(vec![Reply::json(429, "{}")]);
        let error = client(&server, 2000).refresh("old").unwrap_err();
        assert_eq!(
            error,
            Error::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            }
        );
    }

    #[test]
    fn hanging_descope_times_out_within_the_bound() {
        let server = StubServer::start(vec![Reply::Hang(Duration::from_secs(3))]);
        let started = Instant::now();

        let error = client(&server, 300).refresh("old").unwrap_err();

        assert_eq!(
            error,
            Error::unavailable("Descope did not answer in time", 5)
        );
        assert!(started.elapsed() < Duration::from_millis(1500));
    }

    #[test]
    fn closed_connection_or_no_server_is_unavailable() {
        let server = StubServer::start(vec![Reply::Close]);
        let error = client(&server, 2000).logout("old").unwrap_err();
        assert!(matches!(error, Error::Unavailable { .. }));

        let nobody = Descope::new("http://127.0.0.1:9", "P2Test", Duration::from_millis(500));
        assert!(matches!(
            nobody.me("old").unwrap_err(),
            Error::Unavailable { .. }
        ));
    }

    #[test]
    fn redirects_are_not_followed() {
        let reply = Reply::json(302, "{}").with_header("Location", "http://127.0.0.1:9/elsewhere");
        let server = StubServer::start(vec![reply]);
        let error = client(&server, 2000).refresh("old").unwrap_err();
        assert!(matches!(error, Error::Unavailable { .. }));
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn answer_without_session_jwt_is_unavailable() {
        let server = StubServer::start(vec![Reply::json(200, r#"{"user": {}}"#)]);
        let error = client(&server, 2000).refresh("old").unwrap_err();
        assert!(matches!(error, Error::Unavailable { .. }));
    }

    #[test]
    fn me_and_select_tenant_use_their_paths() {
        let server = StubServer::start(vec![
            Reply::json(200, r#"{"userId": "U2a"}"#),
            Reply::json(200, r#"{"sessionJwt": "s.j.t"}"#),
        ]);
        let descope = client(&server, 2000);
        assert_eq!(descope.me("r").unwrap()["userId"], "U2a");
        descope.select_tenant("T1", "r").unwrap();
        let requests = server.requests();
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("GET", "/v1/auth/me")
        );
        assert_eq!(requests[1].path, "/v1/auth/tenant/select");
        let body: Value = serde_json::from_str(&requests[1].body).unwrap();
        assert_eq!(body, json!({"tenant": "T1"}));
    }
}
