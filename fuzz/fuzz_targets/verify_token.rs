//! Arbitrary bytes as a token: `token::verify` (session and refresh) against
//! the committed key set, never panicking, and accepting only what a valid
//! token looks like.

#![no_main]

use _core::token::{issuer_matches, looks_like_jwt, verify, TokenKind};
use libfuzzer_sys::fuzz_target;
use mlflow_descope_auth_fuzz::{rules, StaticKeys, NOW, PROJECT};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let rules = rules();
    let keys = StaticKeys::shared();
    let shaped = looks_like_jwt(&token);

    let session = verify(&token, TokenKind::Session, &rules, keys, NOW, true);
    let refresh = verify(&token, TokenKind::Refresh, &rules, keys, NOW, true);
    assert!(
        session.is_err() || refresh.is_err(),
        "one token verified as both a session and a refresh token"
    );

    for (verified, kind) in [(session, TokenKind::Session), (refresh, TokenKind::Refresh)] {
        let Ok(verified) = verified else { continue };
        assert!(shaped, "a verified token must have the JWT shape");
        assert!(token.len() <= rules.max_token_bytes);
        assert!(verified.expires_at.saturating_add(rules.leeway) > NOW);
        let iss = verified.claims.get("iss").and_then(Value::as_str);
        assert!(iss.is_some_and(|iss| issuer_matches(iss, PROJECT)));
        let is_refresh = verified.claims.get("drn").and_then(Value::as_str) == Some("DSR");
        assert_eq!(is_refresh, kind == TokenKind::Refresh);
    }
});
