//! Result shapes of Descope's Python SDK, built from verified sessions, so
//! code written against that SDK keeps working (contract §8).
//!
//! `roles`, `permissions` and `tenants` at the top level are copied from the
//! session token's claims as they are (defaulting to `[]`/`{}` when absent),
//! exactly as the SDK does; the normalised views live on `Session`.

use serde_json::{json, Map, Value};

use crate::core::{Exchanged, Refreshed, Session};

/// What the SDK's `validate_session` returns: every claim at the top level,
/// the claims again under `sessionToken`, and the convenience fields.
#[must_use]
pub fn session_response(session: &Session, session_jwt: Option<&str>) -> Map<String, Value> {
    let token = with_jwt(&session.claims.raw, session_jwt);
    let mut response = token.clone();
    response.insert("sessionToken".to_owned(), Value::Object(token));
    add_conveniences(&mut response, session);
    response
}

/// What the SDK's `refresh_session` (and `select_tenant`) return.
#[must_use]
pub fn refresh_response(refreshed: &Refreshed, refresh_token: &str) -> Map<String, Value> {
    let session = with_jwt(&refreshed.session.claims.raw, Some(&refreshed.session_jwt));
    let refresh_jwt = refreshed.refresh_jwt.as_deref().unwrap_or(refresh_token);
    let refresh = with_jwt(&refreshed.refresh_claims, Some(refresh_jwt));
    let extra = &refreshed.extra;
    let mut response = Map::new();
    response.insert("sessionToken".to_owned(), Value::Object(session));
    response.insert("refreshSessionToken".to_owned(), Value::Object(refresh));
    add_conveniences(&mut response, &refreshed.session);
    response.insert(
        "cookieData".to_owned(),
        json!({
            "exp": extra.get("cookieExpiration").cloned().unwrap_or(json!(0)),
            "maxAge": extra.get("cookieMaxAge").cloned().unwrap_or(json!(0)),
            "domain": extra.get("cookieDomain").cloned().unwrap_or(json!("")),
            "path": extra.get("cookiePath").cloned().unwrap_or(json!("/")),
        }),
    );
    response.insert(
        "user".to_owned(),
        extra.get("user").cloned().unwrap_or(json!({})),
    );
    let first_seen = extra.get("firstSeen").cloned().unwrap_or(json!(true));
    response.insert("firstSeen".to_owned(), first_seen);
    response
}

/// What the SDK's `exchange_access_key` returns.
#[must_use]
pub fn exchange_response(exchanged: &Exchanged) -> Map<String, Value> {
    let session = with_jwt(&exchanged.session.claims.raw, Some(&exchanged.session_jwt));
    let mut response = Map::new();
    response.insert("sessionToken".to_owned(), Value::Object(session));
    add_conveniences(&mut response, &exchanged.session);
    response
}

fn with_jwt(claims: &Map<String, Value>, jwt: Option<&str>) -> Map<String, Value> {
    let mut token = claims.clone();
    if let Some(jwt) = jwt {
        token.insert("jwt".to_owned(), Value::String(jwt.to_owned()));
    }
    token
}

/// `permissions`, `roles`, `tenants`, `projectId` and `userId` (`keyId` for
/// an access-key session), as the SDK derives them from the session token.
fn add_conveniences(response: &mut Map<String, Value>, session: &Session) {
    let claims = &session.claims.raw;
    let claim = |name: &str, absent: Value| claims.get(name).cloned().unwrap_or(absent);
    response.insert("permissions".to_owned(), claim("permissions", json!([])));
    response.insert("roles".to_owned(), claim("roles", json!([])));
    response.insert("tenants".to_owned(), claim("tenants", json!({})));
    response.insert("projectId".to_owned(), json!(session.project_id));
    let id_name = if session.is_access_key {
        "keyId"
    } else {
        "userId"
    };
    response.insert(id_name.to_owned(), json!(session.claims.user_id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;
    use crate::levels::Level;
    use std::sync::Arc;

    fn session(payload: &Value, access_key: bool) -> Session {
        let raw = payload.as_object().unwrap().clone();
        Session {
            claims: Claims::from_payload(raw, 100, "sub").unwrap(),
            level: Level::Read,
            project_id: "P2x".to_owned(),
            is_access_key: access_key,
        }
    }

    #[test]
    fn session_response_has_claims_session_token_and_conveniences() {
        let payload = json!({"sub": "U2a", "dsub": "U2b", "roles": ["r"], "exp": 100, "x": 1});
        let response = session_response(&session(&payload, false), Some("a.b.c"));

        assert_eq!(response["x"], 1);
        assert_eq!(response["jwt"], "a.b.c");
        assert_eq!(response["sessionToken"]["jwt"], "a.b.c");
        assert_eq!(response["sessionToken"]["roles"], json!(["r"]));
        assert_eq!(response["roles"], json!(["r"]));
        assert_eq!(response["permissions"], json!([]));
        assert_eq!(response["tenants"], json!({}));
        assert_eq!(response["projectId"], "P2x");
        assert_eq!(response["userId"], "U2b");
    }

    #[test]
    fn odd_claims_are_passed_through_as_the_sdk_does() {
        let payload = json!({"sub": "U2a", "roles": null, "tenants": ["T1"]});
        let response = session_response(&session(&payload, false), None);
        assert_eq!(response["roles"], Value::Null);
        assert_eq!(response["tenants"], json!(["T1"]));
        assert!(!response.contains_key("jwt"));
    }

    #[test]
    fn exchange_response_names_the_key_id() {
        let exchanged =
            Exchanged::for_tests(Arc::new(session(&json!({"sub": "K2key"}), true)), "a.b.c");
        let response = exchange_response(&exchanged);
        assert_eq!(response["keyId"], "K2key");
        assert!(!response.contains_key("userId"));
        assert_eq!(response["sessionToken"]["jwt"], "a.b.c");
    }

    #[test]
    fn refresh_response_uses_the_rotated_or_presented_refresh_token() {
        let refreshed = Refreshed::for_tests(
            Arc::new(session(&json!({"sub": "U2a"}), false)),
            "s.s.s",
            None,
            &json!({"cookieMaxAge": 60, "user": {"userId": "U2a"}}),
        );
        let response = refresh_response(&refreshed, "r.r.r");
        assert_eq!(response["sessionToken"]["jwt"], "s.s.s");
        assert_eq!(response["refreshSessionToken"]["jwt"], "r.r.r");
        assert_eq!(
            response["cookieData"],
            json!({"exp": 0, "maxAge": 60, "domain": "", "path": "/"})
        );
        assert_eq!(response["user"]["userId"], "U2a");
        assert_eq!(response["firstSeen"], true);

        let rotated = Refreshed::for_tests(
            refreshed.session.clone(),
            "s.s.s",
            Some("n.n.n"),
            &json!({}),
        );
        let response = refresh_response(&rotated, "r.r.r");
        assert_eq!(response["refreshSessionToken"]["jwt"], "n.n.n");
    }
}
