//! Strict verification of Descope session and refresh tokens, as one column
//! of guard clauses.
//!
//! The `alg` a token may use comes from the key set, never from the token
//! alone; `none` and HMAC are refused before any key is looked at. Messages
//! name the claim at fault and never the token.

use std::borrow::Cow;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::keys::{KeyLookup, VerifyKey};

/// Which kind of Descope token is expected (the `drn` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A session token (`drn` absent or anything but `DSR`).
    Session,
    /// A refresh token (`drn` = `DSR`).
    Refresh,
}

/// The project-wide rules a token is checked against.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The Descope project id the token must be issued for.
    pub project_id: String,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: i64,
    /// Longest raw token accepted, in bytes.
    pub max_token_bytes: usize,
}

/// A token whose signature and claims passed every check.
#[derive(Debug)]
pub struct Verified {
    /// Every claim of the payload.
    pub claims: Map<String, Value>,
    /// `exp`, in unix seconds.
    pub expires_at: i64,
    /// The key that signed it.
    pub key: Arc<VerifyKey>,
}

/// The header fields this product reads; anything else is ignored.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Verifies `token` as a `kind` token under `rules`, at unix time `now`.
///
/// # Errors
/// [`Error::InvalidToken`] naming the failed check, [`Error::Expired`], or
/// what the key lookup returns ([`Error::Unavailable`], [`Error::WouldBlock`]).
pub fn verify(
    token: &str,
    kind: TokenKind,
    rules: &Rules,
    keys: &dyn KeyLookup,
    now: i64,
    blocking: bool,
) -> Result<Verified> {
    if token.len() > rules.max_token_bytes {
        return Err(Error::invalid("token too large"));
    }

    let Some((message, header_b64, payload_b64, signature)) = split(token) else {
        return Err(Error::invalid("malformed token (expected three segments)"));
    };

    // JSON text is UTF-8 (RFC 8259); serde_json checks that only in strings it
    // keeps, so check it for the members `Header` skips too.
    let header_json = decode_segment(header_b64, "malformed header")?;
    let Ok(header_text) = std::str::from_utf8(&header_json) else {
        return Err(Error::invalid("malformed header"));
    };
    let header: Header<'_> =
        serde_json::from_str(header_text).map_err(|_| Error::invalid("malformed header"))?;

    let Some(alg) = header.alg.as_deref() else {
        return Err(Error::invalid("missing algorithm (alg)"));
    };

    if alg.eq_ignore_ascii_case("none") {
        return Err(Error::invalid("unsigned tokens are not accepted (alg)"));
    }

    if alg
        .get(..2)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS"))
    {
        return Err(Error::invalid(
            "symmetric algorithms are not accepted (alg)",
        ));
    }

    if header.crit.is_some() {
        return Err(Error::invalid(
            "critical header extensions are not supported (crit)",
        ));
    }

    let Some(key_id) = header.kid.as_deref().filter(|kid| !kid.is_empty()) else {
        return Err(Error::invalid("missing key id (kid)"));
    };

    let key = keys.key(key_id, blocking)?;

    if alg != key.algorithm_name() {
        return Err(Error::invalid(
            "algorithm does not match the signing key (alg)",
        ));
    }

    if !key.verify(message.as_bytes(), signature)? {
        return Err(Error::invalid("signature does not verify"));
    }

    let payload_json = decode_segment(payload_b64, "malformed payload")?;
    let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(&payload_json) else {
        return Err(Error::invalid("malformed payload (not a JSON object)"));
    };

    let expires_at = match claims.get("exp") {
        None => return Err(Error::invalid("missing expiry (exp)")),
        Some(exp) => seconds(exp).ok_or_else(|| Error::invalid("expiry is not a number (exp)"))?,
    };

    if expires_at.saturating_add(rules.leeway) <= now {
        return Err(Error::Expired);
    }

    if time_claim(&claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(rules.leeway)) {
        return Err(Error::invalid("token not yet valid (nbf)"));
    }

    if time_claim(&claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(rules.leeway)) {
        return Err(Error::invalid("token issued in the future (iat)"));
    }

    let issuer = claims.get("iss").and_then(Value::as_str);
    if !issuer.is_some_and(|iss| issuer_matches(iss, &rules.project_id)) {
        return Err(Error::invalid("issuer does not match project (iss)"));
    }

    let is_refresh = claims.get("drn").and_then(Value::as_str) == Some("DSR");
    if kind == TokenKind::Session && is_refresh {
        return Err(Error::invalid(
            "refresh token used as a session token (drn)",
        ));
    }

    if kind == TokenKind::Refresh && !is_refresh {
        return Err(Error::invalid("not a refresh token (drn)"));
    }

    Ok(Verified {
        claims,
        expires_at,
        key,
    })
}

/// True when `credential` has the shape of a JWT: three non-empty
/// dot-separated segments. Says nothing about validity: anything of this
/// shape is verified (and refused) locally, never sent to Descope as an
/// access key.
#[must_use]
pub fn looks_like_jwt(credential: &str) -> bool {
    let mut segments = credential.split('.');
    segments.by_ref().take(3).filter(|s| !s.is_empty()).count() == 3 && segments.next().is_none()
}

/// `iss` is the project id itself, or an http(s) URL on any host (region
/// hosts, custom domains) whose last path segment is exactly the project id.
#[must_use]
pub fn issuer_matches(iss: &str, project_id: &str) -> bool {
    if iss == project_id {
        return true;
    }
    let Some(rest) = iss
        .strip_prefix("https://")
        .or_else(|| iss.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return false;
    };
    !host.is_empty() && !path.contains(['?', '#']) && path.rsplit('/').next() == Some(project_id)
}

/// Checks the `aud` claim. With `wanted`, `aud` must name one of them. Without,
/// a token that names an audience must name the project (as Descope's SDK does).
///
/// # Errors
/// [`Error::InvalidToken`] naming `aud`.
pub fn check_audience(
    claims: &Map<String, Value>,
    wanted: Option<&[String]>,
    project_id: &str,
) -> Result<()> {
    let audiences: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(Error::invalid("audience is malformed (aud)")),
    };
    let accepted = match wanted {
        Some(wanted) => audiences.iter().any(|aud| wanted.iter().any(|w| w == aud)),
        None => audiences.is_empty() || audiences.contains(&project_id),
    };
    if accepted {
        Ok(())
    } else {
        Err(Error::invalid("audience does not match (aud)"))
    }
}

/// Splits a token into (signed message, header, payload, signature).
fn split(token: &str) -> Option<(&str, &str, &str, &str)> {
    let (message, signature) = token.rsplit_once('.')?;
    let (header, payload) = message.split_once('.')?;
    if header.is_empty() || payload.is_empty() || signature.is_empty() || payload.contains('.') {
        return None;
    }
    Some((message, header, payload, signature))
}

fn decode_segment(segment: &str, failure: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::invalid(failure))
}

/// A `NumericDate` claim as whole seconds (fractions are cut off).
fn seconds(value: &Value) -> Option<i64> {
    if let Some(whole) = value.as_i64() {
        return Some(whole);
    }
    let float = value.as_f64().filter(|float| float.is_finite())?;
    #[allow(
        clippy::cast_possible_truncation,
        reason = "clamped to the i64 range first; fractions of a second are dropped on purpose"
    )]
    let whole = float.clamp(-9.0e18, 9.0e18).floor() as i64;
    Some(whole)
}

/// An optional time claim; present but not a number is an error.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => seconds(value)
            .map(Some)
            .ok_or_else(|| Error::InvalidToken(format!("{name} is not a number ({name})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, payload, sign_raw, Keys, PROJECT};
    use serde_json::json;

    const NOW: i64 = 1_900_000_000;

    fn rules() -> Rules {
        Rules {
            project_id: PROJECT.to_owned(),
            leeway: 5,
            max_token_bytes: 16384,
        }
    }

    fn check(token: &str) -> Result<Verified> {
        verify(token, TokenKind::Session, &rules(), &Keys::all(), NOW, true)
    }

    fn reason(token: &str) -> String {
        match check(token) {
            Err(Error::InvalidToken(reason)) => reason,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    fn session(overrides: &Value) -> String {
        testkit::rs256(&payload(NOW, overrides))
    }

    #[test]
    fn valid_rs256_session_passes() {
        let verified = check(&session(&json!({}))).unwrap();
        assert_eq!(verified.expires_at, NOW + 600);
        assert_eq!(verified.claims["sub"], "U2alice");
    }

    #[test]
    fn valid_es256_and_es384_sessions_pass() {
        let claims = payload(NOW, &json!({}));
        assert!(check(&testkit::es256(&claims)).is_ok());
        assert!(check(&testkit::es384(&claims)).is_ok());
    }

    #[test]
    fn alg_none_fails() {
        let claims = payload(NOW, &json!({}));
        for alg in ["none", "None", "NONE"] {
            let token = testkit::unsigned(&json!({"alg": alg, "kid": "test-rsa-1"}), &claims);
            assert_eq!(reason(&token), "unsigned tokens are not accepted (alg)");
        }
    }

    #[test]
    fn hs256_signed_with_the_rsa_public_key_fails() {
        let claims = payload(NOW, &json!({}));
        let pem = include_bytes!("../tests/keys/rsa2048.pub.pem");
        let jwk = serde_json::to_vec(&testkit::jwk("test-rsa-1")).unwrap();
        for secret in [&pem[..], &jwk[..]] {
            let header = json!({"alg": "HS256", "kid": "test-rsa-1", "typ": "JWT"});
            let token = testkit::hmac(&header, &claims, secret);
            assert_eq!(
                reason(&token),
                "symmetric algorithms are not accepted (alg)"
            );
        }
    }

    #[test]
    fn rs512_header_on_an_rs256_key_fails() {
        let claims = payload(NOW, &json!({}));
        let header = json!({"alg": "RS512", "kid": "test-rsa-1"});
        let token = sign_raw(
            &header,
            &claims,
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS512,
        );
        assert_eq!(
            reason(&token),
            "algorithm does not match the signing key (alg)"
        );
    }

    #[test]
    fn es256_header_on_an_rsa_key_fails() {
        let claims = payload(NOW, &json!({}));
        let header = json!({"alg": "ES256", "kid": "test-rsa-1"});
        let token = sign_raw(
            &header,
            &claims,
            &testkit::ec256_key(),
            jsonwebtoken::Algorithm::ES256,
        );
        assert_eq!(
            reason(&token),
            "algorithm does not match the signing key (alg)"
        );
    }

    #[test]
    fn missing_alg_or_kid_fails() {
        let claims = payload(NOW, &json!({}));
        let token = testkit::unsigned(&json!({"kid": "test-rsa-1"}), &claims);
        assert_eq!(reason(&token), "missing algorithm (alg)");
        let token = sign_raw(
            &json!({"alg": "RS256"}),
            &claims,
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        assert_eq!(reason(&token), "missing key id (kid)");
        let token = sign_raw(
            &json!({"alg": "RS256", "kid": ""}),
            &claims,
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        assert_eq!(reason(&token), "missing key id (kid)");
    }

    #[test]
    fn unknown_kid_fails() {
        let claims = payload(NOW, &json!({}));
        let header = json!({"alg": "RS256", "kid": "someone-else"});
        let token = sign_raw(
            &header,
            &claims,
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        assert_eq!(reason(&token), "unknown signing key (kid)");
    }

    #[test]
    fn crit_header_fails() {
        let claims = payload(NOW, &json!({}));
        let header = json!({"alg": "RS256", "kid": "test-rsa-1", "crit": ["exp"]});
        let token = sign_raw(
            &header,
            &claims,
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        assert!(reason(&token).ends_with("(crit)"));
    }

    #[test]
    fn tampered_payload_fails() {
        let token = session(&json!({}));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&payload(NOW, &json!({"roles": ["admin"]}))).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(reason(&tampered), "signature does not verify");
    }

    #[test]
    fn tampered_signature_fails() {
        let token = session(&json!({}));
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 0x01;
        let tampered = format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(reason(&tampered), "signature does not verify");
        let garbled = format!("{message}.!!!");
        assert_eq!(reason(&garbled), "malformed signature");
    }

    #[test]
    fn truncated_and_extra_segment_tokens_fail() {
        let token = session(&json!({}));
        let (message, _) = token.rsplit_once('.').unwrap();
        for bad in [
            message.to_owned(),
            format!("{message}."),
            format!("{token}.extra"),
            format!(".{token}"),
            token[..token.len() / 2].to_owned(),
            String::new(),
            "a.b".to_owned(),
            "a..c".to_owned(),
        ] {
            assert!(check(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            reason(&format!("{token}.extra")),
            "malformed token (expected three segments)"
        );
    }

    #[test]
    fn non_base64_segments_fail() {
        let token = session(&json!({}));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(
            reason(&format!("%%%.{}.{}", parts[1], parts[2])),
            "malformed header"
        );
        assert_eq!(
            reason(&format!("{}=.{}.{}", parts[0], parts[1], parts[2])),
            "malformed header"
        );
        let not_json = URL_SAFE_NO_PAD.encode(b"not json");
        assert_eq!(
            reason(&format!("{not_json}.{}.{}", parts[1], parts[2])),
            "malformed header"
        );
    }

    #[test]
    fn deeply_nested_unknown_header_member_is_skipped_without_overflowing_the_stack() {
        // Raised by the verify_signed fuzz target: unknown header members are
        // skipped (serde's `IgnoredAny`) without serde_json's recursion limit,
        // so a 200-deep member passes where a `Value` would refuse it. The
        // header is read before the signature, so anyone can send one: pin
        // that a header deeper than a 16 KiB token can hold is skipped without
        // exhausting even a small thread stack.
        let depth = 12_000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let header = format!(r#"{{"alg":"RS256","kid":"test-rsa-1","x":{deep}}}"#);
        let claims = serde_json::to_vec(&payload(NOW, &json!({}))).unwrap();
        let token = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        let rules = Rules {
            max_token_bytes: 1 << 20,
            ..rules()
        };
        let outcome = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || verify(&token, TokenKind::Session, &rules, &Keys::all(), NOW, true))
            .unwrap()
            .join()
            .expect("verification must not overflow a 256 KiB stack");
        assert_eq!(
            outcome.unwrap_err(),
            Error::invalid("signature does not verify")
        );
    }

    #[test]
    fn header_that_is_not_utf8_fails() {
        // Found by the verify_signed fuzz target: a validly signed token whose
        // header held the byte 0x80 inside a skipped member ("typ") passed.
        let claims = serde_json::to_vec(&payload(NOW, &json!({}))).unwrap();
        let header = b"{\"alg\":\"RS256\",\"kid\":\"test-rsa-1\",\"typ\":\"J\x80WT\"}";
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS256,
        )
        .unwrap();
        assert_eq!(
            reason(&format!("{message}.{signature}")),
            "malformed header"
        );
    }

    #[test]
    fn payload_that_is_not_an_object_fails() {
        let header = json!({"alg": "RS256", "kid": "test-rsa-1"});
        let token = testkit::sign_bytes(
            &header,
            b"[1,2,3]",
            &testkit::rsa_key(),
            jsonwebtoken::Algorithm::RS256,
        );
        assert_eq!(reason(&token), "malformed payload (not a JSON object)");
    }

    #[test]
    fn one_megabyte_token_fails_before_any_parsing() {
        let huge = "a".repeat(1 << 20);
        let token = format!("{huge}.{huge}.{huge}");
        assert_eq!(reason(&token), "token too large");
    }

    #[test]
    fn expired_beyond_leeway_fails_and_within_leeway_passes() {
        let expired = session(&json!({"exp": NOW - 6, "iat": NOW - 600}));
        assert_eq!(check(&expired).unwrap_err(), Error::Expired);
        let at_limit = session(&json!({"exp": NOW - 5, "iat": NOW - 600}));
        assert_eq!(check(&at_limit).unwrap_err(), Error::Expired);
        let within = session(&json!({"exp": NOW - 4, "iat": NOW - 600}));
        assert!(check(&within).is_ok());
    }

    #[test]
    fn missing_or_non_numeric_exp_fails() {
        let mut claims = payload(NOW, &json!({}));
        claims.as_object_mut().unwrap().remove("exp");
        assert_eq!(reason(&testkit::rs256(&claims)), "missing expiry (exp)");
        for bad in [json!("1900000600"), json!(null), json!(true), json!({})] {
            let token = session(&json!({ "exp": bad }));
            assert_eq!(reason(&token), "expiry is not a number (exp)");
        }
    }

    #[test]
    fn fractional_exp_is_accepted() {
        assert!(check(&session(&json!({"exp": 1_900_000_600.5}))).is_ok());
    }

    #[test]
    fn nbf_or_iat_in_the_future_fails_beyond_leeway() {
        assert_eq!(
            reason(&session(&json!({"nbf": NOW + 6}))),
            "token not yet valid (nbf)"
        );
        assert!(check(&session(&json!({"nbf": NOW + 5}))).is_ok());
        assert_eq!(
            reason(&session(&json!({"iat": NOW + 6}))),
            "token issued in the future (iat)"
        );
        assert!(check(&session(&json!({"iat": NOW + 5}))).is_ok());
        assert_eq!(
            reason(&session(&json!({"nbf": "soon"}))),
            "nbf is not a number (nbf)"
        );
    }

    #[test]
    fn both_issuer_forms_pass() {
        for iss in [
            PROJECT.to_owned(),
            format!("https://api.descope.com/{PROJECT}"),
            format!("https://api.euc1.descope.com/{PROJECT}"),
            format!("https://auth.example.com/v1/{PROJECT}"),
        ] {
            assert!(check(&session(&json!({ "iss": iss }))).is_ok(), "{iss}");
        }
    }

    #[test]
    fn foreign_or_look_alike_issuer_fails() {
        for iss in [
            json!("P2OtherProject"),
            json!(format!("https://api.descope.com/{PROJECT}EVIL")),
            json!(format!("https://api.descope.com/EVIL{PROJECT}")),
            json!(format!("https://api.descope.com/{PROJECT}/")),
            json!(format!("https://api.descope.com/{PROJECT}?x=1")),
            json!(format!("ftp://api.descope.com/{PROJECT}")),
            json!(format!("https:///{PROJECT}")),
            json!(format!("{PROJECT}EVIL")),
            json!(""),
            json!(null),
            json!(["P2x"]),
        ] {
            assert_eq!(
                reason(&session(&json!({ "iss": iss }))),
                "issuer does not match project (iss)"
            );
        }
        let mut claims = payload(NOW, &json!({}));
        claims.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            reason(&testkit::rs256(&claims)),
            "issuer does not match project (iss)"
        );
    }

    #[test]
    fn refresh_token_used_as_session_fails() {
        let token = session(&json!({"drn": "DSR"}));
        assert_eq!(
            reason(&token),
            "refresh token used as a session token (drn)"
        );
    }

    #[test]
    fn refresh_kind_requires_dsr() {
        let rules = rules();
        let refresh = session(&json!({"drn": "DSR"}));
        assert!(verify(
            &refresh,
            TokenKind::Refresh,
            &rules,
            &Keys::all(),
            NOW,
            true
        )
        .is_ok());
        let plain = session(&json!({}));
        let error = verify(&plain, TokenKind::Refresh, &rules, &Keys::all(), NOW, true);
        assert_eq!(
            error.unwrap_err(),
            Error::invalid("not a refresh token (drn)")
        );
    }

    #[test]
    fn jwt_shape_is_recognised() {
        assert!(looks_like_jwt(&session(&json!({}))));
        assert!(!looks_like_jwt("K2abc:def"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a..c"));
        assert!(looks_like_jwt("a.b.c="));
        assert!(!looks_like_jwt(".b.c"));
    }

    #[test]
    fn audience_rules_follow_the_sdk() {
        let claims = |aud: Value| {
            payload(NOW, &json!({ "aud": aud }))
                .as_object()
                .unwrap()
                .clone()
        };
        let wanted = vec!["app-1".to_owned()];
        assert!(check_audience(&claims(json!(null)), None, PROJECT).is_ok());
        assert!(check_audience(&claims(json!(PROJECT)), None, PROJECT).is_ok());
        assert!(check_audience(&claims(json!(["x", PROJECT])), None, PROJECT).is_ok());
        assert!(check_audience(&claims(json!("someone-else")), None, PROJECT).is_err());
        assert!(check_audience(&claims(json!(["x", "app-1"])), Some(&wanted), PROJECT).is_ok());
        assert!(check_audience(&claims(json!(PROJECT)), Some(&wanted), PROJECT).is_err());
        assert!(check_audience(&claims(json!(null)), Some(&wanted), PROJECT).is_err());
        assert!(check_audience(&claims(json!(7)), None, PROJECT).is_err());
    }
}
