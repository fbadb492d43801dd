//! Fuzzer-built header and payload, signed with a committed test key, so the
//! checks past the signature (alg/kid binding, exp, nbf, iat, iss, drn, aud)
//! and the claims model are reached on every input.
//!
//! Input: one selector byte (bits 0-1: which key signs, bit 2: token kind),
//! then the header bytes, a newline, and the payload bytes (neither has to be
//! JSON). The seed corpus (`fuzz/make_corpus.py`) writes this format.

#![no_main]

use _core::claims::Claims;
use _core::levels::{Level, Policy};
use _core::token::{check_audience, issuer_matches, verify, TokenKind};
use libfuzzer_sys::fuzz_target;
use mlflow_descope_auth_fuzz::{reference_level, rules, signer, StaticKeys, NOW, NOW_F64, PROJECT};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = rest
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(rest.len());
    let (header, payload) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
    let signer = signer(selector & 0b11);
    let kind = if selector & 0b100 == 0 {
        TokenKind::Session
    } else {
        TokenKind::Refresh
    };

    let token = signer.sign(header, payload);
    let rules = rules();
    let Ok(verified) = verify(&token, kind, &rules, StaticKeys::shared(), NOW, true) else {
        return;
    };

    // Accepted: the header must name exactly the key that signed, with its alg.
    // (The core skips unknown members without a depth limit; a `Value` stops
    // at 128 levels, so a deeper unknown member is not an error here.)
    match serde_json::from_slice::<Map<String, Value>>(header) {
        Ok(header) => {
            let alg = header.get("alg").and_then(Value::as_str);
            assert_eq!(alg, Some(signer.alg_name));
            assert_eq!(header.get("kid").and_then(Value::as_str), Some(signer.kid));
            assert!(header.get("crit").is_none());
        }
        Err(error) => assert!(
            error.to_string().contains("recursion limit"),
            "accepted a header that is not a JSON object: {error}"
        ),
    }

    // And every claim check must hold on the payload as received.
    let claims = &verified.claims;
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .expect("numeric exp");
    assert!(exp + 5.0 > NOW_F64 - 1.0, "accepted an expired token");
    for name in ["nbf", "iat"] {
        if let Some(value) = claims.get(name) {
            let time = value.as_f64().expect("numeric time claim");
            assert!(time <= NOW_F64 + 5.0 + 1.0, "accepted a future {name}");
        }
    }
    let iss = claims.get("iss").and_then(Value::as_str);
    assert!(iss.is_some_and(|iss| issuer_matches(iss, PROJECT)));
    let is_refresh = claims.get("drn").and_then(Value::as_str) == Some("DSR");
    assert_eq!(is_refresh, kind == TokenKind::Refresh);

    // The rest of the request path: audience, claims model, level.
    let wanted = ["app-1".to_owned()];
    let _ = check_audience(claims, None, PROJECT);
    let _ = check_audience(claims, Some(&wanted), PROJECT);
    let raw = verified.claims.clone();
    let Ok(model) = Claims::from_payload(verified.claims, verified.expires_at, "email") else {
        return;
    };
    let _ = model.approximate_size();
    for tenant in [None, Some("T1".to_owned())] {
        let policy = Policy {
            admin_roles: vec!["admin".to_owned(), "mlflow-admin".to_owned()],
            default: Level::Read,
            tenant,
        };
        assert_eq!(policy.level_for(&model), reference_level(&raw, &policy));
    }
});
